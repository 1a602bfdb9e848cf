"""The whole pull-request flow, locally, with the real engine (issue 10, "Done when").

Two stacks on two local clusters (`prev`, then `next` which promotes from it), their state
in the postgres:// backend of a third; ci-plan on two commits of a temp git repository;
the comment with its SQL and locks; the gate refusing (soak not met, errors present), then
passing; deploy in order, smoke, drift.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import psycopg
import pytest

from dualwrite import ci_plan
from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine, pytest.mark.db]
BAD_USER = "00000000-0000-0000-0000-0000000000ba"


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    support.sweep_stale()
    state = support.cluster("flowstate", dbname="ops")
    clusters = {"prev": support.cluster("prev"), "next": support.cluster("next")}
    for own in clusters.values():
        own.ensure_app_schema()
    url = support.backend_url(state, "ops")
    stacks = {what: support.stack_name(what) for what in clusters}
    files = {what: support.ROOT / f"Pulumi.{name}.yaml" for what, name in stacks.items()}
    try:
        yield state, clusters, url, stacks, files, tmp_path_factory.mktemp("repo")
    finally:
        for what in ("next", "prev"):
            support.pulumi(stacks[what], ["destroy", "--yes", "--skip-preview"], backend=url, check=False)
            files[what].unlink(missing_ok=True)
        for own in (*clusters.values(), state):
            own.destroy()


def test_pull_request_flow(world):
    state, clusters, url, stacks, files, repo = world
    env = {**os.environ, "PULUMI_BACKEND_URL": url, "PULUMI_CONFIG_PASSPHRASE": support.PASSPHRASE,
           "COLUMNS": "400"}  # rich tables: one line per row
    prev, nxt = stacks["prev"], stacks["next"]

    def write(what: str, phase: int, **extra: str) -> None:
        files[what].write_text(support.stack_file_text(
            clusters[what], phase=phase, promotes_from=prev if what == "next" else None, extra=extra))

    # Both stacks in Phase 0, then prev in Phase 1 (its own earlier PR).
    write("prev", 0)
    write("next", 0)
    for what in ("prev", "next"):
        support.init_stack(stacks[what], backend=url)
        support.invoke("up", "--stack", stacks[what], env=env)
    write("prev", 1)
    support.invoke("up", "--stack", prev, env=env)
    with psycopg.connect(clusters["prev"].db_url(), autocommit=True) as conn:
        conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
                     "SELECT %s::uuid, 'child ' || g, date '2024-01-01' + g * 7, 'w', "
                     "'[{\"name\": \"Read\", \"times\": [\"green\", \"\", \"\", \"\", \"\", \"\", \"\"]}]'::jsonb "
                     "FROM generate_series(0, 39) g", (BAD_USER,))
        # A malformed sheet: the app's write succeeds, the error is logged (and counts as drift).
        conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
                     "VALUES (%s, 'bad', '2024-06-03', 'w', '{\"not\": \"a list\"}')", (BAD_USER,))
        conn.execute("SELECT pg_stat_force_next_flush()")

    # The PR: one line of next's stack file, on a temp git repository of this project.
    support.copy_project(repo)
    for what in ("prev", "next"):
        shutil.copy(files[what], repo / files[what].name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "add", "-f", files["prev"].name, files["next"].name)
    git(repo, "commit", "-q", "-m", "base")
    write("next", 1, soak_hours="24")
    shutil.copy(files["next"], repo / files["next"].name)
    git(repo, "commit", "-q", "-am", "next: phase 1")
    plan = ci_plan.plan("HEAD~1", "HEAD", repo)
    assert [(s.stack, s.phase_change) for s in plan.stacks] == [(nxt, True)]
    assert plan.order.index(prev) < plan.order.index(nxt) and plan.deploy == [nxt]

    # What the reviewer sees.
    comment = support.invoke("pr-comment", "--stack", nxt, env=env).stdout
    assert "LOCK habit_tracker SHARE ROW EXCLUSIVE, lock_timeout 3s, 5 retries" in comment
    assert "CREATE OR REPLACE FUNCTION public.sync_old_to_new()" in comment
    assert "SELECT cron.schedule('cleanup_idempotency_log'" in comment
    assert "| update | `Function` | `sync_old_to_new` | checksum, sql" in comment or "`sync_old_to_new`" in comment
    assert "### Phase 1 gate:" in comment and "**FAIL**" in comment
    # The phase move from the state, the body's diff, the security change and the backfill's size.
    assert "**phase: 0 -> 1**" in comment
    assert "SQL (diff below)" in comment and "+++ b/sync_old_to_new (this change)" in comment
    # Phase 1 writes the new schema from the statement function, new in Phase 1 (the guide's row function
    # stays INVOKER).
    assert "`public.sync_old_to_new_statement` is created SECURITY DEFINER" in comment
    assert "0 rows in habit_tracker" in comment and "rows/s (bench/results/results.json" in comment
    assert support.PASSPHRASE not in comment

    # The gate refuses: soak not met, errors present, no Edge Function traffic on next.
    refused = support.invoke("promotion-check", "--stack", nxt, env=env, check=False)
    assert refused.returncode != 0
    out = " ".join(refused.stdout.split())
    assert "24-hour stability" in out and "of the 24 h" in out
    assert "1 row(s) in the last 24 h" in out
    assert "0 successful request(s)" in out

    # The team fixes the bad row, the Edge Function runs on next, and the soak is over
    # (a short soak_hours stands in for a day).
    with psycopg.connect(clusters["prev"].db_url(), autocommit=True) as conn:
        conn.execute("DELETE FROM public.habit_tracker WHERE child_name = 'bad'")
        conn.execute("DELETE FROM public.dual_write_errors")
    with psycopg.connect(clusters["next"].db_url(), autocommit=True) as conn:
        conn.execute("INSERT INTO public.idempotency_log (key, operation, request_data, status) "
                     "VALUES ('e2e', 'create_week', '{}', 'success')")
    write("next", 1, soak_hours="0.001")
    time.sleep(4)
    passed = support.invoke("promotion-check", "--stack", nxt, env=env)
    assert "FAIL" not in passed.stdout and "pg_stat_user_functions" in " ".join(passed.stdout.split())

    # Merge: deploy in order (prev has nothing to change), smoke, drift.
    for stack in (prev, nxt):
        support.invoke("up", "--stack", stack, env=env)
        assert "FAIL" not in support.invoke("smoke-test", "--stack", stack, env=env).stdout
        support.invoke("drift", "--stack", stack, env=env)
    with psycopg.connect(state.db_url("ops")) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM pulumi_state")]
    assert any(nxt in key for key in keys) and any(prev in key for key in keys)
