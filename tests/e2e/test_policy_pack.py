"""The policy pack (policy/) runs at preview with the real engine and refuses each violation it knows.

Each violation is made in a copy of the project (tests/e2e/conftest.py `copy_project`), never in
the checkout; the preview with the pack must fail and name the rule's reason.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]


def preview_with_pack(stack, copy):
    return stack.pulumi("preview", "--policy-pack", str(copy / "policy"), cwd=copy,
                        env={"PYTHONPATH": str(copy)}, check=False)


@pytest.mark.parametrize("phase", ["0", "1"])  # Phase 0's row function is an unpinned invoker: the rule allows it
def test_the_program_as_committed_passes_the_pack(e2e_stack, phase):
    stack = e2e_stack(phase=phase)
    result = stack.invoke("policy")
    assert "habit-tracker-db-policy" in result.stdout and "✅" in result.stdout


@pytest.mark.parametrize(("file", "old", "new", "reason"), [
    ("sql/013/cleanup_idempotency_log.sql", "SECURITY INVOKER\n-- Pinned: a caller's search_path never redirects a "
     "name (Supabase lint 0011).\nSET search_path = ''", "SECURITY DEFINER",
     "cleanup_idempotency_log: a SECURITY DEFINER function must pin its search_path"),
    ("dualwrite/catalog.py", 'SERVICE_ROLE_EXECUTE = (("service_role", ("EXECUTE",)),)',
     'SERVICE_ROLE_EXECUTE = (("service_role", ("EXECUTE",)), ("anon", ("EXECUTE",)))',
     "are never granted to anon, authenticated (found: anon"),
    ("infra/components.py", '"kind": "cron_job", "name": CLEANUP_JOB,', '"kind": "cron_job", "name": "nightly",',
     "no pg_cron job 'cleanup_idempotency_log' is declared"),
    ("infra/resources.py", "objects.Table: Table,", "objects.Table: Index,",
     "a table of 013 must be a pulumi-python:dynamic/migration013:Table"),
])
def test_a_violating_change_is_refused_with_its_reason(e2e_stack, tmp_path, file, old, new, reason):
    stack = e2e_stack(phase="1")
    copy = stack.copy_project(tmp_path / "changed")
    changed = copy / file
    assert old in changed.read_text(), f"{file} no longer holds what this test changes"
    changed.write_text(changed.read_text().replace(old, new))
    result = preview_with_pack(stack, copy)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "[mandatory]" in output and reason in output, output[-3000:]


def test_an_object_the_phase_does_not_have_is_refused(e2e_stack, tmp_path):
    """dualwrite/phases.py decides what each phase declares: a program that puts the guide's forward trigger
    back into Phase 3 (where forward sync is off) fails the preview, naming the phase and the object."""
    stack = e2e_stack(phase="3")
    copy = stack.copy_project(tmp_path / "changed")
    components = copy / "infra" / "components.py"
    old = "        for obj in objects_in(config.phase):"
    assert old in components.read_text(), "infra/components.py no longer holds what this test changes"
    components.write_text(components.read_text().replace(
        old, "        for obj in (*objects_in(config.phase), by_name(GUIDE_TRIGGER)):").replace(
        "from dualwrite.config import StackConfig",
        "from dualwrite.catalog import GUIDE_TRIGGER, by_name\nfrom dualwrite.config import StackConfig"))
    result = preview_with_pack(stack, copy)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "[mandatory]" in output, output[-3000:]
    assert "the stack runs phase 3 (contract), which has no trigger_habit_tracker_dual_write" in output, output[-3000:]
