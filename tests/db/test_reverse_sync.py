"""Phase 2, new -> old: every kind of write of the new app release (as `authenticated`, through
RLS) is in habit_tracker when it commits, rebuilt once per sheet per transaction, without loops."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Iterator

import psycopg
import pytest

from sheets import (MONDAY, NEXT_MONDAY, assert_synced, count, drift, habit, insert_sheet, projection, source,
                    update_sheet)
from two_way import NewClient, apply_phase2, as_user, rebuilds, reverse_drift, sheet

pytestmark = pytest.mark.db

USER = uuid.UUID("22222222-2222-2222-2222-222222222222")


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    apply_phase2(conn)
    return conn


@pytest.fixture
def counted(db: psycopg.Connection, admin_conn: psycopg.Connection, db_url: str) -> Iterator[psycopg.Connection]:
    """A new session of the Phase 2 database that counts PL/pgSQL calls (track_functions is superuser-only)."""
    admin_conn.execute(f"ALTER DATABASE {db.info.dbname} SET track_functions = 'pl'")
    with psycopg.connect(db_url, autocommit=True) as session:
        yield session


def new_client(db: psycopg.Connection) -> NewClient:
    return NewClient(db, USER)


def assert_both_ways_clean(db: psycopg.Connection) -> None:
    forward, reverse = drift(db), reverse_drift(db)
    assert (forward["missing"], forward["mismatched"], forward["orphaned"]) == (0, 0, 0), forward
    assert (reverse["missing"], reverse["mismatched"], reverse["orphaned"]) == (0, 0, 0), reverse
    assert count(db, "dual_write_errors") == 0


def test_new_week_with_habits_and_ticks_is_one_new_sheet(db):
    client = new_client(db)
    with as_user(db, USER):
        week = client.new_week("Mina", MONDAY, "p1", (("Read", {0: "green", 2: "yellow"}), ("Walk", {6: "red"})))
    assert sheet(db, week) == {
        "user_id": USER, "child": "Mina", "week": MONDAY, "period": "p1",
        "habits": [habit("Read", "green", "", "yellow"), habit("Walk", "", "", "", "", "", "", "red")],
    }
    assert count(db, "habit_tracker") == 1
    assert_both_ways_clean(db)


def move_week(db: psycopg.Connection, week: uuid.UUID, to: date) -> None:
    """The new app moves a week with its records, in two statements (the sheet is malformed between them)."""
    db.execute("UPDATE public.habit_records r SET record_date = %s::date + (r.record_date - w.week_start_date) "
               "FROM public.habits h JOIN public.weeks w ON w.id = h.week_id WHERE h.id = r.habit_id AND w.id = %s",
               (to, week))
    db.execute("UPDATE public.weeks SET week_start_date = %s WHERE id = %s", (to, week))


def test_each_kind_of_new_client_write_reaches_the_sheet(db):
    client = new_client(db)
    with as_user(db, USER):
        week = client.new_week("Mina", MONDAY, "p1", (("Read", {0: "green"}), ("Walk", {})))
    steps = {
        "tick a day": lambda: client.tick(client.habit(week, 1), MONDAY, 3, "yellow"),
        "change a day": lambda: client.tick(client.habit(week, 0), MONDAY, 0, "red"),
        "untick": lambda: client.untick(client.habit(week, 0), MONDAY, 0),
        "rename habit": lambda: db.execute("UPDATE public.habits SET name = 'Read more' WHERE id = %s",
                                           (client.habit(week, 0),)),
        "add habit": lambda: client.add_habit(week, "Sleep", 2),
        "remove last habit": lambda: db.execute("DELETE FROM public.habits WHERE id = %s", (client.habit(week, 2),)),
        "rename child": lambda: db.execute("UPDATE public.children SET name = 'Mina Kim' WHERE user_id = %s",
                                           (USER,)),
        "change period": lambda: db.execute("UPDATE public.weeks SET week_period = 'p2' WHERE id = %s", (week,)),
        "move week": lambda: move_week(db, week, NEXT_MONDAY),
    }
    legacy = db.execute("SELECT legacy_id FROM public.weeks WHERE id = %s", (week,)).fetchone()[0]
    for name, step in steps.items():
        with as_user(db, USER):
            step()
        assert projection(db, legacy) == source(db, legacy), name  # the sheet's projection is the week again
        assert_both_ways_clean(db)
    assert sheet(db, week) == {
        "user_id": USER, "child": "Mina Kim", "week": NEXT_MONDAY, "period": "p2",
        "habits": [habit("Read more"), habit("Walk", "", "", "", "yellow")],
    }
    assert db.execute("SELECT legacy_id FROM public.weeks WHERE id = %s", (week,)).fetchone()[0] == legacy


def test_delete_week_and_delete_child_delete_their_sheets(db):
    client = new_client(db)
    with as_user(db, USER):
        first = client.new_week("Mina", MONDAY, habits=(("Read", {0: "green"}),))
        client.new_week("Mina", NEXT_MONDAY)
        client.new_week("Jun", MONDAY)
    assert count(db, "habit_tracker") == 3
    with as_user(db, USER):
        db.execute("DELETE FROM public.weeks WHERE id = %s", (first,))
    assert count(db, "habit_tracker") == 2
    with as_user(db, USER):
        db.execute("DELETE FROM public.children WHERE name = 'Mina'")
    assert [r[0] for r in db.execute("SELECT child_name FROM public.habit_tracker").fetchall()] == ["Jun"]
    assert_both_ways_clean(db)


def test_a_transaction_rebuilds_each_sheet_once(counted, admin_conn):
    db = counted
    client = new_client(db)
    with as_user(db, USER):
        week = client.new_week("Mina", MONDAY, habits=(("Read", {}), ("Walk", {})))
        other = client.new_week("Jun", MONDAY)
    db.execute("SELECT pg_stat_force_next_flush()")
    before = rebuilds(admin_conn)
    with as_user(db, USER):  # 14 ticks, a rename and a new habit in 16 statements, over 2 sheets
        for position in (0, 1):
            for day in range(7):
                client.tick(client.habit(week, position), MONDAY, day, "green")
        db.execute("UPDATE public.habits SET name = 'Run' WHERE id = %s", (client.habit(week, 1),))
        client.add_habit(other, "Sleep", 0)
    db.execute("SELECT pg_stat_force_next_flush()")
    assert rebuilds(admin_conn) - before == 2
    assert sheet(db, week)["habits"] == [habit("Read", *["green"] * 7), habit("Run", *["green"] * 7)]
    assert_both_ways_clean(db)


def test_old_client_writes_flow_forward_without_coming_back(counted, admin_conn):
    db = counted
    with as_user(db, USER):
        legacy = insert_sheet(db, user_id=USER, habits=[habit("Read", "green")])
        update_sheet(db, legacy, habits=[habit("Read", "green", "red"), habit("Walk")])
    db.execute("SELECT pg_stat_force_next_flush()")
    assert rebuilds(admin_conn) == 0  # the forward sync's writes queued no reverse work
    assert_synced(db, legacy)
    updated_at = db.execute("SELECT updated_at FROM public.habit_tracker WHERE id = %s", (legacy,)).fetchone()[0]
    # and a new client's write is copied back without being projected forward again
    week = db.execute("SELECT id FROM public.weeks WHERE legacy_id = %s", (legacy,)).fetchone()[0]
    notices: list[str] = []
    db.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    with as_user(db, USER):
        new_client(db).tick(new_client(db).habit(week, 1), MONDAY, 4, "yellow")
    # the forward trigger fired for the reverse sync's write and stopped at its guard, before its NOTICEs
    assert not [n for n in notices if n.startswith("Dual-write trigger fired")], notices
    assert db.execute("SELECT updated_at > %s FROM public.habit_tracker WHERE id = %s",
                      (updated_at, legacy)).fetchone()[0]
    assert_synced(db, legacy)
    assert_both_ways_clean(db)


def test_unknown_keys_an_old_client_keeps_survive_a_new_clients_tick(db):
    with as_user(db, USER):
        legacy = insert_sheet(db, user_id=USER, habits=[{**habit("Read"), "color": "blue"}])
    week = db.execute("SELECT id FROM public.weeks WHERE legacy_id = %s", (legacy,)).fetchone()[0]
    client = new_client(db)
    with as_user(db, USER):
        client.tick(client.habit(week, 0), MONDAY, 1, "green")
    assert sheet(db, week)["habits"] == [{**habit("Read", "", "green"), "color": "blue"}]
    assert_both_ways_clean(db)


def test_rolled_back_new_client_write_leaves_nothing(db):
    client = new_client(db)
    with db.transaction(force_rollback=True):
        db.execute("SET LOCAL ROLE authenticated")
        db.execute("SELECT set_config('request.jwt.claim.sub', %s, true)", (str(USER),))
        client.new_week("Mina", MONDAY, habits=(("Read", {0: "green"}),))
    assert count(db, "habit_tracker") == 0 and count(db, "weeks") == 0


def test_malformed_new_writes_are_recorded_and_never_fail_the_writer(db):
    client = new_client(db)
    with as_user(db, USER):
        gap = client.new_week("Mina", MONDAY, habits=(("Read", {0: "green"}),))
        client.add_habit(gap, "Walk", 2)  # position 1 is missing
        outside = client.new_week("Jun", MONDAY, habits=(("Read", {}),))
        client.tick(client.habit(outside, 0), MONDAY, 9, "red")  # a record the week cannot hold
        tuesday = client.new_week("Seo", MONDAY.replace(day=14))
    errors = db.execute("SELECT tracker_id, operation, error FROM public.dual_write_errors ORDER BY id").fetchall()
    texts = [e[2] for e in errors]
    assert len(errors) == 3, errors
    assert any(f"week {gap} not copied to habit_tracker: habit positions are 0, 2, not 0..1" in t for t in texts)
    assert any(f"week {outside} not copied" in t and "2025-10-22, outside the week 2025-10-13..2025-10-19" in t
               for t in texts)
    assert any(f"week {tuesday} not copied to habit_tracker: week_start_date 2025-10-14 is not a Monday" in t
               for t in texts)
    assert {e[1] for e in errors} <= {"INSERT", "UPDATE"}
    reverse = reverse_drift(db)
    assert (reverse["source_rows"], reverse["missing"], reverse["mismatched"]) == (3, 1, 2), reverse
    assert reverse["errors"] == 2  # the two with a sheet; the Tuesday week has none (tracker_id 0)


def test_a_reverse_error_is_resolved_from_the_week_never_projected_forward(db):
    from dualwrite.db import Session
    from dualwrite.dual_write_errors import ResolveRefused, open_errors, resolve

    client = new_client(db)
    with as_user(db, USER):
        week = client.new_week("Mina", MONDAY, habits=(("Read", {0: "green"}),))
        client.add_habit(week, "Walk", 2)  # a gap: not copied, recorded
    (error,), opened, _ = open_errors(db)
    assert opened == 1 and error.operation == "UPDATE" and error.error.startswith("new -> old: week ")
    assert error.status == "open: not synced"
    with pytest.raises(ResolveRefused, match="still cannot be copied to habit_tracker: .*habit positions are 0, 2"):
        resolve(Session.on(db), "test", error.id)
    with as_user(db, USER):
        db.execute("UPDATE public.habits SET position = 1 WHERE week_id = %s AND position = 2", (week,))
    assert sheet(db, week)["habits"] == [habit("Read", "green"), habit("Walk")]  # the fix itself is copied
    db.execute("SELECT public.habit_tracker_from_week(%s)", (week,))
    assert resolve(Session.on(db), "test", error.id).row_exists
    assert open_errors(db)[1] == 0
    assert sheet(db, week)["habits"] == [habit("Read", "green"), habit("Walk")]
