"""The program of each phase after Phase 1, deployed by the real engine, one step at a time: 1 -> 2 -> 3 and
back to 1 (`habit-tracker-db:phase` edited, `invoke up`). Each step deploys, the smoke test passes, drift
holds where the phase syncs, a second preview changes nothing, and no row of either copy is lost.
(Issue 18's full walk, with writers running throughout and retirement, is tests/e2e/test_phase_walk.py.)"""

from __future__ import annotations

import psycopg
import pytest

from tests.e2e.test_reenable_catches_up import DRIFT, write_rows

pytestmark = [pytest.mark.engine, pytest.mark.db]
REVERSE_DRIFT = "SELECT missing, mismatched, orphaned FROM public.dual_write_reverse_drift()"


def step(stack, phase: str) -> None:
    stack.set("phase", phase)
    stack.invoke("up")
    smoke = stack.invoke("smoke-test").stdout
    assert "FAIL" not in smoke and f"phase {phase}" in smoke, smoke
    stack.invoke("preview", "--expect-no-changes")
    assert stack.invoke("drift").returncode == 0


def test_phases_2_and_3_deploy_and_step_back_with_every_row(e2e_stack):
    stack = e2e_stack(phase="1")
    stack.invoke("up")
    write_rows(stack, 10, "before")

    step(stack, "2")
    assert stack.query(REVERSE_DRIFT) == [(0, 0, 0)] and stack.query(DRIFT)[0][1:4] == (0, 0, 0)
    assert "reverse" in stack.invoke("drift").stdout
    write_rows(stack, 5, "phase2")  # an old client still writes, and flows forward

    step(stack, "3")
    assert "trigger_habit_tracker_dual_write" not in stack.objects_of_013()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Phase 3"):
        write_rows(stack, 1, "refused")
    monitor = " ".join(stack.invoke("monitor").stdout.split())
    assert "3 (contract)" in monitor

    step(stack, "2")
    write_rows(stack, 5, "again")  # old clients write again
    step(stack, "1")
    assert not any(name.endswith("_reverse_sync") for name in stack.objects_of_013())
    assert stack.query(DRIFT) == [(20, 0, 0, 0, 0)]  # 10 + 5 + 5 sheets, each in both copies
    assert stack.query("SELECT count(*) FROM public.old_client_writes") != [(0,)]  # kept with its rows
