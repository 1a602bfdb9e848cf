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


def test_unchanged_week_period_null_is_synced(db):
    insert_sheet(db, period=None, habits=[habit("Read", "green")])
    assert drift(db)["synced"] == 1


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
