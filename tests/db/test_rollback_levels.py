"""`invoke rollback`: the guide's three options against a real database, each one transaction."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from dualwrite import migration, rollback
from dualwrite.catalog import objects_in
from dualwrite.objects import Trigger
from lock_race import deadlock_timeout_s, in_a_thread, wait_until_waiting
from test_migration import present

pytestmark = pytest.mark.db
TIMEOUTS: dict[str, Any] = {"lock_timeout": "2s", "statement_timeout": "10s"}


@pytest.fixture
def deployed(conn: psycopg.Connection, db_url: str) -> dict:
    migration.apply(conn, 0)
    conn.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('k1', 'create_week', 'success')")
    return conninfo_to_dict(db_url)


def trigger_state(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'").fetchall()


def test_disable_keeps_every_object(conn, deployed):
    rollback.execute(deployed, "disable", **TIMEOUTS)
    assert trigger_state(conn) == [("D",)]
    assert present(conn) == {o.name for o in objects_in(0)}


def test_disable_in_phase_1_disables_the_statement_triggers_too(conn, deployed):
    """Phase 0 has only the guide's trigger; Phase 1 adds the statement triggers, and option 1 disables
    every forward trigger the database has."""
    migration.set_phase(conn, 1)
    rollback.execute(deployed, "disable", **TIMEOUTS)
    states = conn.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'public.habit_tracker'::regclass "
                          "AND tgname LIKE 'trigger_habit_tracker_dual_write%' ORDER BY tgname").fetchall()
    assert states == [("trigger_habit_tracker_dual_write", "D"), ("trigger_habit_tracker_dual_write_delete", "D"),
                      ("trigger_habit_tracker_dual_write_insert", "D"), ("trigger_habit_tracker_dual_write_update", "D")]


def test_drop_trigger_keeps_functions_and_logs(conn, deployed):
    rollback.execute(deployed, "drop-trigger", **TIMEOUTS)
    assert trigger_state(conn) == []
    assert present(conn) == {o.name for o in objects_in(0) if o.kind is not Trigger}
    assert conn.execute("SELECT count(*) FROM public.idempotency_log").fetchone() == (1,)


def test_all_leaves_nothing_of_013_and_the_app_tables_intact(conn, deployed):
    conn.execute(
        "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
        "VALUES (gen_random_uuid(), 'Kept', '2025-10-13', '[]')"
    )
    rollback.execute(deployed, "all", **TIMEOUTS)
    assert present(conn) == set()
    assert conn.execute("SELECT count(*) FROM public.habit_tracker WHERE child_name = 'Kept'").fetchone() == (1,)


def test_a_held_lock_times_out_and_changes_nothing(conn, deployed, db_url):
    with psycopg.connect(db_url) as app:
        app.execute("LOCK TABLE public.habit_tracker IN ACCESS EXCLUSIVE MODE")  # an app transaction in the way
        with pytest.raises(psycopg.errors.LockNotAvailable):
            rollback.execute(deployed, "all", lock_timeout="100ms", statement_timeout="5s", retries=1)
        app.rollback()
    assert present(conn) == {o.name for o in objects_in(0)}


def run_option_3(way: str, conninfo: dict) -> None:
    """Option 3 as `invoke rollback --level all` runs it, or as a stack declaring `dual_write: removed`
    deploys it (objects/removal.py), with a lock_timeout past the app's deadlock check."""
    from dualwrite.db import Session
    from dualwrite.objects import Removal

    if way == "rollback":
        rollback.execute(conninfo, "all", lock_timeout="5s", statement_timeout="30s")
    else:
        Removal(rollback.removal_props()).apply_create(Session(conninfo, lock_timeout="5s", statement_timeout="30s"))


@pytest.mark.parametrize("way", ["rollback", "removal"])
def test_option_3_lets_go_rather_than_deadlock_an_app_transaction(conn, deployed, db_url, way):
    """An app transaction that has written idempotency_log and then writes habit_tracker (an RPC doing
    both), while option 3 runs: option 3 drops on habit_tracker first and idempotency_log last, so it
    waited on the app holding habit_tracker, and the app, asking for habit_tracker well after
    deadlock_timeout, was the one PostgreSQL cancelled. Now every table is locked up front, each after
    the first waiting less than deadlock_timeout (db.lock_in_turn): the app's write commits, and
    the rollback, retried, completes."""
    import time

    with psycopg.connect(db_url) as app:
        app.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('k2', 'create_week', "
                    "'success')")
        with in_a_thread(lambda: run_option_3(way, deployed)):
            wait_until_waiting(conn)  # the rollback, on a connection of its own
            time.sleep(deadlock_timeout_s(conn) * 1.5)  # past the deploy's own deadlock check, had it kept waiting
            app.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                        "VALUES (gen_random_uuid(), 'Mid-rollback', '2025-10-13', '[]')")
            app.commit()  # no DeadlockDetected: the app's write is kept
    assert present(conn) == set()
    assert conn.execute("SELECT count(*) FROM public.habit_tracker WHERE child_name = 'Mid-rollback'"
                        ).fetchone() == (1,)
