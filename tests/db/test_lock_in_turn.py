"""db.lock_in_turn: several tables locked up front, the first under the transaction's lock_timeout,
each next one under half of deadlock_timeout, and the transaction's lock_timeout as it was after."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from dualwrite import db
from lock_race import deadlock_timeout_s, wait_until_waiting

pytestmark = pytest.mark.db
TABLES = [sql.Identifier("public", name) for name in ("first_locked", "second_locked")]


@pytest.fixture
def two_tables(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE public.first_locked (id int); CREATE TABLE public.second_locked (id int)")


def test_the_next_table_waits_less_than_deadlock_timeout_whatever_lock_timeout_says(conn, db_url, two_tables):
    """With an hour of lock_timeout, a second table an app holds for four deadlock_timeouts ends the
    wait (LockNotAvailable) instead of holding the first table until the app is done."""
    import threading

    with psycopg.connect(db_url) as app, psycopg.connect(db_url, autocommit=True) as deploy:
        app.execute("INSERT INTO public.second_locked VALUES (1)")  # ROW EXCLUSIVE, left open
        release = threading.Timer(4 * deadlock_timeout_s(conn), app.rollback)
        release.start()
        try:
            with pytest.raises(psycopg.errors.LockNotAvailable), deploy.transaction():
                deploy.execute("SET LOCAL lock_timeout = '1h'")
                db.lock_in_turn(deploy, TABLES)
        finally:
            release.join()


def test_the_first_table_waits_the_whole_lock_timeout(conn, db_url, two_tables):
    """Nothing is held before the first lock, so it waits as long as the change allows: an app
    transaction that ends meanwhile is waited for; lock_timeout is as it was for what runs next."""
    import threading

    with psycopg.connect(db_url) as app, psycopg.connect(db_url, autocommit=True) as deploy:
        app.execute("INSERT INTO public.first_locked VALUES (1)")

        def commit_once_the_deploy_waits() -> None:
            wait_until_waiting(conn, deploy.info.backend_pid)
            app.commit()

        release = threading.Thread(target=commit_once_the_deploy_waits)
        release.start()
        with deploy.transaction():
            deploy.execute("SET LOCAL lock_timeout = '1h'")
            db.lock_in_turn(deploy, TABLES)
            assert deploy.execute("SHOW lock_timeout").fetchone() == ("1h",)
            held = deploy.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND mode = "
                                  "'AccessExclusiveLock' AND relation = ANY(%s::regclass[])",
                                  (["public.first_locked", "public.second_locked"],)).fetchone()
        release.join(timeout=60)
    assert held == (2,)
