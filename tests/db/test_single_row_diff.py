"""Phase 1, one row per statement: an UPDATE diffs what changed between the row's two versions.

sync_one_habit_tracker_row() reads and writes only the habits and days that differ between
OLD and NEW when it made the week from OLD, as the set-based sync does for statements of many
rows; a week it did not make (a recorded error) is compared whole. Counted, not timed: the
records one app write reads, from pg_stat_xact_user_tables.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from dualwrite import migration
from sheets import assert_synced, count, habit, insert_sheet, projection, source, update_sheet

pytestmark = pytest.mark.db

FULL_WEEK = ["green", "yellow", "red", "green", "yellow", "red", "green"]
# One changed day: its habit's 7 records (the cleared-day check), one probe, and ON CONFLICT's
# read of the record it updates. The whole week is 5 habits x 7 days, read twice (clear, then upsert).
MOST_RECORDS_READ = 9


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 1)
    conn.execute("SET client_min_messages = warning")  # the guide's NOTICEs are not under test here
    return conn


def records_read(conn: psycopg.Connection) -> int:
    """habit_records tuples this transaction has read so far."""
    row = conn.execute(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
        "WHERE schemaname = 'public' AND relname = 'habit_records'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_an_update_of_one_day_reads_that_habits_records_not_the_weeks(db):
    habits = [habit(f"Habit {n}", *FULL_WEEK) for n in range(5)]
    sheet = insert_sheet(db, habits=habits)
    habits[3]["times"][4] = "green"
    with db.transaction():
        before = records_read(db)
        update_sheet(db, sheet, habits=habits)
        read = records_read(db) - before
    assert_synced(db, sheet)
    assert read <= MOST_RECORDS_READ, (
        f"an update of one day read {read} habit_records tuples: the sync compared the whole week "
        f"({5 * 7} records), not the one habit that changed")


def test_an_update_of_a_week_left_behind_by_a_failed_sync_rewrites_all_of_it(db):
    """As in the set-based sync (test_bulk_sync.py): a row with a recorded error has all of its
    week compared, not only what this write changed."""
    sheet = insert_sheet(db, habits=[habit("Read", "green"), habit("Walk", "red")])
    db.execute("ALTER TABLE public.habits ADD CONSTRAINT short_names CHECK (length(name) < 10)")
    update_sheet(db, sheet, habits=[habit("Read", "yellow"), habit("A very long name", "red")])
    assert count(db, "dual_write_errors") == 1  # the week still mirrors the first version
    db.execute("ALTER TABLE public.habits DROP CONSTRAINT short_names")
    db.execute("UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{1,name}', '\"Walk\"') WHERE id = %s",
               (sheet,))
    assert projection(db, sheet) == source(db, sheet)  # Read's yellow too, which this write did not change


def test_an_update_of_a_row_that_was_not_an_array_rewrites_its_week(db):
    """A previous version that was malformed (not an array) was never projected: nothing to trust."""
    sheet = insert_sheet(db, habits=[habit("Read", "green")])
    db.execute("UPDATE public.habit_tracker SET habits = %s WHERE id = %s", (Jsonb({"not": "an array"}), sheet))
    db.execute("DELETE FROM public.dual_write_errors")  # only the previous version's shape says so now
    update_sheet(db, sheet, habits=[habit("Read", "red", "green")])
    assert_synced(db, sheet)
