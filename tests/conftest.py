"""Shared fixtures: a real PostgreSQL 15 shaped like hosted Supabase, for any test that asks for one.

Every URL below logs in as `postgres`, the deploy role, which is not a superuser (as on
Supabase); the `admin_` ones as the bootstrap superuser supabase_admin, for tests that play
a dashboard superuser or create superuser-only extensions (devenv/localdb.py).

    pg_cluster    (session)  a throwaway cluster of devenv.localdb on a free loopback port,
                             data in .state/pg/pytest-<pid>, fsync off, PgBouncer (transaction
                             mode) beside it; destroyed at the end
    app_template  (session)  name of a database holding sql/app (database set-up, app tables)
    db_name       (function) a fresh database copied from app_template
    db_url        (function) URI of db_name, as postgres
    admin_db_url  (function) URI of db_name, as supabase_admin
    pooler_db_url (function) URI of db_name through PgBouncer, as postgres
    conn          (function) autocommit psycopg connection to db_url
    admin_conn    (function) autocommit psycopg connection to admin_db_url
    cron_db_url   (session)  URI of the cluster's cron.database_name database (pg_cron lives
                             there, created by the admin), as postgres
    cron_admin_url (session) the same as supabase_admin

Why not pytest-postgresql's postgresql_proc: it runs initdb/pg_ctl as the current user,
and CI runs as root, which initdb refuses. devenv.localdb already solves that (server
processes run as the `postgres` system user), so the tests use the same code as stack local.
Set TEST_PG_PORT to pin the port.
"""

from __future__ import annotations

import itertools
import os
import socket
from typing import Iterator

import psycopg
import pytest

from devenv.localdb import STATE_DIR, LocalCluster

TEST_SETTINGS = {
    # Throwaway data: durability buys nothing and costs most of the suite's time.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "60",
}
CRON_DB = "habit_tracker"
_db_numbers = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sweep_stale_clusters() -> None:
    """Clusters left by killed test sessions (their pid is gone) are stopped and removed."""
    if not STATE_DIR.is_dir():
        return
    for path in STATE_DIR.glob("pytest-*"):
        # pytest-<pid>, pytest-<pid>-<what> (a test's own cluster), and their .pooler folders
        name = path.name.removesuffix(".pooler")
        pid = name.removeprefix("pytest-").split("-")[0]
        if pid.isdigit() and path.is_dir() and not os.path.exists(f"/proc/{pid}"):
            # Any port: the pooler's pid file is all stop() reads.
            LocalCluster(name=name, pooler_port=0).destroy()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalCluster]:
    _sweep_stale_clusters()
    port = int(os.environ.get("TEST_PG_PORT") or free_port())
    cluster = LocalCluster(name=f"pytest-{os.getpid()}", port=port, dbname=CRON_DB, settings=TEST_SETTINGS,
                           pooler_port=free_port())
    cluster.destroy()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def app_template(pg_cluster: LocalCluster) -> str:
    name = "app_template"
    pg_cluster.create_database(name)
    pg_cluster.ensure_app_schema(name)
    return name


@pytest.fixture(scope="session")
def cron_db_url(pg_cluster: LocalCluster) -> str:
    pg_cluster.ensure_app_schema(CRON_DB)
    return pg_cluster.db_url(CRON_DB)


@pytest.fixture(scope="session")
def cron_admin_url(pg_cluster: LocalCluster, cron_db_url: str) -> str:
    return pg_cluster.admin_url(CRON_DB)


@pytest.fixture
def db_name(pg_cluster: LocalCluster, app_template: str) -> Iterator[str]:
    name = f"test_{os.getpid()}_{next(_db_numbers)}"
    pg_cluster.create_database(name, template=app_template)
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def db_url(pg_cluster: LocalCluster, db_name: str) -> str:
    return pg_cluster.db_url(db_name)


@pytest.fixture
def admin_db_url(pg_cluster: LocalCluster, db_name: str) -> str:
    return pg_cluster.admin_url(db_name)


@pytest.fixture
def pooler_db_url(pg_cluster: LocalCluster, db_name: str) -> str:
    return pg_cluster.pooler_url(db_name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def admin_conn(admin_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(admin_db_url, autocommit=True) as connection:
        yield connection
