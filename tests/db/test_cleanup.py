"""cleanup_idempotency_log(): deletes expired rows only, in batches, and returns the count."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import migration

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


def test_distinct_expiry_times_across_batches(db):
    """Each row its own expires_at: steps advance through the index without overlap or gaps."""
    db.execute(
        "INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
        "SELECT 'k' || g, 'create_week', 'success', now() - g * interval '1 second' FROM generate_series(1, 23456) g"
    )
    add_rows(db, 10, "live", "1 hour")
    assert db.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0] == 23_456
    assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 10


def test_live_rows_stay_writable_while_cleanup_runs(db, db_url):
    """Cleanup holds row locks on expired rows only: the app updates a live row meanwhile."""
    add_rows(db, 100, "old", "-1 minute")
    add_rows(db, 1, "live", "1 hour")
    with psycopg.connect(db_url) as cleaner:
        assert cleaner.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0] == 100  # not committed yet
        db.execute("SET lock_timeout = '1s'")
        db.execute("UPDATE public.idempotency_log SET status = 'failed' WHERE key = 'live1'")
        cleaner.commit()
    assert db.execute("SELECT key, status FROM public.idempotency_log").fetchall() == [("live1", "failed")]


# --- cleanup_idempotency_log_in_batches(): the scheduled cleanup, one COMMIT per batch ---


def test_procedure_deletes_exactly_the_expired_rows_across_many_batches(db):
    add_rows(db, 12_345, "old", "-1 second")
    db.execute(
        "INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
        "SELECT 'd' || g, 'create_week', 'success', now() - g * interval '1 second' FROM generate_series(1, 777) g"
    )
    add_rows(db, 1_000, "live", "23 hours")
    db.execute("CALL public.cleanup_idempotency_log_in_batches(1000)")
    remaining = db.execute("SELECT count(*), count(*) FILTER (WHERE key LIKE 'live%'), "
                           "count(*) FILTER (WHERE expires_at < now()) FROM public.idempotency_log").fetchone()
    assert remaining == (1_000, 1_000, 0)
    db.execute("CALL public.cleanup_idempotency_log_in_batches()")  # default batch size, nothing left
    assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 1_000


def test_procedure_commits_each_batch(db, db_url):
    """A session blocked on batch 3 sees batches 1 and 2 committed already (a function could not)."""
    db.execute(
        "INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
        "SELECT 'k' || g, 'create_week', 'success', now() - interval '1 hour' + g * interval '1 second' "
        "FROM generate_series(1, 6) g"
    )
    add_rows(db, 1, "live", "1 hour")
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url, autocommit=True) as cleaner:
        holder.execute("SELECT 1 FROM public.idempotency_log WHERE key = 'k5' FOR UPDATE")  # row of batch 3
        import threading
        done = threading.Event()
        def clean() -> None:
            cleaner.execute("CALL public.cleanup_idempotency_log_in_batches(2)")
            done.set()

        worker = threading.Thread(target=clean)
        worker.start()
        deadline = __import__("time").monotonic() + 10
        left = None
        while __import__("time").monotonic() < deadline:
            left = db.execute("SELECT array_agg(key ORDER BY key) FROM public.idempotency_log").fetchone()[0]
            if left == ["k5", "k6", "live1"]:
                break
            __import__("time").sleep(0.05)
        assert left == ["k5", "k6", "live1"]  # batches 1 and 2 committed while batch 3 waits
        assert not done.is_set()
        holder.rollback()
        worker.join(10)
        assert done.is_set()
    assert db.execute("SELECT array_agg(key) FROM public.idempotency_log").fetchone()[0] == ["live1"]


def test_procedure_refuses_to_run_inside_a_transaction_block(db):
    """It commits per batch, so it cannot run inside a caller's transaction."""
    add_rows(db, 3, "old", "-1 second")
    db.autocommit = False
    with pytest.raises(psycopg.errors.InvalidTransactionTermination):
        db.execute("CALL public.cleanup_idempotency_log_in_batches(1)")
    db.rollback()
    db.autocommit = True
    assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 3


def test_procedure_is_not_executable_by_the_api_roles(db):
    for role in ("anon", "authenticated"):
        assert db.execute(
            "SELECT has_function_privilege(%s, 'public.cleanup_idempotency_log_in_batches(integer)', 'EXECUTE')",
            (role,),
        ).fetchone()[0] is False
