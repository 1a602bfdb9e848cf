"""A cluster initialised by the previous devenv (bootstrap superuser `postgres`) is converted
in place at its next start: postgres becomes the Supabase-shaped deploy role, data and
migration 013 stay, and everything keeps working as postgres."""

from __future__ import annotations

import os
import socket

import psycopg
import pytest

from devenv import app_schema
from devenv.localdb import ADMIN_ROLE, DEPLOY_ROLE, READY_TIMEOUT_S, UPGRADE_ROLE, LocalCluster
from dualwrite import migration

pytestmark = pytest.mark.db

# What the previous sql/app/roles.sql did, as the superuser postgres.
LEGACY_ROLES = """
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO anon, authenticated, service_role;
"""
ROW = ("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) VALUES"
       " (gen_random_uuid(), %s, '2025-10-13', '[{\"name\": \"Read\", \"times\": [\"green\", \"\", \"\", \"\", \"\", \"\", \"\"]}]')")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def legacy_cluster():
    cluster = LocalCluster(name=f"pytest-{os.getpid()}-legacy", port=_free_port(), dbname="habit_tracker",
                           settings={"fsync": "off", "synchronous_commit": "off"}, pooler_port=_free_port())
    cluster.destroy()
    # What the previous LocalCluster.start() did on first use.
    cluster._initdb(bootstrap_role="postgres")
    cluster._write_settings()
    cluster._pg_ctl("start", "-w", "-t", str(READY_TIMEOUT_S), "-l", str(cluster.log_file))
    legacy = cluster.db_url("postgres", role="postgres")
    with psycopg.connect(legacy, autocommit=True) as conn:
        conn.execute("CREATE DATABASE habit_tracker")
    with psycopg.connect(cluster.db_url(role="postgres"), autocommit=True) as conn:
        conn.execute(LEGACY_ROLES)
        app_schema.apply_app_schema(conn)
        migration.apply(conn, 1)
        conn.execute(ROW, ("before",))
        conn.execute("CREATE EXTENSION pg_cron")
        conn.execute("SELECT cron.schedule('legacy-job', '17 3 * * *', 'SELECT 1')")
        conn.execute("CREATE TYPE public.mood AS ENUM ('ok')")
    cluster._pg_ctl("stop", "-w", "-m", "fast")
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_legacy_cluster_is_converted_in_place_and_keeps_its_data(legacy_cluster: LocalCluster):
    legacy_cluster.start()
    legacy_cluster.start()  # the second start finds nothing to convert
    with psycopg.connect(legacy_cluster.admin_url(), autocommit=True) as admin:
        assert admin.execute("SELECT rolname, rolsuper FROM pg_roles WHERE oid = 10").fetchone() == (ADMIN_ROLE, True)
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (UPGRADE_ROLE,)).fetchone()[0] == 0
        assert admin.execute("SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'pg_cron'"
                             ).fetchone()[0] == ADMIN_ROLE
    with psycopg.connect(legacy_cluster.db_url(), autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles"
                            " WHERE rolname = current_user").fetchone() == (False, True, True, True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER ROLE postgres SUPERUSER")
        # the user's objects are postgres' now; the rows are where they were
        owners: dict[str, str] = dict(conn.execute(
            "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'S')").fetchall())
        assert set(owners.values()) == {DEPLOY_ROLE}, owners
        assert {"habit_tracker", "habit_tracker_id_seq", "idempotency_log", "children"} <= set(owners)
        routines: dict[str, str] = dict(conn.execute("SELECT proname, pg_get_userbyid(proowner) FROM pg_proc"
                                     " WHERE pronamespace = 'public'::regnamespace").fetchall())
        assert routines and set(routines.values()) == {DEPLOY_ROLE}, routines
        assert conn.execute("SELECT pg_get_userbyid(typowner) FROM pg_type WHERE typname = 'mood'").fetchone()[0] \
            == DEPLOY_ROLE
        assert conn.execute("SELECT count(*) FROM public.habit_tracker WHERE child_name = 'before'").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM public.dual_write_errors").fetchone()[0] == 0
        # and work as postgres: the Phase 1 trigger (SECURITY DEFINER, now postgres') syncs a new row
        conn.execute(ROW, ("after",))
        assert conn.execute("SELECT count(*) FROM public.children WHERE name IN ('before', 'after')"
                            ).fetchone()[0] == 2
        migration.set_phase(conn, 0)
        # the job keeps its owner's name, so it is postgres' job; pg_cron's table is read-only to it
        assert conn.execute("SELECT username FROM cron.job WHERE jobname = 'legacy-job'").fetchone()[0] == DEPLOY_ROLE
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM cron.job")
        conn.execute("SELECT cron.unschedule('legacy-job')")
        # new objects get Supabase's default privileges
        conn.execute("CREATE FUNCTION public.after_upgrade() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        assert conn.execute("SELECT has_function_privilege('anon', 'public.after_upgrade()', 'EXECUTE')").fetchone()[0]
    with psycopg.connect(legacy_cluster.pooler_url(), autocommit=True) as pooled:
        assert pooled.execute("SELECT current_user").fetchone()[0] == DEPLOY_ROLE
