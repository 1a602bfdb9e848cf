"""Phase 3 (contract): an old client's write to habit_tracker is refused with a clear error, while
the reverse sync keeps habit_tracker current for old readers."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from sheets import MONDAY, count, habit, insert_sheet
from two_way import NewClient, apply_phase3, as_user, reverse_drift, sheet

pytestmark = pytest.mark.db

USER = uuid.UUID("44444444-4444-4444-4444-444444444444")


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    apply_phase3(conn)
    return conn


@pytest.mark.parametrize("statement", [
    "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date) VALUES ('{user}', 'Mina', '2025-10-13')",
    "UPDATE public.habit_tracker SET habits = '[]'",
    "DELETE FROM public.habit_tracker",
    "TRUNCATE public.habit_tracker",
])
def test_old_client_write_is_refused_with_phase_3_and_the_app_update(db, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        with as_user(db, USER):
            if statement.startswith("TRUNCATE"):
                db.execute("RESET ROLE")  # the owner too: only the reverse sync writes habit_tracker now
            db.execute(statement.format(user=USER))
    diag = refused.value.diag
    assert diag.sqlstate == "42501"
    assert "habit_tracker is read-only: migration 013 is in Phase 3 (contract)" in diag.message_primary
    assert "Update the app to the version that writes the new tables" in diag.message_hint
    assert "step migration 013 back to Phase 2" in diag.message_hint


def test_reverse_sync_still_keeps_old_readers_current(db):
    client = NewClient(db, USER)
    with as_user(db, USER):
        week = client.new_week("Mina", MONDAY, habits=(("Read", {0: "green"}),))
    with as_user(db, USER):
        client.tick(client.habit(week, 0), MONDAY, 1, "red")
    with as_user(db, USER):  # what an old app version reads, through RLS
        rows = db.execute("SELECT child_name, habits FROM public.habit_tracker").fetchall()
    assert rows == [("Mina", [habit("Read", "green", "red")])]
    assert sheet(db, week)["habits"] == [habit("Read", "green", "red")]
    assert reverse_drift(db)["drift_pct"] == 0
    assert count(db, "dual_write_errors") == 0
    assert count(db, "old_client_writes") == 0  # the reverse sync's writes are not an old client's


def test_old_client_writes_counts_phase_2_statements_not_reverse_sync_writes(conn):
    from two_way import apply_phase2

    apply_phase2(conn)
    with as_user(conn, USER):
        sheet_id = insert_sheet(conn, user_id=USER, habits=[habit("Read")])
        conn.execute("UPDATE public.habit_tracker SET week_period = 'p' WHERE id = %s", (sheet_id,))
        conn.execute("UPDATE public.habit_tracker SET week_period = 'q' WHERE false")  # no row, still a write
    client = NewClient(conn, USER)
    with as_user(conn, USER):
        client.new_week("Jun", MONDAY, habits=(("Walk", {2: "green"}),))
    rows = conn.execute("SELECT day, backend_pid, login_role, statements, first_at <= last_at "
                        "FROM public.old_client_writes").fetchall()
    assert rows == [(rows[0][0], conn.info.backend_pid, "postgres", 3, True)]
    assert count(conn, "habit_tracker") == 2  # the new client's sheet is there, and was not counted
