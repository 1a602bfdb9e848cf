"""devenv.localdb: the embedded cluster stack local and the tests run on."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from devenv import server_user
from devenv.localdb import LocalCluster

pytestmark = pytest.mark.db


def test_cluster_settings(pg_cluster: LocalCluster, cron_db_url: str, cron_admin_url: str):
    # shared_preload_libraries is visible to superusers only: read the settings as the admin.
    with psycopg.connect(cron_admin_url, autocommit=True) as admin:
        settings: dict[str, str] = dict(admin.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('shared_preload_libraries', 'cron.database_name', 'listen_addresses', 'port', 'server_version_num')"
        ).fetchall())
    assert settings["shared_preload_libraries"] == "pg_cron"
    assert settings["cron.database_name"] == "habit_tracker"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["port"] == str(pg_cluster.port)
    assert settings["server_version_num"].startswith("15")
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        # pg_cron exists in its database (the admin created it): what Phase 1's
        # CREATE EXTENSION IF NOT EXISTS finds, as postgres; and postgres schedules there.
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        conn.execute("SELECT cron.schedule('test-job', '0 3 * * *', 'SELECT 1')")
        assert conn.execute("SELECT count(*) FROM cron.job WHERE jobname = 'test-job'").fetchone()[0] == 1
        conn.execute("SELECT cron.unschedule('test-job')")


def test_server_runs_unprivileged(pg_cluster: LocalCluster):
    """The postmaster runs as the server user (never root), which owns the data directory."""
    expected = server_user.server_user()
    assert expected.uid != 0
    postmaster_pid = int((pg_cluster.data_dir / "postmaster.pid").read_text().split()[0])
    status = Path(f"/proc/{postmaster_pid}/status").read_text()
    real_uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert real_uid == expected.uid
    assert os.stat(pg_cluster.data_dir).st_uid == expected.uid
    assert oct(os.stat(pg_cluster.data_dir).st_mode)[-3:] == "700"


def test_start_is_idempotent_and_data_survives_a_restart(pg_cluster: LocalCluster, db_url: str):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE keep (x int); INSERT INTO keep VALUES (42)")
    pg_cluster.start()  # already running: no-op
    assert pg_cluster.status() == "running"
    pg_cluster.stop()
    assert pg_cluster.status() == "stopped"
    pg_cluster.start()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT x FROM keep").fetchone()[0] == 42


def test_db_url_is_a_libpq_uri(pg_cluster: LocalCluster):
    assert pg_cluster.db_url("my db") == f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/my%20db?sslmode=disable"
    assert pg_cluster.admin_url("x") == f"postgresql://supabase_admin@127.0.0.1:{pg_cluster.port}/x?sslmode=disable"
    assert pg_cluster.pooler_url("x") == f"postgresql://postgres@127.0.0.1:{pg_cluster.pooler_port}/x?sslmode=disable"
    assert LocalCluster(name="never-started").status() == "absent"
