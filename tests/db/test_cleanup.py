"""cleanup_idempotency_log(): deletes expired rows only, in batches, and returns the count."""

from __future__ import annotations

import psycopg
import pytest

from infra import migration

pytestmark = pytest.mark.db


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 0)
    return conn


def add_rows(conn: psycopg.Connection, count: int, prefix: str, expires: str) -> None:
    conn.execute(
        "INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
        "SELECT %s || g, 'create_week', 'success', now() + %s::interval FROM generate_series(1, %s) g",
        (prefix, expires, count),
    )


def test_nothing_to_delete_returns_zero(db):
    add_rows(db, 10, "live", "1 hour")
    assert db.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 10


def test_deletes_exactly_the_expired_rows_across_many_batches(db):
    # More than two batches (10,000 rows each) of expired rows, plus live ones around them.
    add_rows(db, 25_003, "old", "-1 second")
    add_rows(db, 1_000, "live", "23 hours")
    assert db.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0] == 25_003
    remaining = db.execute("SELECT count(*), min(key) FROM public.idempotency_log").fetchone()
    assert remaining[0] == 1_000 and remaining[1].startswith("live")
    assert db.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0] == 0


def test_skips_rows_another_session_holds(db, db_url):
    """SKIP LOCKED: cleanup never waits behind an Edge Function's open transaction."""
    add_rows(db, 3, "old", "-1 minute")
    with psycopg.connect(db_url) as other:
        other.execute("SELECT 1 FROM public.idempotency_log WHERE key = 'old1' FOR UPDATE")
        db.execute("SET lock_timeout = '1s'")
        assert db.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0] == 2
        other.rollback()
    assert db.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0] == 1
