"""The promotion gate enforced, with the real engine (issue 16): a clone of this project as its
own git repository, two stacks on two clusters of the test's own, their state and deploy
records in the postgres:// backend of a third.

`first` has no promotes_from (the first shared stack: its gate reads its own Phase 0), `next`
promotes from it. Every task runs in the clone, as CI runs it: promotion-check with the base
branch's thresholds, record-deployed after each up, ci-plan --since-deployed, gate-recheck
before up, --force --reason leaving its line, and a rollback that passes while `first` is
unhealthy.
"""

from __future__ import annotations

import json
import os
import subprocess

import psycopg
import pytest

from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine, pytest.mark.db]
USER = "00000000-0000-0000-0000-0000000000ef"
REASON = "incident 7: next must match first before the freeze"


def git(repo, *args) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    support.sweep_stale()
    state = support.cluster("gatestate", dbname="ops")
    clusters = {"first": support.cluster("gfirst"), "next": support.cluster("gnext")}
    for own in clusters.values():
        own.ensure_app_schema()
    url = support.backend_url(state, "ops")
    stacks = {what: support.stack_name(f"g{what}") for what in clusters}
    repo = support.copy_project(tmp_path_factory.mktemp("clone"))
    (repo / ".tools").symlink_to(support.ROOT / ".tools")  # the engine `bash scripts/setup` links
    for example in repo.glob("Pulumi.*.yaml"):  # a repository of the test's two stacks alone
        if example.name != "Pulumi.yaml":
            example.unlink()
    env = {**os.environ, "PULUMI_BACKEND_URL": url, "PULUMI_CONFIG_PASSPHRASE": support.PASSPHRASE,
           "COLUMNS": "400"}
    try:
        yield repo, clusters, stacks, env
    finally:
        for what in ("next", "first"):
            support.pulumi(stacks[what], ["destroy", "--yes", "--skip-preview"], backend=url, cwd=repo, check=False)
        for own in (*clusters.values(), state):
            own.destroy()


