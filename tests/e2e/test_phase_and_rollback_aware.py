"""Issue 16: drift, smoke-test and monitor judge a stack by its phase and the rollback in effect.

Drift applies where Phase 1 is deployed and its trigger syncs; on a Phase 0 stack with app
rows, or under a rollback, it says why it does not apply and exits 0 (the deploy and daily
workflows run it on every stack). The smoke test checks the declared state, rollbacks
included, and names the rollback in effect; one the stack file does not declare yet
(`rollback --level drop-trigger`, file unchanged) fails it, with the way back. Issue 17.3:
`invoke errors` lists the malformed rows and `--resolve` re-syncs one after its fix.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_reenable_catches_up import DRIFT, write_rows

pytestmark = [pytest.mark.engine, pytest.mark.db]


def flat(text: str) -> str:
    """Terminal tables as one line of words (cells wrap; their borders go)."""
    return " ".join(re.sub(r"[│┃┆|]", " ", text).split())


def test_drift_smoke_and_monitor_follow_the_phase_and_the_rollback_in_effect(e2e_stack):
    stack = e2e_stack()  # phase 0
    stack.invoke("up")
    write_rows(stack, 20, "phase0")
    drift = stack.invoke("drift")  # exits 0 although the new schema is empty
    assert "drift does not apply to stack" in drift.stdout and "declares phase 0" in drift.stdout
    assert "FAIL" not in stack.invoke("smoke-test").stdout

    stack.set("phase", "1")
    stack.invoke("up")
    assert "FAIL" not in stack.invoke("smoke-test").stdout
    assert "malformed rows" not in stack.invoke("drift").stdout  # in sync: nothing to split

    # An emergency rollback the stack file does not declare yet.
    stack.invoke("rollback", "--level", "drop-trigger", "--yes")
    write_rows(stack, 5, "dropped")
    smoke = stack.invoke("smoke-test", check=False)
    assert smoke.returncode == 1
    assert ("dual write: a rollback is in effect that the stack does not declare: the database shows rollback "
            "Option 2: Drop Trigger (`invoke rollback --level drop-trigger`)") in smoke.stdout
    assert f"To get back: `invoke up --stack {stack.name}`" in smoke.stdout
    assert "habit-tracker-db:dual_write: absent" in smoke.stdout
    drift = stack.invoke("drift")
    assert "does not apply" in drift.stdout and "a rollback is in effect" in drift.stdout
    monitor = flat(stack.invoke("monitor").stdout)
    assert "a rollback is in effect that the stack does not declare" in monitor and "drift does not apply" in monitor

    # Declared: the smoke test passes and names it; drift does not apply.
    stack.set("dual_write", "absent")
    stack.invoke("up")
    smoke = stack.invoke("smoke-test")
    assert "FAIL" not in smoke.stdout and "Option 2: Drop Trigger (`invoke rollback --level drop-trigger`) is in " \
        "effect, as declared" in smoke.stdout
    assert "does not apply" in stack.invoke("drift").stdout

    # Back to enabled by the declared path: the backfill brings the rows written meanwhile over.
    stack.set("dual_write", "enabled")
    stack.invoke("up")
    assert stack.query(DRIFT) == [(25, 0, 0, 0, 0)]

    # Option 1 committed (the case): smoke-test and drift pass while rows go unsynced.
    stack.invoke("rollback", "--level", "disable", "--yes")
    stack.set("dual_write", "disabled")
    stack.invoke("up")
    write_rows(stack, 5, "disabled")
    smoke = stack.invoke("smoke-test")
    assert "FAIL" not in smoke.stdout and "Option 1: Disable Trigger" in smoke.stdout
    assert "does not apply" in stack.invoke("drift").stdout
    stack.set("dual_write", "enabled")
    stack.invoke("up")
    assert stack.query(DRIFT) == [(30, 0, 0, 0, 0)]

    # Drift above the threshold says what it is made of; `invoke errors` lists and resolves.
    stack.query("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                "VALUES (gen_random_uuid(), 'bad', '2025-10-13', '[{\"name\": \"Read\"}]')")
    drift = stack.invoke("drift", check=False)
    assert drift.returncode == 1
    assert f"1 malformed rows (1 listed in dual_write_errors): `invoke errors --stack {stack.name}`" in drift.stderr
    backfill = stack.invoke("backfill")  # nothing to redo for a recorded malformed row
    assert "projected 0 rows, malformed 1 (listed in dual_write_errors: 1" in backfill.stdout
    assert backfill.stdout.rstrip().endswith("left 0")
    listed = flat(stack.invoke("errors").stdout)
    [(error_id,)] = stack.query("SELECT id FROM public.dual_write_errors")
    assert "1 open, 0 handled" in listed and "open: malformed" in listed and 'has no "times" array' in listed
    refused = stack.invoke("errors", "--resolve", str(error_id), check=False)
    assert refused.returncode == 1 and "is still malformed" in refused.stderr and "Traceback" not in refused.stderr
    stack.query("ALTER TABLE public.habit_tracker DISABLE TRIGGER trigger_habit_tracker_dual_write")
    stack.query("UPDATE public.habit_tracker SET habits = '[]' WHERE child_name = 'bad'")
    stack.query("ALTER TABLE public.habit_tracker ENABLE TRIGGER trigger_habit_tracker_dual_write")
    assert "open: not synced" in flat(stack.invoke("errors").stdout)
    resolved = stack.invoke("errors", "--resolve", str(error_id))
    assert "re-synced; handled" in resolved.stdout
    assert "0 open, 1 handled" in flat(stack.invoke("errors").stdout)
    assert stack.query(DRIFT) == [(31, 0, 0, 0, 0)]
    stack.invoke("drift")
