"""dual_write_drift() and dualwrite.drift on crafted data: every counter, and the threshold."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from dualwrite import drift as dr
from dualwrite import migration
from sheets import MONDAY, drift, habit, insert_sheet

pytestmark = pytest.mark.db


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 1)
    return conn


def sheets(conn: psycopg.Connection, n: int) -> list[int]:
    return [insert_sheet(conn, child=f"c{i}", habits=[habit("Read", "green", "red"), habit("Walk", "", "yellow")])
            for i in range(n)]


def test_empty_database_has_no_drift(db):
    assert dr.drift_report(db) == dr.DriftReport(0, 0, 0, 0, 0, 0, Decimal(0))


def test_each_kind_of_difference_is_counted(db):
    ids = sheets(db, 10)
    migration.set_phase(db, 0)  # edit behind the trigger's back
    # missing: a row written while unsynced
    insert_sheet(db, child="new")
    # mismatched, one per kind of difference the projection covers
    db.execute("UPDATE public.habit_tracker SET week_period = 'changed' WHERE id = %s", (ids[0],))
    db.execute("UPDATE public.habit_tracker SET child_name = 'renamed' WHERE id = %s", (ids[1],))
    db.execute("UPDATE public.habit_tracker SET week_start_date = week_start_date + 7 WHERE id = %s", (ids[2],))
    db.execute("UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{0,name}', '\"Write\"') WHERE id = %s", (ids[3],))
    db.execute("UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{1,times,1}', '\"red\"') WHERE id = %s", (ids[4],))
    db.execute("UPDATE public.habit_tracker SET habits = habits - 1 WHERE id = %s", (ids[5],))
    # reordered habits only
    db.execute("UPDATE public.habit_tracker SET habits = jsonb_build_array(habits->1, habits->0) WHERE id = %s", (ids[6],))
    # new schema edited by hand: a record moved outside its week
    db.execute("UPDATE public.habit_records SET record_date = record_date + 7 WHERE id = (SELECT r.id FROM "
               "public.habit_records r JOIN public.habits h ON h.id = r.habit_id JOIN public.weeks w ON w.id = h.week_id "
               "WHERE w.legacy_id = %s LIMIT 1)", (ids[7],))
    # orphaned: source row deleted while unsynced
    db.execute("DELETE FROM public.habit_tracker WHERE id = %s", (ids[8],))
    report = dr.drift_report(db)
    assert (report.source_rows, report.synced, report.missing, report.mismatched, report.orphaned, report.errors) == \
        (10, 1, 1, 8, 1, 0)
    assert report.drift_pct == Decimal("100.000000")  # (1 + 8 + 1) / 10


def test_a_day_that_changes_habit_within_its_week_is_a_mismatch(db):
    # Names, positions, dates and statuses all stay in the week: only which habit a day
    # belongs to changes. The fingerprint must bind each day to its habit's position.
    ids = sheets(db, 3)
    migration.set_phase(db, 0)
    # source: the two habits swap their days ("Read" gets "Walk"'s and back)
    db.execute("UPDATE public.habit_tracker SET habits = jsonb_set(jsonb_set(habits, '{0,times}', habits->1->'times'),"
               " '{1,times}', habits->0->'times') WHERE id = %s", (ids[0],))
    # new schema edited by hand: Read's Monday (day 0, green) moves to Walk, whose Monday is empty
    db.execute("UPDATE public.habit_records AS r SET habit_id = walk.id "
               "FROM public.weeks AS w JOIN public.habits AS read ON read.week_id = w.id AND read.position = 0 "
               "JOIN public.habits AS walk ON walk.week_id = w.id AND walk.position = 1 "
               "WHERE w.legacy_id = %s AND r.habit_id = read.id AND r.record_date = w.week_start_date", (ids[1],))
    assert db.execute("SELECT count(*) FROM public.habit_records AS r JOIN public.habits AS h ON h.id = r.habit_id "
                      "JOIN public.weeks AS w ON w.id = h.week_id WHERE w.legacy_id = %s AND h.position = 1 "
                      "AND r.record_date = w.week_start_date", (ids[1],)).fetchone()[0] == 1
    assert db.execute("SELECT d.legacy_id, d.state FROM public.dual_write_diff() AS d ORDER BY 1").fetchall() == \
        [(ids[0], "mismatched"), (ids[1], "mismatched")]


def test_unchanged_week_period_null_is_synced(db):
    insert_sheet(db, period=None, habits=[habit("Read", "green")])
    assert drift(db)["synced"] == 1


def test_each_column_of_the_sheet_binds_its_week(db):
    # The sheet's columns reach the comparison as one chained hash per side: each one must
    # count, and a NULL week_period must not pass for an empty one (or the other way round).
    ids = sheets(db, 5)
    migration.set_phase(db, 0)
    db.execute("UPDATE public.habit_tracker SET user_id = gen_random_uuid() WHERE id = %s", (ids[0],))
    db.execute("UPDATE public.habit_tracker SET week_period = NULL WHERE id = %s", (ids[1],))
    db.execute("UPDATE public.weeks SET week_period = '' WHERE legacy_id = %s", (ids[1],))
    db.execute("UPDATE public.habit_tracker SET week_period = '' WHERE id = %s", (ids[2],))
    db.execute("UPDATE public.weeks SET week_period = NULL WHERE legacy_id = %s", (ids[2],))
    # child name and period swapped between the two columns on the new side: same texts, other places
    db.execute("UPDATE public.habit_tracker SET child_name = 'p', week_period = 'n' WHERE id = %s", (ids[3],))
    db.execute("UPDATE public.children SET name = 'n' WHERE id = (SELECT child_id FROM public.weeks WHERE legacy_id = %s)",
               (ids[3],))
    db.execute("UPDATE public.weeks SET week_period = 'p' WHERE legacy_id = %s", (ids[3],))
    assert db.execute("SELECT d.legacy_id, d.state FROM public.dual_write_diff() AS d ORDER BY 1").fetchall() == \
        [(ids[0], "mismatched"), (ids[1], "mismatched"), (ids[2], "mismatched"), (ids[3], "mismatched")]


def test_new_path_only_weeks_are_not_orphans(db):
    child = db.execute("INSERT INTO public.children (user_id, name) VALUES (gen_random_uuid(), 'x') RETURNING id").fetchone()[0]
    db.execute("INSERT INTO public.weeks (child_id, week_start_date) VALUES (%s, %s)", (child, MONDAY))
    assert drift(db)["orphaned"] == 0


def test_percentage_and_threshold(db):
    sheets(db, 1000)
    migration.set_phase(db, 0)
    insert_sheet(db, child="unsynced")  # 1 missing of 1001
    report = dr.drift_report(db)
    assert report.drift_pct == Decimal("0.099900")
    assert report.within("0.1") and dr.check(report) is report
    insert_sheet(db, child="unsynced 2")  # 2 of 1002 = 0.1996 %
    report = dr.drift_report(db)
    assert not report.within(0.1)
    with pytest.raises(dr.DriftAboveThreshold, match="2 missing"):
        dr.check(report, "0.1")


def test_tiny_drift_never_rounds_to_zero(db):
    db.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date) "
               "SELECT gen_random_uuid(), 'c' || g, DATE '2025-10-13' FROM generate_series(1, 2000) g")
    migration.set_phase(db, 0)
    db.execute("DELETE FROM public.habit_tracker WHERE id = 1")
    db.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date) VALUES (gen_random_uuid(), 'z', %s)",
               (MONDAY,))
    report = dr.drift_report(db)
    assert report.orphaned == 1 and report.missing == 1 and report.drift_pct > 0
