-- What every database of a Supabase project already has, applied by the bootstrap
-- superuser supabase_admin to each database of the local cluster (devenv/localdb.py), once,
-- when the database is created (test databases are copies of a template that has it).
-- Default privileges and schema rights belong to one database, so this is not roles.sql.

-- The database belongs to supabase_admin; postgres gets every right on it, and owns `public`
-- (as on hosted Supabase), so it creates the app's tables and migration 013's objects there.
DO $$
BEGIN
    EXECUTE format('GRANT ALL ON DATABASE %I TO postgres', current_database());
END
$$;
ALTER SCHEMA public OWNER TO postgres;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

-- Supabase grants the API roles everything postgres creates in `public` (RLS is what
-- protects rows there): ALL on tables and sequences, EXECUTE on every new function,
-- SECURITY DEFINER ones included. Mirroring it matters: it is why migration 013 must
-- revoke idempotency_log and its functions from anon and authenticated explicitly.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;

-- And what supabase_admin creates in `public` (older dashboard tables) to postgres too.
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
    GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
    GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
