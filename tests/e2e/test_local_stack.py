"""End to end, as a user would: the real engine, the embedded PostgreSQL, the invoke tasks.

One ordered story (each step needs the one before): deploy Phase 0, prove it, flip to
Phase 1 by the GitOps edit, prove sync and drift, go back, roll back in an emergency,
see the drift on refresh, destroy and find nothing of migration 013 left.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dualwrite import connection
from dualwrite.catalog import MIGRATION_013

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = ROOT / "Pulumi.local.yaml"
pytestmark = [pytest.mark.engine, pytest.mark.db]


def invoke(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), *args],
        cwd=ROOT, text=True, capture_output=True, timeout=900,
    )
    if check and result.returncode != 0:
        pytest.fail(f"invoke {' '.join(args)} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def local_stack():
    """Stack `local` from a clean slate; its stack file is restored and its objects destroyed afterwards."""
    original = STACK_FILE.read_text()
    invoke("db-start")
    invoke("destroy")
    try:
        yield
    finally:
        STACK_FILE.write_text(original)
        invoke("destroy", check=False)


def query(sql: str, *params: object) -> list[tuple]:
    _, info = connection.conninfo("local")
    with psycopg.connect(**info, autocommit=True) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


def objects_of_013() -> list[str]:
    names = [o.name for o in MIGRATION_013]
    rows = query(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%s) "
        "UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname = ANY(%s) "
        "UNION ALL SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s)",
        names, names, names,
    )
    return sorted(r[0] for r in rows)


def seed_rows(count: int) -> None:
    query(
        "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
        "SELECT '00000000-0000-0000-0000-0000000000e2'::uuid, 'E2E child ' || (g %% 7), "
        "       date '2024-01-01' + (g / 7) * 7, 'week ' || g, "
        "       '[{\"name\": \"Read\", \"times\": [\"green\", \"\", \"red\", \"\", \"\", \"yellow\", \"\"]}]'::jsonb "
        "FROM generate_series(0, %s - 1) g ON CONFLICT DO NOTHING",
        count,
    )


def test_gitops_story(local_stack):
    # 1. Phase 0: up, smoke-test.
    invoke("up")
    smoke = invoke("smoke-test")
    assert "FAIL" not in smoke.stdout
    assert sorted(o.name for o in MIGRATION_013) == objects_of_013()

    # 2. A second look changes nothing.
    invoke("preview", "--expect-no-changes")

    # Rows the app wrote during Phase 0: the flip to Phase 1 must bring them over.
    seed_rows(300)
    try:
        # 3. The GitOps edit, then up: Phase 1 syncs, backfills, schedules cleanup.
        edit = invoke("phase", "1")
        assert '+  habit-tracker-db:phase: "1"' in edit.stdout
        invoke("up")
        smoke = invoke("smoke-test")
        assert "FAIL" not in smoke.stdout
        drift = invoke("drift")  # exits non-zero above the threshold
        assert "source rows │ 300" in drift.stdout
        assert query("SELECT source_rows, synced, drift_pct FROM public.dual_write_drift()") == [(300, 300, 0)]
        assert query("SELECT count(*) FROM cron.job WHERE jobname = 'cleanup_idempotency_log'") == [(1,)]
        invoke("preview", "--expect-no-changes")

        # The stack after local may now be promoted: the gate a PR runs passes.
        # The gate a PR runs for dev now reads the whole checklist: local declares phase 1, but
        # its soak has just begun (and dev's own database is an example host): still refused.
        gate = invoke("promotion-check", "--stack", "dev", check=False)
        assert "'local' declares phase 1" in gate.stdout and "stability" in gate.stdout
        assert gate.returncode != 0

        # 4. Back to Phase 0: the job goes, the new schema's rows stay.
        invoke("phase", "0")
        invoke("up")
        assert query("SELECT count(*) FROM cron.job WHERE jobname = 'cleanup_idempotency_log'") == [(0,)]
        assert query("SELECT count(*) >= 300 FROM public.weeks WHERE legacy_id IS NOT NULL") == [(True,)]
    finally:
        query("DELETE FROM public.children WHERE user_id = '00000000-0000-0000-0000-0000000000e2'")
        query("DELETE FROM public.habit_tracker WHERE user_id = '00000000-0000-0000-0000-0000000000e2'")

    # 5. Emergency rollback out of band; a refreshing preview shows the drift, up repairs it.
    rollback = invoke("rollback", "--level", "disable", "--yes")
    assert "habit-tracker-db:dual_write: disabled" in rollback.stdout
    assert query("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'") == [("D",)]
    drifted = invoke("preview", "--refresh", "--expect-no-changes", check=False)
    assert drifted.returncode != 0
    assert "enabled" in drifted.stdout
    invoke("up")
    assert query("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'") == [("O",)]

    # Other hands-on changes are seen too: a dropped index, an edited function body.
    query("DROP INDEX public.idx_idempotency_status")
    query("CREATE OR REPLACE FUNCTION public.cleanup_idempotency_log() RETURNS integer LANGUAGE sql AS 'SELECT 0'")
    drifted = invoke("preview", "--refresh", "--expect-no-changes", check=False)
    assert drifted.returncode != 0
    invoke("refresh")
    invoke("up")
    invoke("preview", "--expect-no-changes")
    assert query("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_idempotency_status'") == [(1,)]
    assert "FAIL" not in invoke("smoke-test").stdout

    # 6. Destroy leaves no object of migration 013 behind; the app's tables stay.
    invoke("destroy")
    assert objects_of_013() == []
    assert query("SELECT to_regclass('public.habit_tracker') IS NOT NULL") == [(True,)]


def test_bad_config_fails_before_anything_changes(local_stack):
    from devenv import engine

    original = STACK_FILE.read_text()
    try:
        STACK_FILE.write_text(original.replace('habit-tracker-db:phase: "0"', 'habit-tracker-db:phase: "2"'))
        by_task = invoke("up", check=False)
        # The program itself refuses too, for users who run `pulumi preview` directly.
        by_engine = engine.run("local", ["preview"], capture=True, check=False)
    finally:
        STACK_FILE.write_text(original)
    for result in (by_task, by_engine):
        message = result.stdout + result.stderr
        assert result.returncode != 0
        assert "Pulumi.local.yaml" in message and "habit-tracker-db:phase" in message and "0 (log only" in message
        assert "Traceback" not in message
    assert objects_of_013() == []


def test_promotion_gate_refuses_until_the_stack_before_runs_phase_1(local_stack):
    dev_file = ROOT / "Pulumi.dev.yaml"
    original = dev_file.read_text()
    try:
        refused = invoke("phase", "1", "--stack", "dev", check=False)
        assert refused.returncode != 0
        assert "'local' declares phase 1" in refused.stdout and "FAIL" in refused.stdout
        assert dev_file.read_text() == original
        forced = invoke("phase", "1", "--stack", "dev", "--force")
        assert "--force" in forced.stderr and '+  habit-tracker-db:phase: "1"' in forced.stdout
    finally:
        dev_file.write_text(original)


def test_engine_is_the_pinned_one():
    from devenv import engine

    version = subprocess.run([str(engine.pulumi_binary()), "version"], text=True, capture_output=True, check=True)
    pinned = next(line.split("==")[1].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("pulumi=="))
    assert version.stdout.strip() == f"v{pinned}"
    # The Python language host and the dynamic-provider launcher sit beside the CLI (the
    # postgresql provider cannot be built here: scripts/engine/README.md).
    for helper in ("pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python"):
        assert (engine.pulumi_binary().parent / helper).exists(), helper
