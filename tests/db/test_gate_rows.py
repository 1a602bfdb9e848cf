"""The gate's database rows on a real PostgreSQL: Edge Function evidence, errors, drift, performance."""

from __future__ import annotations

import psycopg
from psycopg import sql
import pytest

from dualwrite import gate, migration
from dualwrite.config import parse
from sheets import habit, insert_sheet

pytestmark = pytest.mark.db


def config(**raw: str):
    return parse("staging", {"phase": "1", "db_host": "127.0.0.1", "promotes_from": "dev", **raw}, has_password=False)


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 1)
    return conn


def test_edge_function_needs_a_recent_success(db):
    assert not gate.edge_function(db, config()).ok
    db.execute("INSERT INTO public.idempotency_log (key, operation, request_data, status, created_at) "
               "VALUES ('old', 'create_week', '{}', 'success', now() - interval '25 hours'), "
               "('failed', 'create_week', '{}', 'failed', now())")
    row = gate.edge_function(db, config())
    assert not row.ok and "0 successful request(s)" in row.detail
    db.execute("INSERT INTO public.idempotency_log (key, operation, request_data, status) "
               "VALUES ('k1', 'create_week', '{}', 'success')")
    row = gate.edge_function(db, config())
    assert row.ok and "1 successful request(s) in the last 24 h" in row.detail


def test_errors_and_drift_of_the_previous_stack(db):
    insert_sheet(db, child="ok", habits=[habit("Read", "green")])
    assert gate.errors(db, config(), config()).ok
    assert gate.drift(db, config()).ok
    insert_sheet(db, child="bad", habits={"not": "a list"})  # malformed: logged, counted as drift
    row = gate.errors(db, config(), config())
    assert not row.ok and "1 row(s) in the last 24 h" in row.detail and "allows 0" in row.detail
    assert gate.errors(db, config(), config(max_dual_write_errors="1")).ok
    row = gate.drift(db, config())
    assert not row.ok and "1 of 2 rows drifted" in row.detail


def tracked_functions(admin_conn: psycopg.Connection, db: psycopg.Connection, db_url: str, level: str):
    """track_functions is the admin's to set (a superuser parameter on Supabase too): per database,
    picked up by new sessions of the deploy role."""
    admin_conn.execute(sql.SQL("ALTER DATABASE {} SET track_functions = {}").format(
        sql.Identifier(db.info.dbname), sql.Literal(level)))
    return psycopg.connect(db_url, autocommit=True)


def test_performance_reads_what_is_tracked(db, admin_conn, db_url):
    db = tracked_functions(admin_conn, db, db_url, "pl")
    # The first call plans the function's statements; a mean over many calls is the baseline.
    for i in range(40):
        insert_sheet(db, child=f"timed {i}", habits=[habit("Read", "green")])
    db.execute("SELECT pg_stat_force_next_flush()")
    row = gate.performance(db, config(), config())
    assert "pg_stat_user_functions" in row.detail and "sync_old_to_new() mean" in row.detail
    assert row.ok, row.detail
    assert "over 40 call(s)" in row.detail
    # Phase 1's work is in the statement function: the mean per row counts it.
    statement_ms = db.execute("SELECT total_time FROM pg_stat_user_functions "
                              "WHERE funcname = 'sync_old_to_new_statement'").fetchone()[0]
    mean = float(row.detail.split("sync_old_to_new_statement()) ")[1].split(" ms")[0])
    assert mean >= statement_ms / 40 * 0.99, (mean, statement_ms)
    assert not gate.performance(db, config(), config(perf_max_mean_ms="0.001")).ok


def test_performance_fails_when_nothing_is_measured(db, admin_conn, db_url):
    db = tracked_functions(admin_conn, db, db_url, "none")
    row = gate.performance(db, config(), config())
    assert not row.ok and "track_functions = none" in row.detail
