-- The roles every Supabase project already has, cluster-wide. Only the local stack and the
-- tests apply this file, as the bootstrap superuser supabase_admin (devenv/localdb.py), so
-- that grants and row-level security can be checked as each role sees them. Idempotent:
-- roles are cluster-wide and may already exist.
DO $$
BEGIN
    -- The role users, tools and this project's deploys log in as.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'postgres') THEN
        CREATE ROLE postgres;
    END IF;
    -- The API roles PostgREST switches to.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    -- Supabase's service_role bypasses RLS; mirror that so local behaves like the real thing.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    -- PostgREST's login role: it switches to the API roles, so it is a member of each.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$$;

-- What supabase/postgres' demote-postgres migration leaves: not a superuser, and it cannot
-- become one (ALTER ROLE ... SUPERUSER needs a superuser).
ALTER ROLE postgres NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS;
ALTER ROLE anon NOLOGIN NOINHERIT;
ALTER ROLE authenticated NOLOGIN NOINHERIT;
ALTER ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
ALTER ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
-- On Supabase postgres is a member of the API roles (the SQL editor's "run as role" is a
-- SET ROLE) and of pg_monitor (it reads every setting and pg_stat_activity row).
GRANT anon, authenticated, service_role TO postgres;
GRANT pg_monitor TO postgres;
