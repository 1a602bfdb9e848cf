"""cleanup_idempotency_log(): deletes expired rows only, in batches, and returns the count."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import migration, monitor
from dualwrite.catalog import CLEANUP_COMMAND
from dualwrite.config import parse

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


# --- the scheduled job (a DO block over cleanup_idempotency_log_batch()), one COMMIT per batch ---


def run_job(conn: psycopg.Connection) -> None:
    """What pg_cron runs: the job's command, as one statement outside a transaction block."""
    conn.execute(CLEANUP_COMMAND)


def test_job_deletes_exactly_the_expired_rows_across_many_batches(db):
    add_rows(db, 12_345, "old", "-1 second")  # 3 batches of 5,000
    db.execute(
        "INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
        "SELECT 'd' || g, 'create_week', 'success', now() - g * interval '1 second' FROM generate_series(1, 777) g"
    )
    add_rows(db, 1_000, "live", "23 hours")
    run_job(db)
    remaining = db.execute("SELECT count(*), count(*) FILTER (WHERE key LIKE 'live%'), "
                           "count(*) FILTER (WHERE expires_at < now()) FROM public.idempotency_log").fetchone()
    assert remaining == (1_000, 1_000, 0)
    run_job(db)  # nothing left
    assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 1_000


def test_batch_function_steps_through_the_expired_rows(db):
    db.execute(
        "INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
        "SELECT 'k' || g, 'create_week', 'success', now() - interval '1 hour' + g * interval '1 second' "
        "FROM generate_series(1, 5) g"
    )
    add_rows(db, 1, "live", "1 hour")
    cutoff = db.execute("SELECT now()").fetchone()[0]
    first = db.execute("SELECT * FROM public.cleanup_idempotency_log_batch(%s, '-infinity', 2)", (cutoff,)).fetchone()
    assert first[0] == 2 and first[1] is not None
    second = db.execute("SELECT * FROM public.cleanup_idempotency_log_batch(%s, %s, 2)", (cutoff, first[1])).fetchone()
    third = db.execute("SELECT * FROM public.cleanup_idempotency_log_batch(%s, %s, 2)", (cutoff, second[1])).fetchone()
    assert (second[0], third) == (2, (1, None))  # the last batch says so
    assert db.execute("SELECT array_agg(key) FROM public.idempotency_log").fetchone()[0] == ["live1"]
    with pytest.raises(psycopg.errors.RaiseException, match="batch_size must be at least 1"):
        db.execute("SELECT * FROM public.cleanup_idempotency_log_batch(now(), '-infinity', 0)")


def add_three_batches(db: psycopg.Connection) -> None:
    """10,002 expired rows, each its own expires_at (k1 the oldest), and one live row: batches of
    5,000 put k10001 and k10002 in the third."""
    db.execute(
        "INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
        "SELECT 'k' || g, 'create_week', 'success', now() - interval '1 hour' + g * interval '1 ms' "
        "FROM generate_series(1, 10002) g"
    )
    add_rows(db, 1, "live", "1 hour")


def commits_each_batch(db: psycopg.Connection, db_url: str, cleanup) -> list[str] | None:
    """Run `cleanup(connection)` while a session holds a row of batch 3: what a third session sees
    while it waits (None: it finished without waiting, or nothing was visible yet)."""
    import threading
    import time

    add_three_batches(db)
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url, autocommit=True) as cleaner:
        holder.execute("SELECT 1 FROM public.idempotency_log WHERE key = 'k10001' FOR UPDATE")
        done = threading.Event()
        def clean() -> None:
            cleanup(cleaner)
            done.set()

        worker = threading.Thread(target=clean)
        worker.start()
        seen = None
        for _ in range(100):  # until the cleanup waits on the held row and batches 1-2 show as committed
            left = db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0]
            waiting = db.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND datname = current_database()").fetchone()[0]
            if waiting:
                seen = db.execute("SELECT array_agg(key ORDER BY key) FROM public.idempotency_log").fetchone()[0]
                if left == 3:
                    break
            time.sleep(0.05)
        finished_early = done.is_set()
        holder.rollback()
        worker.join(30)
        assert done.is_set()
    assert db.execute("SELECT array_agg(key) FROM public.idempotency_log").fetchone()[0] == ["live1"]
    return None if finished_early else seen


def test_job_commits_each_batch(db, db_url):
    """A session blocked on batch 3 sees batches 1 and 2 committed already (one function call could not)."""
    assert commits_each_batch(db, db_url, run_job) == ["k10001", "k10002", "live1"]


def test_job_refuses_to_run_inside_a_transaction_block(db):
    """It commits per batch, so it cannot run inside a caller's transaction."""
    add_rows(db, 3, "old", "-1 second")
    db.autocommit = False
    with pytest.raises(psycopg.errors.InvalidTransactionTermination):
        run_job(db)
    db.rollback()
    db.autocommit = True
    assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 3


def test_batch_function_is_not_executable_by_the_api_roles(db):
    for role in ("anon", "authenticated", "service_role"):
        assert db.execute(
            "SELECT has_function_privilege(%s, 'public.cleanup_idempotency_log_batch(timestamptz, timestamptz, integer)', "
            "'EXECUTE')", (role,),
        ).fetchone()[0] is False


# --- `invoke cleanup` (issue 17, item 8): batched like the job; one transaction only when asked ---

CONFIG = parse("local", {"phase": "1", "db_host": "127.0.0.1", "lock_timeout": "10s"}, has_password=False)


def test_invoke_cleanup_commits_batch_by_batch_as_the_job_does(db, db_url):
    counts: list[int] = []
    seen = commits_each_batch(db, db_url, lambda conn: counts.append(monitor.cleanup_now(conn, CONFIG)))
    assert seen == ["k10001", "k10002", "live1"]
    assert counts == [10_002]


def test_invoke_cleanup_one_transaction_runs_the_guide_function(db, db_url):
    counts: list[int] = []
    seen = commits_each_batch(
        db, db_url, lambda conn: counts.append(monitor.cleanup_now(conn, CONFIG, one_transaction=True)))
    assert seen is not None and len(seen) == 10_003  # nothing committed while it waits on the held row
    assert counts == [10_002]
