"""A stack deployed by the previous release upgrades to this one in place: no delete, no replace, rows kept.

The previous release's program (its own tree, from git) deploys Phase 1 with the real engine;
rows go into idempotency_log and habit_tracker; then this release's program previews and
deploys the same stack. Resources moved under components and given typed names must be
matched by their aliases, and the providers their old state names must still load.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest

from dualwrite.catalog import RETIRED, objects_in
from tests.e2e.conftest import ROOT

# The last release before components, typed resources and the dualwrite/devenv split.
PREVIOUS_RELEASE = "03fbefb"
# The last release before the phase model (dualwrite/phases.py): its PhaseOne component is PhaseJobs now.
BEFORE_PHASE_MODEL = "692b5ce"
# The last release whose Phase 0 had Phase 1's sync once per statement (its triggers, with transition
# tables, ran a body that did nothing): from this one on it comes with Phase 1 (issue 19).
STATEMENT_SYNC_IN_PHASE_0 = "ba10a0a"
pytestmark = [pytest.mark.engine, pytest.mark.db]


def previous_release(into, release: str = PREVIOUS_RELEASE) -> None:
    archive = subprocess.run(["git", "archive", "--format=tar", release], cwd=ROOT, capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    # That release's language host finds the virtualenv through this link (its engine.py made it).
    (into / "infra" / ".venv").symlink_to(ROOT / ".venv")


def test_previous_release_upgrades_with_no_delete_no_replace_and_rows_kept(e2e_stack, tmp_path):
    stack = e2e_stack(phase="1")
    old = tmp_path / "previous"
    old.mkdir()
    previous_release(old)
    (old / stack.stack_file.name).write_text(stack.stack_file.read_text())
    # The previous program and its providers import that release's `infra`, not this one's.
    stack.pulumi("up", "--yes", "--skip-preview", cwd=old, env={"PYTHONPATH": str(old)})
    exported = json.loads(stack.pulumi("stack", "export").stdout)["deployment"]["resources"]
    assert any(r["type"] == "pulumi-python:dynamic:Resource" for r in exported)  # the old shape, really

    stack.query("INSERT INTO public.idempotency_log (key, operation, status) "
                "SELECT 'key-' || g, 'create_week', 'success' FROM generate_series(1, 50) g")
    stack.query("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                "VALUES (gen_random_uuid(), 'Upgrade', '2025-10-13', '[]')")

    plan = json.loads(stack.pulumi("preview", "--json").stdout)
    ops = {(step["op"], step["urn"].split("::")[2]) for step in plan["steps"]}
    # The one delete: the retired procedure (it holds no data; replaced by cleanup_idempotency_log_batch()
    # and the job's DO block, which Supabase's linter accepts). No table is ever deleted or replaced.
    retired = {obj.name for obj in RETIRED}
    unexpected = [(step["op"], step["urn"].rsplit("::", 1)[-1], step.get("diffReasons"), step.get("replaceReasons"))
                  for step in plan["steps"] if step["op"] not in ("same", "update", "create")
                  and not (step["op"] == "delete" and step["urn"].rsplit("::", 1)[-1] in retired)]
    assert not unexpected, unexpected
    created = {typ for op, typ in ops if op == "create"}
    assert created and all(typ.startswith("habit-tracker-db:migration013:") for typ in created), created

    stack.invoke("up")  # refreshes first: old state's providers load and read every object
    stack.invoke("preview", "--expect-no-changes")
    assert stack.query("SELECT count(*) FROM public.idempotency_log") == [(50,)]
    assert stack.query("SELECT to_regprocedure('public.cleanup_idempotency_log_in_batches(integer)')") == [(None,)]
    assert stack.query("SELECT count(*) FROM public.weeks w JOIN public.children c ON c.id = w.child_id "
                       "WHERE c.name = 'Upgrade'") == [(1,)]
    exported = json.loads(stack.pulumi("stack", "export").stdout)["deployment"]["resources"]
    assert not any(r["type"] == "pulumi-python:dynamic:Resource" for r in exported)
    tables = [r for r in exported if r["type"].endswith("migration013:Table")]
    assert len(tables) == 2 and all(r.get("retainOnDelete") for r in tables)
    assert "FAIL" not in stack.invoke("smoke-test").stdout


# What this release adds to a Phase 1 stack: the sync once per statement (issue 19) and its errors index.
NEW_IN_PHASE_1 = {"idx_dual_write_errors_tracker_id", "sync_habit_tracker_rows", "sync_one_habit_tracker_row",
                  "sync_old_to_new_statement", "trigger_habit_tracker_dual_write_insert",
                  "trigger_habit_tracker_dual_write_update", "trigger_habit_tracker_dual_write_delete"}


def test_the_release_before_the_phase_model_upgrades_with_nothing_deleted_or_replaced(e2e_stack, tmp_path):
    """PhaseOne ("phase-1") became PhaseJobs: its alias keeps the component's URN and its children's
    (the cleanup job, pg_cron, the backfill), so the preview deletes and replaces nothing and creates
    only this release's new objects."""
    stack = e2e_stack(phase="1")
    old = tmp_path / "before-phases"
    old.mkdir()
    previous_release(old, BEFORE_PHASE_MODEL)
    (old / stack.stack_file.name).write_text(stack.stack_file.read_text())
    stack.pulumi("up", "--yes", "--skip-preview", cwd=old, env={"PYTHONPATH": str(old)})
    exported = json.loads(stack.pulumi("stack", "export").stdout)["deployment"]["resources"]
    assert any(r["type"] == "habit-tracker-db:migration013:PhaseOne" for r in exported)  # the old shape, really

    plan = json.loads(stack.pulumi("preview", "--json").stdout)
    moved = [(step["op"], step["urn"].rsplit("::", 1)[-1]) for step in plan["steps"]
             if step["op"] not in ("same", "update")]
    assert sorted(moved) == sorted(("create", name) for name in NEW_IN_PHASE_1), moved
    stack.invoke("up")
    stack.invoke("preview", "--expect-no-changes")
    exported = json.loads(stack.pulumi("stack", "export").stdout)["deployment"]["resources"]
    assert {r["urn"].rsplit("::", 1)[-1] for r in exported if r["type"].endswith("migration013:CronJob")} == {
        "cleanup-job"}
    assert not any(r["type"].endswith(":PhaseOne") for r in exported)


