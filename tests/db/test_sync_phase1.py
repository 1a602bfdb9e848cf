"""Phase 1 mapping rules (issue 4): after every write, the week with legacy_id = id is the row's projection."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from dualwrite import migration
from sheets import MONDAY, NEXT_MONDAY, assert_synced, count, drift, habit, insert_sheet, projection, update_sheet

pytestmark = pytest.mark.db

USER = uuid.UUID("11111111-1111-1111-1111-111111111111")


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 1)
    return conn


def ids(conn: psycopg.Connection, table: str, sheet: int) -> list:
    query = {
        "habits": "SELECT h.id FROM public.habits h JOIN public.weeks w ON w.id = h.week_id "
                  "WHERE w.legacy_id = %s ORDER BY h.position",
        "weeks": "SELECT id FROM public.weeks WHERE legacy_id = %s",
    }[table]
    return [r[0] for r in conn.execute(query, (sheet,)).fetchall()]


def test_insert_creates_child_week_habits_and_one_record_per_nonempty_day(db):
    sheet = insert_sheet(db, user_id=USER, habits=[habit("Read", "green", "", "yellow"), habit("Walk")])
    assert_synced(db, sheet)
    assert (count(db, "children"), count(db, "weeks"), count(db, "habits"), count(db, "habit_records")) == (1, 1, 2, 2)
    dates = [r[0] for r in db.execute("SELECT record_date FROM public.habit_records ORDER BY 1").fetchall()]
    assert [str(d) for d in dates] == ["2025-10-13", "2025-10-15"]


def test_insert_reuses_the_child_of_the_same_user_and_name(db):
    insert_sheet(db, user_id=USER, week=MONDAY)
    insert_sheet(db, user_id=USER, week=NEXT_MONDAY)
    insert_sheet(db, week=MONDAY)  # same name, another user: another child
    assert count(db, "children") == 2 and count(db, "weeks") == 3


def test_insert_adopts_a_week_written_only_through_the_new_path(db):
    child = db.execute("INSERT INTO public.children (user_id, name) VALUES (%s, 'Mina') RETURNING id", (USER,)).fetchone()[0]
    week = db.execute("INSERT INTO public.weeks (child_id, week_start_date) VALUES (%s, %s) RETURNING id",
                      (child, MONDAY)).fetchone()[0]
    sheet = insert_sheet(db, user_id=USER, habits=[habit("Read", "red")])
    assert ids(db, "weeks", sheet) == [week]
    assert_synced(db, sheet)


def test_update_of_one_day_writes_only_that_record(db):
    sheet = insert_sheet(db, habits=[habit("Read", "green", "green"), habit("Walk", "red")])
    before = db.execute("SELECT id, status FROM public.habit_records ORDER BY id").fetchall()
    update_sheet(db, sheet, habits=[habit("Read", "green", "yellow"), habit("Walk", "red")])
    after = db.execute("SELECT id, status FROM public.habit_records ORDER BY id").fetchall()
    assert sorted(r[0] for r in before) == sorted(r[0] for r in after)  # same rows, one changed in place
    assert sum(1 for a, b in zip(before, after) if a != b) == 1
    assert_synced(db, sheet)


def test_update_clears_a_day(db):
    sheet = insert_sheet(db, habits=[habit("Read", "green", "red")])
    update_sheet(db, sheet, habits=[habit("Read", "green", "")])
    assert_synced(db, sheet)
    assert count(db, "habit_records") == 1


def test_update_renamed_child_moves_the_week_and_keeps_the_old_child(db):
    sheet = insert_sheet(db, user_id=USER, child="Mina", habits=[habit("Read", "green")])
    week = ids(db, "weeks", sheet)
    update_sheet(db, sheet, child="Mina Kim")
    assert_synced(db, sheet)
    assert ids(db, "weeks", sheet) == week  # moved, not recreated
    names = {r[0] for r in db.execute("SELECT name FROM public.children").fetchall()}
    assert names == {"Mina", "Mina Kim"}


def test_update_moved_week_shifts_every_record(db):
    sheet = insert_sheet(db, habits=[habit("Read", "green", "", "", "", "", "", "red")])
    update_sheet(db, sheet, week=NEXT_MONDAY)
    assert_synced(db, sheet)
    dates = [str(r[0]) for r in db.execute("SELECT record_date FROM public.habit_records ORDER BY 1").fetchall()]
    assert dates == ["2025-10-20", "2025-10-26"]


def test_update_into_a_slot_held_by_a_new_path_week_adopts_it(db):
    sheet = insert_sheet(db, user_id=USER, week=MONDAY, habits=[habit("Read", "green")])
    child = db.execute("SELECT id FROM public.children").fetchone()[0]
    other = db.execute("INSERT INTO public.weeks (child_id, week_start_date) VALUES (%s, %s) RETURNING id",
                       (child, NEXT_MONDAY)).fetchone()[0]
    update_sheet(db, sheet, week=NEXT_MONDAY)
    assert ids(db, "weeks", sheet) == [other]
    assert count(db, "weeks") == 1
    assert_synced(db, sheet)


def test_update_period_only(db):
    sheet = insert_sheet(db, period="old")
    update_sheet(db, sheet, period=None)
    assert_synced(db, sheet)


def test_habits_added_removed_renamed_and_reordered_are_diffed_by_position(db):
    sheet = insert_sheet(db, habits=[habit("A", "green"), habit("B", "red"), habit("C", "yellow")])
    kept = ids(db, "habits", sheet)
    steps = [
        [habit("A", "green"), habit("B", "red"), habit("C", "yellow"), habit("D", "green")],  # added
        [habit("A", "green"), habit("C", "yellow")],  # removed from the middle
        [habit("A2", "green"), habit("C", "yellow")],  # renamed
        [habit("C", "yellow"), habit("A2", "green")],  # reordered
        [],  # all removed
        [habit("Z", "red", "red", "red", "red", "red", "red", "red")],  # back again
    ]
    for habits in steps:
        update_sheet(db, sheet, habits=habits)
        assert_synced(db, sheet)
    assert ids(db, "habits", sheet)[0] != kept[0]  # after [], position 0 is a new habit
    assert drift(db)["drift_pct"] == 0


def test_positions_are_reused_not_recreated(db):
    sheet = insert_sheet(db, habits=[habit("A", "green"), habit("B", "red")])
    before = ids(db, "habits", sheet)
    update_sheet(db, sheet, habits=[habit("B", "red"), habit("A", "green")])
    assert ids(db, "habits", sheet) == before


def test_update_of_an_unsynced_row_creates_its_week(db):
    migration.set_phase(db, 0)
    sheet = insert_sheet(db, habits=[habit("Read", "green")])
    migration.set_phase(db, 1)
    update_sheet(db, sheet, period="touched")
    assert_synced(db, sheet)


def test_update_of_the_id_repoints_the_week(db):
    sheet = insert_sheet(db, habits=[habit("Read", "green")])
    db.execute("UPDATE public.habit_tracker SET id = 999 WHERE id = %s", (sheet,))
    assert projection(db, sheet) is None
    assert_synced(db, 999)


def test_delete_removes_the_week_with_its_habits_and_records_and_keeps_the_child(db):
    sheet = insert_sheet(db, habits=[habit("Read", "green", "red")])
    other = insert_sheet(db, child="Other", habits=[habit("Walk", "green")])
    db.execute("DELETE FROM public.habit_tracker WHERE id = %s", (sheet,))
    assert projection(db, sheet) is None
    assert (count(db, "children"), count(db, "weeks"), count(db, "habits"), count(db, "habit_records")) == (2, 1, 1, 1)
    assert_synced(db, other)


def test_notices_stay_in_phase1(db):
    notices: list[str] = []
    db.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    sheet = insert_sheet(db, child="Test Child")
    assert notices == [f"Dual-write trigger fired: table=habit_tracker, operation=INSERT, id={sheet}",
                       "Trigger details: child_name=Test Child, week_start_date=2025-10-13"]


def test_app_role_without_new_schema_grants_still_syncs(db):
    for table in ("children", "weeks", "habits", "habit_records"):
        db.execute(f"REVOKE ALL ON public.{table} FROM authenticated")
    with db.transaction():
        db.execute("SET LOCAL ROLE authenticated")
        sheet = insert_sheet(db, habits=[habit("Read", "green")])
    assert_synced(db, sheet)


def test_rolled_back_app_write_leaves_nothing(db):
    with db.transaction(force_rollback=True):
        insert_sheet(db, habits=[habit("Read", "green")])
    assert (count(db, "children"), count(db, "weeks"), count(db, "habits")) == (0, 0, 0)
