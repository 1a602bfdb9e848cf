"""Phase 1 with statements of many rows: synced once per statement, the same as row by row.

The sync runs in statement-level triggers (one per event) over the statement's transition
tables; the guide's row trigger still fires per row and stays the switch for all of it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from dualwrite import migration
from sheets import MONDAY, count, drift, habit, projection, source

pytestmark = pytest.mark.db

BULK = uuid.UUID("00000000-0000-0000-0000-00000000b01c")  # sheets written by statements of many rows
SINGLE = uuid.UUID("00000000-0000-0000-0000-00000000517e")  # the same sheets, written one row per statement
GUIDE_DISABLE = "ALTER TABLE habit_tracker DISABLE TRIGGER trigger_habit_tracker_dual_write"  # the guide, as is
GUIDE_DROP = "DROP TRIGGER IF EXISTS trigger_habit_tracker_dual_write ON habit_tracker"
SHEETS = 40


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 1)
    conn.execute("SET client_min_messages = warning")  # 2 NOTICEs per row are not under test here
    return conn


def first_habits(n: int) -> list[dict[str, Any]]:
    return [habit("Read", "green", "", ["", "red", "yellow"][n % 3]), habit(f"Walk {n % 3}", *(["yellow"] * (n % 7))),
            habit("Sleep", "", "", "", "green")][: 1 + n % 3]


def insert_many(conn: psycopg.Connection, user: uuid.UUID, rows: list[tuple[str, Any, Any]]) -> list[int]:
    """One INSERT of every (child, week, habits) row; ids in the order given."""
    values = [(user, child, week, f"period of {child}", Jsonb(habits)) for child, week, habits in rows]
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
            "SELECT u, c, w, p, h FROM unnest(%s::uuid[], %s::text[], %s::date[], %s::text[], %s::jsonb[]) "
            "WITH ORDINALITY AS v (u, c, w, p, h, i) ORDER BY i RETURNING id",
            [list(column) for column in zip(*values)],
        )
        return [row[0] for row in cur.fetchall()]


def sheet_rows(n: int = SHEETS) -> list[tuple[str, Any, Any]]:
    """n sheets of 7 children, one week after another (each (child, week) once)."""
    return [(f"child {i % 7}", MONDAY + timedelta(weeks=i // 7), first_habits(i)) for i in range(n)]


# One UPDATE per change, each written once as a single statement over every bulk sheet and once
# per sheet over the single sheets. Each changes something else, depending on the sheet.
UPDATES = [
    # day edits, cleared days, a habit added, removed, renamed; some sheets untouched
    "UPDATE public.habit_tracker AS t SET habits = CASE t.id %% 5 "
    "  WHEN 0 THEN jsonb_set(t.habits, '{0,times,1}', '\"yellow\"') "
    "  WHEN 1 THEN jsonb_set(t.habits, '{0,times,0}', '\"\"') "
    "  WHEN 2 THEN t.habits || '[{\"name\": \"Added\", \"times\": [\"red\", \"\", \"\", \"\", \"\", \"\", \"green\"]}]' "
    "  WHEN 3 THEN t.habits - 0 "
    "  ELSE jsonb_set(t.habits, '{0,name}', '\"Renamed\"') END, updated_at = now() WHERE {where}",
    # renamed children (moves weeks to another child), moved weeks, periods
    "UPDATE public.habit_tracker AS t SET child_name = CASE WHEN t.id %% 3 = 0 THEN t.child_name || ' Kim' "
    "  ELSE t.child_name END, week_start_date = CASE WHEN t.id %% 3 = 1 THEN t.week_start_date + 700 "
    "  ELSE t.week_start_date END, week_period = 'moved ' || t.id WHERE {where}",
    # every habit replaced, and a touch that changes nothing the sync reads
    "UPDATE public.habit_tracker AS t SET habits = CASE WHEN t.id %% 2 = 0 THEN "
    "  '[{\"name\": \"New\", \"times\": [\"green\", \"green\", \"\", \"\", \"\", \"\", \"\"]}]'::jsonb "
    "  ELSE t.habits END, updated_at = now() WHERE {where}",
]


def shape(conn: psycopg.Connection, sheet: int) -> dict[str, Any] | None:
    """A sheet's projection without its user (the two sets of sheets differ only by user)."""
    found = projection(conn, sheet)
    return None if found is None else {k: v for k, v in found.items() if k != "user_id"}


