"""Where a backfill starts: the smallest id not in sync, past malformed rows already listed.

`drift.first_to_backfill()` reads it without testing every unsynced row for malformed data;
it must agree with the full split (`drift_split().first_to_backfill`) whatever the diff holds.
"""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import backfill, migration
from dualwrite.drift import drift_split, first_to_backfill
from sheets import habit, insert_sheet

pytestmark = pytest.mark.db


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 1)
    return conn


def agree(conn: psycopg.Connection) -> int | None:
    first = first_to_backfill(conn)
    assert first == drift_split(conn).first_to_backfill
    return first


def test_the_start_skips_listed_malformed_rows_only(db, db_url):
    synced = insert_sheet(db, child="synced", habits=[habit("A", "green")])
    assert agree(db) is None
    migration.set_phase(db, 0)
    bad = insert_sheet(db, child="bad", habits=[{"name": "A"}])  # malformed, not listed yet
    bad_too = insert_sheet(db, child="bad too", habits="text")
    missing = insert_sheet(db, child="missing", habits=[habit("B", "red")])
    assert agree(db) == bad  # unlisted malformed rows are the backfill's work: it lists them
    migration.set_phase(db, 1)
    backfill.run(db_url, show_progress=False)  # lists both malformed rows, projects `missing`
    assert agree(db) is None
    migration.set_phase(db, 0)
    db.execute("DELETE FROM public.habit_tracker WHERE id = %s", (synced,))  # orphaned, below them all
    assert agree(db) == synced
    migration.set_phase(db, 1)
    backfill.run(db_url, show_progress=False)
    assert agree(db) is None
    # A listed row whose problem changed is work again (its new problem is not listed).
    db.execute("ALTER TABLE public.habit_tracker DISABLE TRIGGER trigger_habit_tracker_dual_write")
    db.execute("UPDATE public.habit_tracker SET habits = '[{\"times\": []}]' WHERE id = %s", (bad_too,))
    db.execute("ALTER TABLE public.habit_tracker ENABLE TRIGGER trigger_habit_tracker_dual_write")
    assert agree(db) == bad_too
    assert missing > bad_too > bad
