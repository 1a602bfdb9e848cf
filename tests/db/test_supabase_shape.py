"""The local cluster is shaped like hosted Supabase where the product relies on it.

Facts from ../shared/notes/supabase.md, checked against supabase/postgres' migrations:
`postgres` is not a superuser and cannot become one, pg_cron is the admin's and postgres
schedules only through its functions, and default privileges grant everything postgres
creates in `public` to the API roles, EXECUTE on functions included.
"""

from __future__ import annotations

import psycopg
import pytest

from devenv.localdb import ADMIN_ROLE, DEPLOY_ROLE, LocalCluster
from dualwrite import config as stack_config

pytestmark = pytest.mark.db

ROLE_ATTRIBUTES = "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication, rolbypassrls, " \
                  "rolinherit FROM pg_roles WHERE rolname = %s"


def test_postgres_has_exactly_supabases_attributes(conn: psycopg.Connection):
    assert conn.execute("SELECT current_user, session_user").fetchone() == (DEPLOY_ROLE, DEPLOY_ROLE)
    # NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS (and INHERIT, the default)
    assert conn.execute(ROLE_ATTRIBUTES, (DEPLOY_ROLE,)).fetchone() == (False, True, True, True, True, True, True)
    assert conn.execute(ROLE_ATTRIBUTES, (ADMIN_ROLE,)).fetchone()[0] is True
    assert conn.execute("SELECT rolname FROM pg_roles WHERE oid = 10").fetchone()[0] == ADMIN_ROLE


def test_postgres_cannot_become_a_superuser(conn: psycopg.Connection):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("ALTER ROLE postgres SUPERUSER")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("GRANT supabase_admin TO postgres")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET ROLE supabase_admin")
    assert not conn.execute("SELECT pg_has_role('postgres', 'supabase_admin', 'MEMBER')").fetchone()[0]
    assert not conn.execute(
        "SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'").fetchone()[0]


def test_superuser_only_extensions_need_the_admin(conn: psycopg.Connection, admin_conn: psycopg.Connection):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE EXTENSION plpgsql_check")
    admin_conn.execute("CREATE EXTENSION plpgsql_check")
    assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'plpgsql_check'").fetchone()[0] == 1


def test_reserved_roles(conn: psycopg.Connection):
    #                                 super  createdb createrole login  repl   bypassrls inherit
    assert conn.execute(ROLE_ATTRIBUTES, ("anon",)).fetchone() == (False, False, False, False, False, False, False)
    assert conn.execute(ROLE_ATTRIBUTES, ("authenticated",)).fetchone() == (False, False, False, False, False, False,
                                                                            False)
    assert conn.execute(ROLE_ATTRIBUTES, ("service_role",)).fetchone() == (False, False, False, False, False, True,
                                                                           False)
    assert conn.execute(ROLE_ATTRIBUTES, ("authenticator",)).fetchone() == (False, False, False, True, False, False,
                                                                            False)
    for role in ("anon", "authenticated", "service_role"):
        assert conn.execute("SELECT pg_has_role('authenticator', %s, 'MEMBER')", (role,)).fetchone()[0]
        # As on Supabase, postgres is a member of the API roles (the SQL editor's "run as").
        assert conn.execute("SELECT pg_has_role('postgres', %s, 'MEMBER')", (role,)).fetchone()[0]


def test_postgres_owns_public_and_the_app_tables(conn: psycopg.Connection):
    assert conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'").fetchone()[0] \
        == DEPLOY_ROLE
    assert conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
                        ).fetchone()[0] == ADMIN_ROLE
    owners: dict[str, str] = dict(conn.execute(
        "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relname IN ('habit_tracker', 'children', 'weeks', 'habits', 'habit_records')").fetchall())
    assert owners == dict.fromkeys(("habit_tracker", "children", "weeks", "habits", "habit_records"), DEPLOY_ROLE)
    # what migration 013 needs of an owner: triggers and table locks on the app's table
    with conn.transaction():
        conn.execute("LOCK TABLE public.habit_tracker IN SHARE ROW EXCLUSIVE MODE")
        conn.execute("CREATE FUNCTION public.t_noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'")
        conn.execute("CREATE TRIGGER t_noop BEFORE INSERT ON public.habit_tracker FOR EACH ROW"
                     " EXECUTE FUNCTION public.t_noop()")
        conn.execute("DROP TRIGGER t_noop ON public.habit_tracker; DROP FUNCTION public.t_noop()")


