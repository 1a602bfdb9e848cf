"""A step out of lock retries names the sessions it waited for (issue 17, item 6): pid, user,
application_name, state, transaction age and the first line of their query; `rollback` too."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from dualwrite import migration, rollback
from dualwrite.catalog import by_name, objects_in
from dualwrite.db import Session
from dualwrite.lock_waits import LockWaitExhausted
from test_migration import present

pytestmark = pytest.mark.db


def app_session(db_url: str, name: str) -> psycopg.Connection:
    return psycopg.connect(db_url, application_name=name)


def assert_names(message: str, pid: int, name: str, first_line: str) -> None:
    assert f"pid {pid} (user postgres, application_name '{name}', state 'idle in transaction'" \
        in message, message
    assert "transaction open " in message and f"query: {first_line})" in message, message
    assert "second line" not in message


def test_a_bounded_change_out_of_retries_names_the_session_holding_its_lock(conn, db_url):
    migration.apply(conn, 0)
    with app_session(db_url, "habit-app-writer") as app:
        app.execute("UPDATE public.habit_tracker\n-- second line\nSET child_name = child_name")  # ROW EXCLUSIVE
        quick = Session.on(conn, lock_timeout="300ms", retries=1)
        with pytest.raises(LockWaitExhausted) as raised:
            by_name("trigger_habit_tracker_dual_write").operations(0).apply_update(quick, {})
        app.rollback()
        pid = app.info.backend_pid
    assert isinstance(raised.value, psycopg.errors.LockNotAvailable)  # callers catching that still do
    assert_names(str(raised.value), pid, "habit-app-writer", "UPDATE public.habit_tracker")
    assert "after 2 attempt(s) of lock_timeout 300ms" in str(raised.value)


def test_rollback_out_of_retries_names_the_session_holding_its_lock(conn, db_url):
    migration.apply(conn, 0)
    with app_session(db_url, "habit-app-report") as app:
        app.execute("LOCK TABLE public.habit_tracker IN ROW EXCLUSIVE MODE;\n-- second line")
        with pytest.raises(LockWaitExhausted) as raised:
            rollback.execute(conninfo_to_dict(db_url), "drop-trigger", lock_timeout="300ms", statement_timeout="5s",
                             retries=1)
        app.rollback()
        pid = app.info.backend_pid
    assert_names(str(raised.value), pid, "habit-app-report", "LOCK TABLE public.habit_tracker IN ROW EXCLUSIVE MODE;")
    assert present(conn) == {o.name for o in objects_in(0)}  # nothing changed


def test_a_concurrently_build_out_of_retries_names_the_older_transaction_it_waited_for(conn, db_url):
    """CREATE INDEX CONCURRENTLY waits for every older snapshot in the database, whatever table it reads."""
    migration.apply(conn, 0)
    conn.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('k', 'create_week', 'success')")
    conn.execute("DROP INDEX public.idx_idempotency_expires")
    with app_session(db_url, "habit-app-report") as app:
        app.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        app.execute("SELECT count(*)\n-- second line\nFROM public.habit_tracker")
        quick = Session.on(conn, lock_timeout="300ms", retries=1)
        with pytest.raises(LockWaitExhausted) as raised:
            by_name("idx_idempotency_expires").operations().apply_create(quick)
        app.rollback()
        pid = app.info.backend_pid
    assert_names(str(raised.value), pid, "habit-app-report", "SELECT count(*)")
    assert conn.execute("SELECT to_regclass('public.idx_idempotency_expires_new')").fetchone()[0] is None
