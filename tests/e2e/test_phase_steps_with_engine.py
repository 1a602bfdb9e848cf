"""The program of each phase after Phase 1, deployed by the real engine, one step at a time: 1 -> 2 -> 3 ->
retired and back to 1 (`habit-tracker-db:phase` edited, `invoke up`). Each step deploys, the smoke test
passes, drift holds where the phase syncs, a second preview changes nothing, and no row of either copy is
lost: the archive keeps every sheet, and the step back from it brings the weeks written meanwhile over.
(Issue 18's full walk, with writers running throughout, is tests/e2e/test_phase_walk.py.)"""

from __future__ import annotations

import psycopg
import pytest

from tests.e2e.test_reenable_catches_up import DRIFT, write_rows

pytestmark = [pytest.mark.engine, pytest.mark.db]
REVERSE_DRIFT = "SELECT missing, mismatched, orphaned FROM public.dual_write_reverse_drift()"
# What the new app does while habit_tracker is archived: a new child and week of an existing user.
NEW_WEEK = """
WITH child AS (INSERT INTO public.children (user_id, name) SELECT user_id, 'Written while retired'
               FROM public.children LIMIT 1 RETURNING id)
INSERT INTO public.weeks (child_id, week_start_date, week_period) SELECT id, date '2026-01-05', 'new' FROM child
"""


def step(stack, phase: str) -> None:
    stack.set("phase", phase)
    stack.invoke("up")
    smoke = stack.invoke("smoke-test").stdout
    assert "FAIL" not in smoke and f"phase {phase}," in smoke, smoke
    stack.invoke("preview", "--expect-no-changes")
    again = stack.invoke("up").stdout  # a no-op up: its refresh reads back every input as declared
    assert "[diff:" not in again, again
    assert stack.invoke("drift").returncode == 0


def test_phases_2_3_and_retirement_deploy_and_step_back_with_every_row(e2e_stack):
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
    assert "3 (contract)" in " ".join(stack.invoke("monitor").stdout.split())

    step(stack, "retired")
    assert stack.query("SELECT count(*) FROM public.habit_tracker_archive") == [(15,)]
    assert stack.query("SELECT to_regclass('public.habit_tracker')") == [(None,)]
    assert not [name for name in stack.objects_of_013() if name.startswith("trigger_")]
    stack.query(NEW_WEEK)

    step(stack, "3")  # the archive is habit_tracker again, and the week written meanwhile has its sheet
    assert stack.query("SELECT count(*) FROM public.habit_tracker") == [(16,)]
    assert stack.query(REVERSE_DRIFT) == [(0, 0, 0)]
    step(stack, "2")
    write_rows(stack, 5, "again")  # old clients write again
    step(stack, "1")
    assert not any(name.endswith("_reverse_sync") for name in stack.objects_of_013())
    assert stack.query(DRIFT) == [(21, 0, 0, 0, 0)]  # 10 + 5 + 1 + 5 sheets, each in both copies
    assert stack.query("SELECT count(*) FROM public.old_client_writes") != [(0,)]  # kept with its rows