def test_gate_enforced(world):
    repo, clusters, stacks, env = world
    first, nxt = stacks["first"], stacks["next"]
    files = {what: repo / f"Pulumi.{name}.yaml" for what, name in stacks.items()}

    def write(what: str, phase: int, **extra: str) -> None:
        # The salt `pulumi stack init` adds stays, as in a committed stack file.
        salt = [line for line in files[what].read_text().splitlines() if line.startswith("encryptionsalt:")] \
            if files[what].exists() else []
        files[what].write_text(support.stack_file_text(
            clusters[what], phase=phase, promotes_from=first if what == "next" else None, extra=extra)
            + "".join(line + "\n" for line in salt))

    def commit(message: str) -> str:
        git(repo, "add", "-A")
        git(repo, "add", "-f", *(f.name for f in files.values()))
        git(repo, "commit", "-q", "-m", message)
        return git(repo, "rev-parse", "HEAD")

    def task(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return support.invoke(*args, cwd=repo, env=env, check=check)

    def flat(result: subprocess.CompletedProcess[str]) -> str:
        return " ".join((result.stdout + result.stderr).split())

    # A: both in Phase 0; first waives the Edge Function and soaks 0 h, next asks 24 h of first.
    git(repo, "init", "-q", "-b", "main")
    write("first", 0, soak_hours="0", edge_function_waiver="first has no Edge Function: writes come from psql")
    write("next", 0, soak_hours="24", edge_function_waiver="next has no Edge Function: writes come from psql")
    for what in ("first", "next"):
        support.init_stack(stacks[what], backend=env["PULUMI_BACKEND_URL"], cwd=repo)
    a = commit("A: both in phase 0")
    for what in ("first", "next"):
        task("up", "--stack", stacks[what])

    # No record yet: the deploy plan deploys both and says why.
    plan = task("ci-plan", "--since-deployed", "--head", "HEAD", "--json")
    data = json.loads(plan.stdout)
    assert data["deploy"] == [first, nxt]
    assert all("no deployed commit recorded" in s["note"] for s in data["stacks"])
    for what in ("first", "next"):
        task("record-deployed", "--stack", stacks[what], "--commit", a)
    # The record is a stack tag in the postgres:// backend: no input of the program, so a no-op stays one.
    task("preview", "--stack", nxt, "--expect-no-changes")
    assert json.loads(support.pulumi(nxt, ["stack", "tag", "ls", "--json"], backend=env["PULUMI_BACKEND_URL"],
                                     cwd=repo).stdout)["habit-tracker-db:deployed-commit"] == a
    assert json.loads(task("ci-plan", "--since-deployed", "--json").stdout)["deploy"] == []
    short = task("record-deployed", "--stack", nxt, "--commit", a[:7], check=False)
    assert short.returncode != 0 and "not a full commit id" in flat(short) and "Traceback" not in flat(short)

    # B: first enters Phase 1. It is first in the order: its gate reads its own Phase 0 (smoke test,
    # history, the trigger's cost on the app's writes), which CI can reach.
    with psycopg.connect(clusters["first"].db_url(), autocommit=True) as conn:
        conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
                     "SELECT %s::uuid, 'child ' || g, date '2024-01-01' + g * 7, 'w', "
                     "'[{\"name\": \"Read\", \"times\": [\"green\", \"\", \"\", \"\", \"\", \"\", \"\"]}]'::jsonb "
                     "FROM generate_series(0, 19) g", (USER,))
        conn.execute("SELECT pg_stat_force_next_flush()")
    write("first", 1, soak_hours="0", edge_function_waiver="first has no Edge Function: writes come from psql")
    b = commit("B: first to phase 1")
    checked = task("promotion-check", "--stack", first, "--base", a)
    out = flat(checked)
    assert f"'{first}' is first in the promotion order" in out and "(its own Phase 0)" in out
    assert "Phase 0 since update" in out and "FAIL" not in out
    planned = json.loads(task("ci-plan", "--since-deployed", "--json").stdout)
    assert planned["deploy"] == [first] and planned["phase_changes"] == [first], planned
    task("gate-recheck", "--stack", first)  # from its record, a
    task("up", "--stack", first)
    task("record-deployed", "--stack", first, "--commit", b)

    # C: next flips to Phase 1 and lowers its soak in the same diff. The gate keeps the base's 24 h.
    write("next", 1, soak_hours="0", edge_function_waiver="next has no Edge Function: writes come from psql")
    commit("C: next to phase 1, soak lowered")
    refused = task("promotion-check", "--stack", nxt, "--base", b, check=False)
    out = flat(refused)
    assert refused.returncode != 0
    assert "CALL-OUT:" in out and "`habit-tracker-db:soak_hours`: 24 -> 0 (the gate uses 24, from " + b in out
    assert "24-hour stability test passed" in out and "of the 24 h" in out
    # The deploy plan from next's record (a) sees the flip; first (recorded at b) has nothing to deploy.
    planned = json.loads(task("ci-plan", "--since-deployed", "--json").stdout)
    assert planned["deploy"] == [nxt] and planned["phase_changes"] == [nxt]
    assert planned["stacks"][0]["since"] == a
    recheck = task("gate-recheck", "--stack", nxt, check=False)
    assert recheck.returncode != 0 and "24-hour stability" in flat(recheck)

    # D: the flip by `invoke phase 1 --force --reason`: refused without a reason, then its line.
    git(repo, "checkout", "-q", b, "--", files["next"].name)
    assert task("phase", "1", "--stack", nxt, check=False).returncode != 0
    no_reason = task("phase", "1", "--stack", nxt, "--force", check=False)
    assert no_reason.returncode != 0 and "needs --reason" in flat(no_reason)
    assert '"0"' in files["next"].read_text()
    forced = task("phase", "1", "--stack", nxt, "--force", "--reason", REASON)
    assert f'+  habit-tracker-db:gate_override: "{REASON}"' in forced.stdout
    d = commit("D: next to phase 1, gate overridden")
    passed = task("promotion-check", "--stack", nxt, "--base", b)
    out = flat(passed)
    assert f"CALL-OUT: GATE OVERRIDDEN by {files['next'].name}" in out and REASON in out
    assert "OVERRIDDEN (invoke phase 1 --force)" in out
    comment = task("pr-comment", "--stack", nxt, "--base", b).stdout.splitlines()
    assert comment[1].startswith("> **Promotion gate call-out:** GATE OVERRIDDEN") and REASON in comment[1]
    task("gate-recheck", "--stack", nxt)  # honors the override the change adds
    task("up", "--stack", nxt)
    task("record-deployed", "--stack", nxt, "--commit", d)
    assert json.loads(task("ci-plan", "--since-deployed", "--json").stdout)["deploy"] == []

    # E: first turns unhealthy (a malformed sheet in dual_write_errors); rolling next back is not blocked,
    # and the phase change drops the override.
    with psycopg.connect(clusters["first"].db_url(), autocommit=True) as conn:
        conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
                     "VALUES (%s, 'bad', '2024-06-03', 'w', '{\"not\": \"a list\"}')", (USER,))
    back = task("phase", "0", "--stack", nxt)
    assert "-  habit-tracker-db:gate_override:" in back.stdout
    commit("E: next back to phase 0")
    for args in (("promotion-check", "--stack", nxt, "--base", d), ("gate-recheck", "--stack", nxt)):
        result = task(*args)
        assert "a rollback is never blocked by the promotion gate" in flat(result), args
    task("up", "--stack", nxt)
    assert "FAIL" not in flat(task("smoke-test", "--stack", nxt))
