"""End to end, as a user would: the real engine, a real PostgreSQL, the invoke tasks.

One ordered story on a stack of the test's own (tests/e2e/conftest.py): deploy Phase 0,
prove it, flip to Phase 1 by the GitOps edit, prove sync and drift, go back, roll back in
an emergency, see the drift on refresh, declare the removal and find nothing of
migration 013 left.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from dualwrite.catalog import objects_in
from dualwrite.objects import Table

pytestmark = [pytest.mark.engine, pytest.mark.db]


def seed_rows(stack, count: int) -> None:
    stack.query(
        "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
        "SELECT '00000000-0000-0000-0000-0000000000e2'::uuid, 'E2E child ' || (g %% 7), "
        "       date '2024-01-01' + (g / 7) * 7, 'week ' || g, "
        "       '[{\"name\": \"Read\", \"times\": [\"green\", \"\", \"red\", \"\", \"\", \"yellow\", \"\"]}]'::jsonb "
        "FROM generate_series(0, %s - 1) g ON CONFLICT DO NOTHING",
        count,
    )


def test_gitops_story(e2e_stack):
    stack = e2e_stack()
    # 1. Phase 0: up, smoke-test.
    stack.invoke("up")
    assert "FAIL" not in stack.invoke("smoke-test").stdout
    assert sorted(o.name for o in objects_in(0)) == stack.objects_of_013()

    # The state shows typed resources under the guide's components, and tables kept on delete.
    exported = json.loads(stack.pulumi("stack", "export").stdout)["deployment"]["resources"]
    types = {r["type"] for r in exported}
    assert "pulumi-python:dynamic:Resource" not in types
    assert {"habit-tracker-db:migration013:Migration", "habit-tracker-db:migration013:Security"} <= types
    tables = [r for r in exported if r["type"].endswith(":Table")]
    assert sorted(r["urn"].rsplit("::", 1)[1] for r in tables) == sorted(o.name for o in objects_in(0) if o.kind is Table)
    assert all(r.get("retainOnDelete") for r in tables)

    # 2. A second look changes nothing.
    stack.invoke("preview", "--expect-no-changes")

    # Rows the app wrote during Phase 0: the flip to Phase 1 must bring them over.
    seed_rows(stack, 300)
    # 3. The GitOps edit, then up: Phase 1 syncs, backfills, schedules cleanup.
    # A stack of its own is first in the promotion order: its gate asks for a day of its own Phase 0,
    # which a test does not wait for, so the flip is forced, and says why in the stack file.
    edit = stack.invoke("phase", "1", "--force", "--reason", "e2e story: a fresh stack has no Phase 0 day")
    assert '+  habit-tracker-db:phase: "1"' in edit.stdout and "+  habit-tracker-db:gate_override:" in edit.stdout
    stack.invoke("up")
    assert "FAIL" not in stack.invoke("smoke-test").stdout
    drift = stack.invoke("drift")  # exits non-zero above the threshold
    assert "source rows │ 300" in drift.stdout
    assert stack.query("SELECT source_rows, synced, drift_pct FROM public.dual_write_drift()") == [(300, 300, 0)]
    assert stack.query("SELECT count(*) FROM cron.job WHERE jobname = 'cleanup_idempotency_log'") == [(1,)]
    assert sorted(o.name for o in objects_in(1)) == stack.objects_of_013()  # with the statement triggers
    stack.invoke("preview", "--expect-no-changes")

    # 4. Back to Phase 0: the job and the statement sync go, the new schema's rows stay.
    stack.invoke("phase", "0")
    stack.invoke("up")
    assert stack.query("SELECT count(*) FROM cron.job WHERE jobname = 'cleanup_idempotency_log'") == [(0,)]
    assert sorted(o.name for o in objects_in(0)) == stack.objects_of_013()
    assert stack.query("SELECT count(*) >= 300 FROM public.weeks WHERE legacy_id IS NOT NULL") == [(True,)]

    # 5. Emergency rollback out of band; a refreshing preview shows the drift, up repairs it.
    rollback = stack.invoke("rollback", "--level", "disable", "--yes")
    assert "habit-tracker-db:dual_write: disabled" in rollback.stdout
    assert stack.query("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'") == [("D",)]
    drifted = stack.invoke("preview", "--refresh", "--expect-no-changes", "--diff", check=False)
    assert drifted.returncode != 0
    # The trigger is the one resource to update, and the diff says it is its enabled state.
    assert "migration013:Trigger" in drifted.stdout and "~ enabled" in drifted.stdout.replace("~  enabled", "~ enabled")
    stack.invoke("up")
    assert stack.query("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'") == [("O",)]

    # Other hands-on changes are seen too: a dropped index, an edited function body.
    stack.query("DROP INDEX public.idx_idempotency_status")
    stack.query("CREATE OR REPLACE FUNCTION public.cleanup_idempotency_log() RETURNS integer LANGUAGE sql AS 'SELECT 0'")
    drifted = stack.invoke("preview", "--refresh", "--expect-no-changes", check=False)
    assert drifted.returncode != 0
    stack.invoke("refresh")
    stack.invoke("up")
    stack.invoke("preview", "--expect-no-changes")
    assert stack.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_idempotency_status'") == [(1,)]
    assert "FAIL" not in stack.invoke("smoke-test").stdout

    # 6. The declared rollback, option 3: nothing of migration 013 is left; the app's tables stay.
    stack.query("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('k1', 'create_week', 'success')")
    stack.set("dual_write", "removed")
    stack.invoke("up")
    assert stack.objects_of_013() == []
    assert stack.query("SELECT count(*) FROM public.habit_tracker") == [(300,)]
    assert "FAIL" not in stack.invoke("smoke-test").stdout
    stack.invoke("preview", "--expect-no-changes")

    # And declared again, everything comes back.
    stack.set("dual_write", "enabled")
    stack.invoke("up")
    assert sorted(o.name for o in objects_in(0)) == stack.objects_of_013()


def test_destroy_keeps_tables_that_hold_rows(e2e_stack):
    """Removing the stack (or a table from the program) never drops a table: only the declared rollback does."""
    stack = e2e_stack()
    stack.invoke("up")
    stack.query("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('kept', 'create_week', 'success')")
    stack.invoke("destroy")
    assert stack.objects_of_013() == sorted(o.name for o in objects_in(0) if o.kind is Table)
    assert stack.query("SELECT key FROM public.idempotency_log") == [("kept",)]


def test_bad_config_fails_before_anything_changes(e2e_stack):
    stack = e2e_stack()
    stack.set("phase", "4")  # phases: 0 .. 3, retired
    by_task = stack.invoke("up", check=False)
    # The program itself refuses too, for users who run `pulumi preview` directly.
    by_engine = stack.pulumi("preview", check=False)
    for result in (by_task, by_engine):
        message = result.stdout + result.stderr
        assert result.returncode != 0
        assert stack.stack_file.name in message and "habit-tracker-db:phase" in message and "0 (log only" in message
        assert "Traceback" not in message
    assert stack.objects_of_013() == []


def test_promotion_gate_refuses_until_the_stack_before_runs_phase_1(e2e_stack):
    first = e2e_stack()
    second = e2e_stack(promotes_from=first.name)
    first.invoke("up")
    original = second.stack_file.read_text()
    refused = second.invoke("phase", "1", check=False)
    assert refused.returncode != 0
    assert f"'{first.name}' declares phase 1" in refused.stdout and "FAIL" in refused.stdout
    # The rows after a failing first one are still read, each with its evidence.
    assert f"'{first.name}' smoke test passes" in refused.stdout and "stability test" in refused.stdout
    assert second.stack_file.read_text() == original
    forced = second.invoke("phase", "1", "--force", "--reason", "e2e: the override leaves its line")
    assert "--force" in forced.stderr and '+  habit-tracker-db:phase: "1"' in forced.stdout
    second.invoke("phase", "0")

    first.invoke("phase", "1", "--force", "--reason", "e2e: first has no Phase 0 day")
    first.invoke("up")
    # Phase 1 declared and healthy, but the guide's 24-hour stability test has only begun.
    gate = second.invoke("promotion-check", check=False)
    rows = {line.split("│")[2].strip(): line.split("│")[3].strip() for line in gate.stdout.splitlines()
            if line.count("│") >= 4}
    assert rows[f"'{first.name}' declares phase 1"] == "PASS"
    assert rows[f"'{first.name}' smoke test passes"] == "PASS"
    assert any(name.startswith("24-hour stability") and result == "FAIL" for name, result in rows.items()), rows
    assert gate.returncode != 0


def test_engine_is_the_pinned_one():
    from devenv import engine
    from tests.e2e.conftest import ROOT

    version = subprocess.run([str(engine.pulumi_binary()), "version"], text=True, capture_output=True, check=True)
    pinned = next(line.split("==")[1].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("pulumi=="))
    assert version.stdout.strip() == f"v{pinned}"
    # The Python language host and the dynamic-provider launcher sit beside the CLI (the
    # postgresql provider cannot be built here: scripts/engine/README.md).
    for helper in ("pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python"):
        assert (engine.pulumi_binary().parent / helper).exists(), helper
