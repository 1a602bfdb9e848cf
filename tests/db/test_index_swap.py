"""Index changes: built CONCURRENTLY beside the old index and swapped in; never a moment without it."""

from __future__ import annotations

import threading

import psycopg
import pytest

from dualwrite.catalog import by_name
from dualwrite.db import Session

pytestmark = pytest.mark.db

VALID_UNIQUE = ("SELECT coalesce((SELECT indisunique AND indisvalid FROM pg_index "
                "WHERE indexrelid = to_regclass('public.idx_idempotency_key')), false)")


@pytest.fixture
def table(conn):
    session = Session.on(conn)
    by_name("idempotency_log").operations().apply_create(session)
    key = by_name("idx_idempotency_key").operations()
    key.apply_create(session)
    conn.execute("INSERT INTO public.idempotency_log (key, operation, status) "
                 "SELECT 'k' || g, 'create_week', 'success' FROM generate_series(1, 20000) g")
    return key


def test_a_changed_unique_index_is_never_absent(conn, db_url, table):
    changed = type(table)({**table.props, "sql": table.props["sql"].replace("(key);", "(key) INCLUDE (status);"),
                           "checksum": "changed"})
    seen: list[bool] = []
    stop = threading.Event()
    # An app transaction writing the table: the CONCURRENTLY build waits for it, so the watcher
    # looks many times while both indexes exist, then the app commits and the swap follows.
    app = psycopg.connect(db_url)
    app.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('app', 'create_week', 'success')")

    def watch() -> None:
        with psycopg.connect(db_url, autocommit=True) as watcher:
            while not stop.is_set():
                seen.append(watcher.execute(VALID_UNIQUE).fetchone()[0])
                building = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE UNIQUE INDEX CONCURRENTLY%' "
                    "AND wait_event_type = 'Lock'").fetchone()[0]
                if building and len(seen) > 50 and not app.closed:
                    app.commit()
                    app.close()

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        changed.apply_update(Session.on(conn), table.props)
    finally:
        stop.set()
        thread.join()
        app.close()
    assert len(seen) > 50 and all(seen), f"{seen.count(False)} of {len(seen)} looks found no valid unique index"
    definition = conn.execute("SELECT pg_get_indexdef('public.idx_idempotency_key'::regclass)").fetchone()[0]
    assert "INCLUDE (status)" in definition
    assert conn.execute("SELECT to_regclass('public.idx_idempotency_key_new')").fetchone()[0] is None


def test_an_invalid_index_left_by_a_failed_build_is_cleaned_up(conn, table):
    conn.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('dup', 'create_week', 'success')")
    conn.execute("DROP INDEX public.idx_idempotency_key")
    conn.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('dup', 'create_week', 'failed')")
    # The declared unique index cannot be built on duplicate keys: the build fails, and cleans up after itself.
    with pytest.raises(psycopg.errors.UniqueViolation):
        table.apply_create(Session.on(conn, retries=0))
    assert conn.execute("SELECT to_regclass('public.idx_idempotency_key_new')").fetchone()[0] is None
    # An invalid one left by a build that was killed outright is dropped by the next build.
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY idx_idempotency_key_new ON public.idempotency_log (key)")
    assert conn.execute("SELECT indisvalid FROM pg_index "
                        "WHERE indexrelid = 'public.idx_idempotency_key_new'::regclass").fetchone()[0] is False
    conn.execute("DELETE FROM public.idempotency_log WHERE key = 'dup' AND status = 'failed'")
    table.apply_create(Session.on(conn))
    assert conn.execute(VALID_UNIQUE).fetchone()[0] is True
    assert conn.execute("SELECT to_regclass('public.idx_idempotency_key_new')").fetchone()[0] is None


def test_an_index_already_there_with_the_declared_definition_is_adopted_as_it_is(conn, table):
    oid = conn.execute("SELECT 'public.idx_idempotency_key'::regclass::oid").fetchone()[0]
    table.apply_create(Session.on(conn))
    assert conn.execute("SELECT 'public.idx_idempotency_key'::regclass::oid").fetchone()[0] == oid  # not rebuilt


def old_snapshot(db_url: str) -> psycopg.Connection:
    """An app transaction holding a snapshot (a report, pg_dump): CONCURRENTLY waits for it, whatever it reads."""
    app = psycopg.connect(db_url, application_name="habit-app-report")
    app.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    app.execute("SELECT count(*) FROM public.habit_tracker")
    return app


def test_a_build_timed_out_behind_an_old_transaction_drops_its_leftover_before_each_retry(conn, db_url, table):
    """Issue 17, item 5: the first attempt's lock timeout left an invalid `_new`; the retry used to fail
    on its name (`relation "idx_idempotency_expires_new" already exists`)."""
    conn.execute("DROP INDEX public.idx_idempotency_expires")  # the table holds rows: built CONCURRENTLY
    expires = by_name("idx_idempotency_expires").operations()
    app = old_snapshot(db_url)
    attempts: set = set()
    stop = threading.Event()

    def watch() -> None:  # the app finishes once two attempts have waited for it
        with psycopg.connect(db_url, autocommit=True) as watcher:
            while not stop.is_set() and len(attempts) < 2:
                attempts.update(r[0] for r in watcher.execute(
                    "SELECT query_start FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'CREATE INDEX CONCURRENTLY %idx_idempotency_expires_new%'").fetchall())
                stop.wait(0.02)
        app.rollback()

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        expires.apply_create(Session.on(conn, lock_timeout="200ms", retries=10))
    finally:
        stop.set()
        thread.join()
        app.close()
    assert len(attempts) == 2
    assert conn.execute("SELECT indisvalid FROM pg_index "
                        "WHERE indexrelid = 'public.idx_idempotency_expires'::regclass").fetchone()[0] is True
    assert conn.execute("SELECT to_regclass('public.idx_idempotency_expires_new')").fetchone()[0] is None


def test_a_new_table_gets_its_indexes_in_its_own_transaction_despite_an_old_transaction(conn, db_url):
    """A table this deploy creates is empty and unseen: its indexes are built without CONCURRENTLY,
    so an app transaction open across the first deploy does not hold it up."""
    app = old_snapshot(db_url)
    try:
        quick = Session.on(conn, lock_timeout="200ms", retries=0)
        for name in ("idempotency_log", "idx_idempotency_key", "idx_idempotency_expires", "idx_idempotency_status",
                     "idx_idempotency_created"):
            by_name(name).operations().apply_create(quick)
    finally:
        app.close()
    assert conn.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'public.idempotency_log'::regclass "
                        "AND indisvalid").fetchone()[0] == 5  # the primary key and the 4 declared
    assert conn.execute(VALID_UNIQUE).fetchone()[0] is True
