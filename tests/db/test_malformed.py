"""Malformed rows never fail the app's write: the row is stored, the error is logged and warned, drift counts it."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import migration
from sheets import MONDAY, TUESDAY, assert_synced, drift, habit, insert_sheet, projection, source, update_sheet

pytestmark = pytest.mark.db

CASES = {
    "habits not an array": (MONDAY, {"name": "Read", "times": []}, "habits is not a JSON array"),
    "habits a string": (MONDAY, "Read", "habits is not a JSON array"),
    "element not an object": (MONDAY, ["Read"], "habits[0] is not an object"),
    "element without a name": (MONDAY, [{"times": [""] * 7}], 'habits[0] has no "name" string'),
    "name not a string": (MONDAY, [{"name": 7, "times": [""] * 7}], 'habits[0] has no "name" string'),
    "times missing": (MONDAY, [{"name": "Read"}], 'habits[0] has no "times" array'),
    "times with 6 entries": (MONDAY, [{"name": "Read", "times": [""] * 6}], "has 6 entries"),
    "times with 8 entries": (MONDAY, [{"name": "Read", "times": [""] * 8}], "has 8 entries"),
    "unknown status": (MONDAY, [habit("Read", "green"), habit("Walk", "blue")], "habits[1] has an unknown status"),
    "status not a string": (MONDAY, [{"name": "Read", "times": [1, "", "", "", "", "", ""]}], "unknown status"),
    "week not a Monday": (TUESDAY, [habit("Read", "green")], "week_start_date 2025-10-14 is not a Monday"),
}


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 1)
    return conn


@pytest.fixture
def warnings(db: psycopg.Connection) -> list[str]:
    captured: list[str] = []
    db.add_notice_handler(
        lambda d: captured.append(d.message_primary or "") if d.severity_nonlocalized == "WARNING" else None
    )
    return captured


def errors(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT tracker_id, operation, error FROM public.dual_write_errors ORDER BY id").fetchall()


@pytest.mark.parametrize("case", CASES)
def test_malformed_insert_is_stored_logged_warned_and_counted(db, warnings, case):
    week, habits, message = CASES[case]
    sheet = insert_sheet(db, week=week, habits=habits)
    assert source(db, sheet)["habits"] == habits  # stored exactly as the app asked
    assert projection(db, sheet) is None
    [(tracker, operation, error)] = errors(db)
    assert (tracker, operation) == (sheet, "INSERT") and message in error
    assert len(warnings) == 1 and message in warnings[0] and f"id={sheet}" in warnings[0]
    report = drift(db)
    assert (report["missing"], report["errors"]) == (1, 1) and report["drift_pct"] == 100


def lenient_week(conn: psycopg.Connection, sheet: int, week, habits) -> None:
    """Write by hand the closest thing to a projection of a malformed row, so that a drift
    check that skipped validation would call it synced."""
    row = source(conn, sheet)
    child = conn.execute("INSERT INTO public.children (user_id, name) VALUES (%s, %s) RETURNING id",
                         (row["user_id"], row["child"])).fetchone()[0]
    week_id = conn.execute(
        "INSERT INTO public.weeks (child_id, week_start_date, week_period, legacy_id) VALUES (%s, %s, %s, %s) "
        "RETURNING id", (child, week, row["period"], sheet)).fetchone()[0]
    for position, element in enumerate(habits if isinstance(habits, list) else []):
        if not isinstance(element, dict):
            continue
        habit_id = conn.execute("INSERT INTO public.habits (week_id, name, position) VALUES (%s, %s, %s) RETURNING id",
                                (week_id, str(element.get("name", "")), position)).fetchone()[0]
        for day, status in enumerate(element.get("times", [])[:7]):
            if status in ("green", "yellow", "red"):
                conn.execute("INSERT INTO public.habit_records (habit_id, record_date, status) "
                             "VALUES (%s, %s::date + %s, %s)", (habit_id, week, day, status))


@pytest.mark.parametrize("case", CASES)
def test_helper_and_drift_agree_on_what_is_malformed(db, case):
    """The trigger's test (habit_tracker_row_error) and drift's inline test must never disagree:
    a malformed row is never 'synced', however close its week looks."""
    week, habits, _ = CASES[case]
    migration.set_phase(db, 0)
    sheet = insert_sheet(db, week=week, habits=habits)
    lenient_week(db, sheet, week, habits)
    assert db.execute("SELECT public.habit_tracker_row_error(habits, week_start_date) FROM public.habit_tracker "
                      "WHERE id = %s", (sheet,)).fetchone()[0] is not None
    report = drift(db)
    assert (report["synced"], report["mismatched"]) == (0, 1)


def test_lenient_week_of_a_valid_row_is_synced(db):
    """Control for the test above: the same hand-written week of a valid row counts as synced."""
    migration.set_phase(db, 0)
    habits = [habit("Read", "green", "", "red"), habit("Walk")]
    sheet = insert_sheet(db, habits=habits)
    lenient_week(db, sheet, MONDAY, habits)
    assert drift(db)["synced"] == 1


def test_malformed_update_keeps_the_old_projection_and_counts_as_mismatched(db, warnings):
    sheet = insert_sheet(db, habits=[habit("Read", "green")])
    before = projection(db, sheet)
    update_sheet(db, sheet, habits=[{"name": "Read", "times": ["green"]}])
    assert projection(db, sheet) == before
    assert errors(db)[0][:2] == (sheet, "UPDATE")
    report = drift(db)
    assert (report["mismatched"], report["errors"], report["synced"]) == (1, 1, 0)


def test_fixing_the_row_syncs_it_and_clears_it_from_drift(db):
    sheet = insert_sheet(db, habits=[habit("Read", "purple")])
    update_sheet(db, sheet, habits=[habit("Read", "red")])
    assert_synced(db, sheet)
    report = drift(db)
    assert (report["synced"], report["errors"], report["drift_pct"]) == (1, 0, 0)


def test_unexpected_failure_is_caught_logged_and_does_not_fail_the_write(db, warnings):
    """Anything beyond validation (here: a new-schema constraint the trigger cannot satisfy)."""
    db.execute("ALTER TABLE public.habits ADD CONSTRAINT short_names CHECK (length(name) < 10)")
    sheet = insert_sheet(db, habits=[habit("A very long habit name", "green")])
    assert source(db, sheet)["habits"][0]["name"] == "A very long habit name"
    [(tracker, operation, error)] = errors(db)
    assert (tracker, operation) == (sheet, "INSERT") and "short_names" in error and "SQLSTATE 23514" in error
    assert "short_names" in warnings[0]
    # The subtransaction rolled back the partial sync: no week without its habits.
    assert projection(db, sheet) is None


def test_malformed_delete_is_fine(db):
    sheet = insert_sheet(db, habits="garbage")
    db.execute("DELETE FROM public.habit_tracker WHERE id = %s", (sheet,))
    assert drift(db)["source_rows"] == 0 and drift(db)["drift_pct"] == 0
