"""PgBouncer beside the test cluster behaves like Supavisor's transaction mode (port 6543).

A server connection goes back to the pool at the end of every transaction, so clients share
it: session state leaks from one client to the next, and psycopg's automatic server-side
prepared statements (after `prepare_threshold` = 5 runs of a query) collide as
DuplicatePreparedStatement. `prepare_threshold=None` never prepares, and works.
"""

from __future__ import annotations

import psycopg
import pytest

from devenv.localdb import LocalCluster

pytestmark = pytest.mark.db


def test_pooler_runs_beside_the_cluster(pg_cluster: LocalCluster, pooler_db_url: str, db_name: str):
    assert pg_cluster.pooler is not None and pg_cluster.pooler.status() == "running"
    with psycopg.connect(pooler_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT current_user, current_database(), inet_server_port()").fetchone() \
            == ("postgres", db_name, pg_cluster.port)


def test_transaction_mode_shares_server_connections_between_clients(pooler_db_url: str):
    with psycopg.connect(pooler_db_url, autocommit=True) as one, \
            psycopg.connect(pooler_db_url, autocommit=True) as two:
        backend = one.execute("SELECT pg_backend_pid()").fetchone()[0]
        # Both clients are connected, and the second one's transaction runs on the first
        # one's server connection: it went back to the pool at the end of the transaction.
        assert two.execute("SELECT pg_backend_pid()").fetchone()[0] == backend
        # So a session-level SET is not the client's: it stays on the server connection.
        one.execute("SET application_name = 'set-by-client-one'")
        assert two.execute("SHOW application_name").fetchone()[0] == "set-by-client-one"
        # SET LOCAL (what dualwrite/db.py uses) ends with its transaction.
        with one.transaction():
            one.execute("SET LOCAL lock_timeout = '1234ms'")
            assert one.execute("SHOW lock_timeout").fetchone()[0] == "1234ms"
        assert two.execute("SHOW lock_timeout").fetchone()[0] != "1234ms"
        one.execute("RESET application_name")


def test_session_state_does_not_follow_the_client(pooler_db_url: str):
    with psycopg.connect(pooler_db_url, autocommit=True) as one, \
            psycopg.connect(pooler_db_url, autocommit=True) as two:
        with one.transaction():  # hold one server connection, so `two` gets another
            first = one.execute("SELECT pg_backend_pid()").fetchone()[0]
            one.execute("SET statement_timeout = '4321ms'")  # session-level, on `first`
            assert two.execute("SELECT pg_backend_pid()").fetchone()[0] != first
            assert two.execute("SHOW statement_timeout").fetchone()[0] != "4321ms"
        one.execute("RESET statement_timeout")


def _run_repeatedly(conn: psycopg.Connection, query: str, times: int = 8) -> None:
    for value in range(times):
        conn.execute(query, (value,)).fetchone()


def test_automatic_prepared_statements_collide_through_the_pooler(pooler_db_url: str):
    with psycopg.connect(pooler_db_url, autocommit=True) as one, \
            psycopg.connect(pooler_db_url, autocommit=True) as two:
        assert one.prepare_threshold == 5  # psycopg's default
        _run_repeatedly(one, "SELECT %s::int + 1")  # prepares _pg3_0 on the shared server connection
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            _run_repeatedly(two, "SELECT %s::int + 2")  # its own first statement is _pg3_0 too
    with psycopg.connect(pooler_db_url, autocommit=True) as conn:
        conn.execute("DEALLOCATE ALL")  # leave no prepared statement on the pooled connection


def test_prepare_threshold_none_works_through_the_pooler(pooler_db_url: str):
    with psycopg.connect(pooler_db_url, autocommit=True, prepare_threshold=None) as one, \
            psycopg.connect(pooler_db_url, autocommit=True, prepare_threshold=None) as two:
        for _ in range(3):
            _run_repeatedly(one, "SELECT %s::int + 1")
            _run_repeatedly(two, "SELECT %s::int + 2")
        assert one.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