def test_default_privileges_grant_what_postgres_creates_to_the_api_roles(conn: psycopg.Connection):
    conn.execute("CREATE FUNCTION public.shape_probe() RETURNS int LANGUAGE sql SECURITY DEFINER"
                 " SET search_path = '' AS 'SELECT 1'")
    conn.execute("CREATE TABLE public.shape_probe_table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)")
    for role in ("anon", "authenticated", "service_role"):
        assert conn.execute("SELECT has_function_privilege(%s, 'public.shape_probe()', 'EXECUTE')",
                            (role,)).fetchone()[0], role
        assert conn.execute("SELECT has_table_privilege(%s, 'public.shape_probe_table', 'SELECT, INSERT, DELETE')",
                            (role,)).fetchone()[0], role
    # explicitly in the ACL, not only through PUBLIC: a REVOKE ... FROM PUBLIC leaves it
    conn.execute("REVOKE EXECUTE ON FUNCTION public.shape_probe() FROM PUBLIC")
    assert conn.execute("SELECT has_function_privilege('anon', 'public.shape_probe()', 'EXECUTE')").fetchone()[0]
    conn.execute("SET ROLE anon")
    try:
        assert conn.execute("SELECT public.shape_probe()").fetchone()[0] == 1
    finally:
        conn.execute("RESET ROLE")


def test_pg_cron_lives_in_the_cron_database_only(conn: psycopg.Connection, cron_db_url: str):
    assert conn.execute("SELECT to_regclass('cron.job')").fetchone()[0] is None
    with psycopg.connect(cron_db_url, autocommit=True) as cron:
        owner, schema = cron.execute(
            "SELECT pg_get_userbyid(extowner), extnamespace::regnamespace::text FROM pg_extension"
            " WHERE extname = 'pg_cron'").fetchone()
        assert (owner, schema) == (ADMIN_ROLE, "pg_catalog")
        assert cron.execute("SELECT has_schema_privilege('postgres', 'cron', 'USAGE')").fetchone()[0]


def test_postgres_schedules_through_pg_crons_functions_only(cron_db_url: str):
    with psycopg.connect(cron_db_url, autocommit=True) as cron:
        for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
            assert not cron.execute("SELECT has_table_privilege('cron.job', %s)", (privilege,)).fetchone()[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cron.execute("INSERT INTO cron.job (schedule, command, nodename, nodeport, database, username)"
                         " VALUES ('0 3 * * *', 'SELECT 1', '127.0.0.1', 5432, 'habit_tracker', 'postgres')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cron.execute("UPDATE cron.job SET active = false")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cron.execute("DELETE FROM cron.job")
        job = cron.execute("SELECT cron.schedule('shape-probe', '0 3 * * *', 'SELECT 1')").fetchone()[0]
        try:
            assert cron.execute("SELECT username, schedule FROM cron.job WHERE jobid = %s", (job,)).fetchone() \
                == ("postgres", "0 3 * * *")
            # the same name replaces the job (what the provider's update relies on)
            assert cron.execute("SELECT cron.schedule('shape-probe', '5 4 * * *', 'SELECT 1')").fetchone()[0] == job
            assert cron.execute("SELECT schedule FROM cron.job WHERE jobid = %s", (job,)).fetchone()[0] == "5 4 * * *"
        finally:
            cron.execute("SELECT cron.unschedule('shape-probe')")
        assert cron.execute("SELECT count(*) FROM cron.job WHERE jobname = 'shape-probe'").fetchone()[0] == 0
        # The run history: ALL but TRIGGER, as on Supabase.
        assert cron.execute("SELECT has_table_privilege('cron.job_run_details', 'SELECT, DELETE')").fetchone()[0]
        assert not cron.execute("SELECT has_table_privilege('cron.job_run_details', 'TRIGGER')").fetchone()[0]


def test_every_database_has_the_same_shape(pg_cluster: LocalCluster, conn: psycopg.Connection, cron_db_url: str):
    """Test databases (copies of a template), the cron database, and a database created anew."""
    shape = ("SELECT pg_get_userbyid(n.nspowner),"
             " (SELECT array_agg(defaclobjtype::text || ':' || defaclacl::text ORDER BY defaclobjtype)"
             "  FROM pg_default_acl WHERE defaclrole = 'postgres'::regrole AND defaclnamespace = n.oid)"
             " FROM pg_namespace AS n WHERE nspname = 'public'")
    expected = conn.execute(shape).fetchone()
    assert expected[0] == DEPLOY_ROLE and len(expected[1]) == 3
    with psycopg.connect(cron_db_url) as cron:
        assert cron.execute(shape).fetchone() == expected
    pg_cluster.create_database("shape_new")
    try:
        with psycopg.connect(pg_cluster.db_url("shape_new")) as new:
            assert new.execute(shape).fetchone() == expected
            assert new.execute("SELECT to_regclass('cron.job')").fetchone()[0] is None
    finally:
        pg_cluster.drop_database("shape_new")


def test_stack_local_deploys_as_postgres():
    config = stack_config.load("local")
    assert (config.db_user, config.db_port, config.db_name) == (DEPLOY_ROLE, 54329, "habit_tracker")