def test_bulk_insert_update_and_delete_give_what_row_by_row_gives(db):
    bulk = insert_many(db, BULK, sheet_rows())
    single = [insert_many(db, SINGLE, [row])[0] for row in sheet_rows()]
    # ids differ between the two sets; the updates pick sheets by id: give both sets the same
    # choice by pairing each single sheet with its bulk twin's id
    pairs = list(zip(bulk, single))
    for statement in UPDATES:
        db.execute(statement.replace("{where}", "t.user_id = %s"), (BULK,))
        for bulk_id, single_id in pairs:
            # the same change, from the twin's id (the CASEs read t.id)
            twin = statement.replace("t.id", str(bulk_id)).replace("{where}", "t.id = %s")
            db.execute(twin, (single_id,))
        for bulk_id, single_id in pairs:
            assert projection(db, bulk_id) == source(db, bulk_id)
            assert shape(db, bulk_id) == shape(db, single_id)
    deleted = bulk[::3]
    db.execute("DELETE FROM public.habit_tracker WHERE id = ANY (%s)", (deleted,))
    for single_id in single[::3]:
        db.execute("DELETE FROM public.habit_tracker WHERE id = %s", (single_id,))
    assert all(projection(db, sheet) is None for sheet in deleted)
    report = drift(db)
    assert (report["drift_pct"], report["missing"], report["mismatched"], report["orphaned"]) == (0, 0, 0, 0), report
    assert report["source_rows"] == 2 * (SHEETS - len(deleted))
    assert count(db, "dual_write_errors") == 0


def test_bulk_update_of_rows_written_before_phase_1_creates_their_weeks(db):
    migration.set_phase(db, 0)
    sheets = insert_many(db, BULK, sheet_rows(10))
    migration.set_phase(db, 1)
    db.execute("UPDATE public.habit_tracker SET week_period = 'touched' WHERE user_id = %s", (BULK,))
    assert all(projection(db, sheet) == source(db, sheet) for sheet in sheets)
    assert drift(db)["drift_pct"] == 0


def test_bulk_update_of_a_week_left_behind_by_a_failed_sync_rewrites_all_of_it(db):
    """The sync trusts a week to mirror the row's previous version only when it made it: a row
    with a recorded error has all of its week compared, not only what this write changed."""
    sheet, other = insert_many(db, BULK, [("Mina", MONDAY, [habit("Read", "green"), habit("Walk", "red")]),
                                          ("Jun", MONDAY, [habit("Read", "green"), habit("Walk", "red")])])
    db.execute("ALTER TABLE public.habits ADD CONSTRAINT short_names CHECK (length(name) < 10)")
    db.execute("UPDATE public.habit_tracker SET habits = %s WHERE id = %s",
               (Jsonb([habit("Read", "yellow"), habit("A very long name", "red")]), sheet))
    assert count(db, "dual_write_errors") == 1  # the week still mirrors the first version
    db.execute("ALTER TABLE public.habits DROP CONSTRAINT short_names")
    # One statement of two rows (the set-based path), renaming the second habit back.
    db.execute("UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{1,name}', '\"Walk\"') "
               "WHERE id IN (%s, %s)", (sheet, other))
    assert projection(db, sheet) == source(db, sheet)  # Read's yellow too, which this write did not change
    assert projection(db, other) == source(db, other)


@pytest.mark.parametrize("rollback", [GUIDE_DISABLE, GUIDE_DROP])
def test_the_guides_disable_or_drop_of_its_trigger_stops_every_sync(db, rollback):
    sheets = insert_many(db, BULK, sheet_rows(6))
    before = [count(db, t) for t in ("children", "weeks", "habits", "habit_records")]
    snapshot = [projection(db, sheet) for sheet in sheets]
    db.execute(rollback)
    insert_many(db, BULK, [("Later", MONDAY, [habit("Read", "green")]), ("Later 2", MONDAY, [])])  # bulk INSERT
    insert_many(db, SINGLE, [("Alone", MONDAY, [habit("Read", "green")])])  # single INSERT
    db.execute("UPDATE public.habit_tracker SET habits = '[]', child_name = child_name || ' x' "
               "WHERE id = ANY (%s)", (sheets[:4],))  # bulk UPDATE
    db.execute("UPDATE public.habit_tracker SET week_period = 'one' WHERE id = %s", (sheets[4],))  # single UPDATE
    db.execute("DELETE FROM public.habit_tracker WHERE id = %s", (sheets[5],))  # single DELETE
    assert [count(db, t) for t in ("children", "weeks", "habits", "habit_records")] == before
    assert [projection(db, sheet) for sheet in sheets] == snapshot
    assert count(db, "dual_write_errors") == 0