STATEMENT_SYNC = {"sync_habit_tracker_rows", "sync_one_habit_tracker_row", "sync_old_to_new_statement",
                  "trigger_habit_tracker_dual_write_insert", "trigger_habit_tracker_dual_write_update",
                  "trigger_habit_tracker_dual_write_delete"}


def test_a_phase_0_stack_of_the_release_before_drops_the_statement_sync_and_keeps_every_row(e2e_stack, tmp_path):
    """That release deployed the statement triggers in Phase 0 too; this one's Phase 0 has none. The upgrade
    deletes exactly them and their functions (they hold no data), replaces nothing, and every row stays."""
    stack = e2e_stack()  # Phase 0
    old = tmp_path / "statement-sync-in-phase-0"
    old.mkdir()
    previous_release(old, STATEMENT_SYNC_IN_PHASE_0)
    (old / stack.stack_file.name).write_text(stack.stack_file.read_text())
    stack.pulumi("up", "--yes", "--skip-preview", cwd=old, env={"PYTHONPATH": str(old)})
    assert STATEMENT_SYNC <= set(stack.objects_of_013())  # the old shape, really
    stack.query("INSERT INTO public.idempotency_log (key, operation, status) "
                "SELECT 'key-' || g, 'create_week', 'success' FROM generate_series(1, 50) g")
    stack.query("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                "VALUES (gen_random_uuid(), 'Upgrade', '2025-10-13', '[]')")

    plan = json.loads(stack.pulumi("preview", "--json").stdout)
    moved = sorted((step["op"], step["urn"].rsplit("::", 1)[-1]) for step in plan["steps"]
                   if step["op"] not in ("same", "update"))
    assert moved == sorted(("delete", name) for name in STATEMENT_SYNC), moved

    stack.invoke("up")
    stack.invoke("preview", "--expect-no-changes")
    assert stack.objects_of_013() == sorted(obj.name for obj in objects_in(0))
    assert stack.query("SELECT count(*) FROM public.idempotency_log") == [(50,)]
    assert stack.query("SELECT child_name FROM public.habit_tracker") == [("Upgrade",)]
    # Phase 0 still only logs: a write after the upgrade reaches no table of the new schema.
    stack.query("UPDATE public.habit_tracker SET child_name = 'Upgraded'")
    assert stack.query("SELECT count(*) FROM public.weeks") == [(0,)]
    assert "FAIL" not in stack.invoke("smoke-test").stdout
