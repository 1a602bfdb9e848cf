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
