"""Issue 17.1: whatever way the trigger comes back, `invoke up` brings the new schema back in sync.

An emergency `rollback --level disable` or `drop-trigger` with the stack file still saying
`dual_write: enabled`: the app keeps writing, unsynced. The next `invoke up` (which refreshes
first) puts the trigger back, and the backfill resource, whose read counts the rows out of
sync, runs again after it: drift 0, and a preview after that shows nothing left to do.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]

DRIFT = "SELECT source_rows, missing, mismatched, orphaned, drift_pct FROM public.dual_write_drift()"


def write_rows(stack, count: int, child: str) -> None:
    """`count` new sheets and an update of one older sheet: what the app does meanwhile."""
    stack.query(
        "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
        "SELECT gen_random_uuid(), %s, date '2025-10-13' + 7 * g, 'week ' || g, "
        "       '[{\"name\": \"Read\", \"times\": [\"green\", \"\", \"red\", \"\", \"\", \"yellow\", \"\"]}]'::jsonb "
        "FROM generate_series(1, %s) g",
        child, count,
    )
    stack.query("UPDATE public.habit_tracker SET week_period = week_period || ' (edited)' "
                "WHERE id = (SELECT min(id) FROM public.habit_tracker)")


@pytest.mark.parametrize("level", ["disable", "drop-trigger"])
def test_up_after_an_emergency_rollback_backfills_what_was_written_meanwhile(e2e_stack, level):
    stack = e2e_stack(phase="1")
    stack.invoke("up")
    write_rows(stack, 20, "before")
    assert stack.query(DRIFT) == [(20, 0, 0, 0, 0)]  # the trigger syncs

    stack.invoke("rollback", "--level", level, "--yes")
    write_rows(stack, 20, "during")  # unsynced: 20 missing, 1 mismatched
    assert stack.query(DRIFT)[0][1:3] == (20, 1)

    # A refreshing preview says the backfill will run, and why.
    preview = stack.invoke("preview", "--refresh", "--diff", check=False)
    assert "migration013:Backfill" in preview.stdout and "unsynced" in preview.stdout, preview.stdout[-3000:]

    stack.invoke("up")  # the stack file still says dual_write: enabled
    assert stack.query("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'") == [("O",)]
    assert stack.query(DRIFT) == [(40, 0, 0, 0, 0)]
    stack.invoke("preview", "--refresh", "--expect-no-changes")
    assert "FAIL" not in stack.invoke("smoke-test").stdout
    stack.invoke("drift")
