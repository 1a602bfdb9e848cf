"""Issue 17.3: drift says how much is malformed and how much unsynced; `invoke errors` lists and resolves."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import dual_write_errors as dwe
from dualwrite import migration
from dualwrite.config import parse
from dualwrite.db import Session
from dualwrite.drift import drift_split
from dualwrite.stack_drift import stack_drift
from sheets import assert_synced, habit, insert_sheet, update_sheet

pytestmark = pytest.mark.db
BAD = [{"name": "Read", "times": ["blue"] + [""] * 6}]
GOOD = [habit("Read", "green")]


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 1)
    return conn


def config(**extra: str):
    return parse("dev", {"phase": "1", "db_host": "127.0.0.1", **extra}, has_password=False)


def disable_trigger(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE public.habit_tracker DISABLE TRIGGER trigger_habit_tracker_dual_write")


def enable_trigger(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE public.habit_tracker ENABLE TRIGGER trigger_habit_tracker_dual_write")


def test_drift_above_the_threshold_says_how_much_is_malformed_and_unsynced_with_the_fix_of_each(db):
    insert_sheet(db, child="ok", habits=GOOD)
    insert_sheet(db, child="bad", habits=BAD)  # recorded by the trigger
    disable_trigger(db)
    insert_sheet(db, child="late1", habits=GOOD)
    insert_sheet(db, child="late2", habits=GOOD)
    insert_sheet(db, child="bad2", habits="x")  # malformed, not recorded yet
    enable_trigger(db)
    split = drift_split(db)
    assert (split.unsynced, split.malformed, split.listed) == (2, 2, 1)
    result = stack_drift(db, config())
    assert not result.ok and result.not_applicable is None
    failure = result.failure()
    assert "2 unsynced rows" in failure and "`invoke backfill --stack dev`" in failure
    assert "2 malformed rows (1 listed in dual_write_errors, 1 not yet" in failure
    assert "`invoke errors --stack dev`" in failure and "--resolve ID" in failure
    assert ("unsynced rows", "2 (`invoke backfill --stack dev`)") in result.rows()


def test_drift_does_not_apply_with_the_trigger_disabled_as_declared(db):
    insert_sheet(db, child="ok", habits=GOOD)
    disable_trigger(db)
    insert_sheet(db, child="late", habits=GOOD)
    result = stack_drift(db, config(dual_write="disabled"))
    assert result.ok and "Option 1" in result.not_applicable and result.report is None


def test_errors_lists_open_rows_and_resolve_resyncs_a_fixed_row(db):
    bad = insert_sheet(db, child="bad", habits=BAD)
    session = Session.on(db)
    [row], opened, handled = dwe.open_errors(db)
    assert (row.tracker_id, row.status, opened, handled) == (bad, "open: malformed", 1, 0)
    assert "--resolve" in row.next_step("dev") and "unknown status" in row.next_step("dev")

    # Still malformed: refused, with the reason, nothing changed.
    with pytest.raises(dwe.ResolveRefused, match=f"habit_tracker id {bad} .* is still malformed"):
        dwe.resolve(session, "dev", row.id)
    assert db.execute("SELECT count(*) FROM public.weeks WHERE legacy_id = %s", (bad,)).fetchone() == (0,)

    # Fixed while the trigger did not sync: open until resolved.
    disable_trigger(db)
    update_sheet(db, bad, habits=GOOD)
    enable_trigger(db)
    [row], opened, _ = dwe.open_errors(db)
    assert row.status == "open: not synced" and opened == 1
    done = dwe.resolve(session, "dev", row.id)
    assert (done.tracker_id, done.row_exists) == (bad, True)
    assert_synced(db, bad)
    assert dwe.open_errors(db) == ([], 0, 1)
    [row], _, _ = dwe.open_errors(db, include_handled=True)
    assert row.status == "handled"  # the record stays: history
    assert drift_split(db).drifted == 0


def test_a_row_fixed_through_the_trigger_is_handled_without_resolve(db):
    bad = insert_sheet(db, child="bad", habits=BAD)
    update_sheet(db, bad, habits=GOOD)
    assert dwe.open_errors(db)[1:] == (0, 1)


def test_resolving_an_unknown_id_is_refused(db):
    with pytest.raises(dwe.ResolveRefused, match="dual_write_errors has no row with id 999"):
        dwe.resolve(Session.on(db), "dev", 999)


def test_monitor_shows_the_state_the_drift_split_and_the_rows_malformed_now(db):
    from dualwrite import monitor

    insert_sheet(db, child="bad", habits=BAD)
    disable_trigger(db)
    insert_sheet(db, child="late", habits=GOOD)
    status = monitor.status(db, config(dual_write="disabled"))
    assert status.dual_write.startswith("rollback Option 1: Disable Trigger")
    assert status.drift.startswith("drift does not apply to stack 'dev' while the trigger does not sync")
    enable_trigger(db)
    status = monitor.status(db, config())
    assert status.dual_write.startswith("dual write runs as declared")
    assert status.dual_write_errors == "1 recorded; 1 rows malformed now (`invoke errors --stack dev`)"
    assert "ABOVE the threshold 0.1%" in status.drift and "1 unsynced rows" in status.drift
    assert "1 malformed rows (1 listed in dual_write_errors)" in status.drift