def errors(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT tracker_id, operation, error FROM public.dual_write_errors ORDER BY id").fetchall()


def test_a_malformed_row_in_a_bulk_statement_is_recorded_and_the_others_synced(db):
    rows = sheet_rows(8)
    rows[3] = ("Broken", MONDAY, [{"name": "Read", "times": ["green"]}])
    sheets = insert_many(db, BULK, rows)
    assert [e[:2] for e in errors(db)] == [(sheets[3], "INSERT")] and "has 1 entries" in errors(db)[0][2]
    assert projection(db, sheets[3]) is None
    assert all(projection(db, s) == source(db, s) for i, s in enumerate(sheets) if i != 3)
    db.execute("UPDATE public.habit_tracker SET habits = CASE WHEN id = %s THEN '\"oops\"'::jsonb "
               "ELSE jsonb_set(habits, '{0,times,6}', '\"red\"') END WHERE user_id = %s AND id <> %s",
               (sheets[5], BULK, sheets[3]))
    assert [e[:2] for e in errors(db)][1:] == [(sheets[5], "UPDATE")]
    assert all(projection(db, s) == source(db, s) for i, s in enumerate(sheets) if i not in (3, 5))
    report = drift(db)
    assert (report["missing"], report["mismatched"], report["errors"]) == (1, 1, 2)


def test_an_unexpected_failure_in_a_bulk_statement_is_recorded_for_its_row_only(db):
    """A new-schema constraint the sync cannot know fails one row: that row is recorded with its
    SQLSTATE and warned, its partial sync rolled back; the statement's other rows are synced."""
    db.execute("ALTER TABLE public.habits ADD CONSTRAINT short_names CHECK (length(name) < 10)")
    warnings: list[str] = []
    db.add_notice_handler(lambda d: warnings.append(d.message_primary or "")
                          if d.severity_nonlocalized == "WARNING" else None)
    rows = sheet_rows(20)
    rows[13] = ("Long", MONDAY, [habit("A very long habit name", "green")])
    sheets = insert_many(db, BULK, rows)
    [(tracker, operation, error)] = errors(db)
    assert (tracker, operation) == (sheets[13], "INSERT") and "SQLSTATE 23514" in error
    assert len(warnings) == 1 and f"id={sheets[13]}" in warnings[0]
    assert projection(db, sheets[13]) is None
    assert all(projection(db, s) == source(db, s) for i, s in enumerate(sheets) if i != 13)


def xids_assigned_since(conn: psycopg.Connection, top: int) -> int:
    """Subtransaction XIDs assigned in this transaction since its top-level XID `top`: the next
    XID, read from the row a savepoint writes (its xmin), minus the ones before it. XIDs are
    handed out one after another for the whole cluster, and nothing else writes in the test's
    own cluster meanwhile. (PostgreSQL 15 has no per-backend count: pg_stat_get_backend_subxact
    is 16's, and a committed subtransaction releases the lock on its XID, so pg_locks does not
    show them.) An upper bound of the backend's subxid cache entries (PGPROC_MAX_CACHED_SUBXIDS
    = 64): an aborted subtransaction's XID counts here and leaves the cache."""
    with conn.transaction(force_rollback=True):  # a savepoint: its row and its XID leave no trace
        row = conn.execute("INSERT INTO xid_probe VALUES (1) RETURNING xmin::text::bigint").fetchone()
    assert row is not None
    return int(row[0]) - top % 2**32 - 1


@pytest.mark.parametrize("unexpected_failure", [False, True])
def test_a_bulk_update_uses_at_most_64_subtransaction_xids(db, unexpected_failure):
    sheets = insert_many(db, BULK, sheet_rows(500))
    db.execute("CREATE TEMP TABLE xid_probe (n integer)")
    if unexpected_failure:  # the failing row is searched for by halving: about 2 * log2(500) subtransactions
        db.execute("ALTER TABLE public.habits ADD CONSTRAINT short_names CHECK (length(name) < 10)")
    with db.transaction():
        top = db.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]
        db.execute("UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{0,name}', "
                   "CASE WHEN id = %s THEN '\"A very long habit name\"'::jsonb ELSE '\"Renamed\"'::jsonb END) "
                   "WHERE user_id = %s", (sheets[250], BULK))
        used = xids_assigned_since(db, top)
    assert 1 <= used <= 64, used
    assert count(db, "dual_write_errors") == (1 if unexpected_failure else 0)
    assert all(projection(db, s) == source(db, s) for s in sheets if s != sheets[250] or not unexpected_failure)


def test_rows_written_by_the_reverse_sync_are_not_projected_back(db):
    """Phase 2's contract: the reverse sync marks its writes to habit_tracker with
    habit_tracker_db.syncing = 'reverse' (transaction-local); the forward sync skips them."""
    with db.transaction():
        db.execute("SELECT set_config('habit_tracker_db.syncing', 'reverse', true)")
        insert_many(db, BULK, sheet_rows(3))
    assert count(db, "weeks") == 0
    sheets = insert_many(db, SINGLE, sheet_rows(3))
    assert all(projection(db, s) == source(db, s) for s in sheets)
    # the forward sync marks its own writes 'forward' only while it writes
    assert db.execute("SELECT current_setting('habit_tracker_db.syncing', true)").fetchone()[0] in (None, "")


def test_a_bulk_write_by_an_app_role_without_new_schema_grants_still_syncs(db):
    """The statement function is the SECURITY DEFINER one: the app's role needs no right on the new schema."""
    for table in ("children", "weeks", "habits", "habit_records"):
        db.execute(f"REVOKE ALL ON public.{table} FROM authenticated")
    with db.transaction():
        db.execute("SET LOCAL ROLE authenticated")
        sheets = insert_many(db, BULK, sheet_rows(5))
        db.execute("UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{0,times,3}', '\"red\"') "
                   "WHERE user_id = %s", (BULK,))
    assert all(projection(db, s) == source(db, s) for s in sheets)
