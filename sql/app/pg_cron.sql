-- pg_cron as hosted Supabase has it, applied by supabase_admin to the cron database only
-- (cron.database_name: pg_cron refuses to be created anywhere else). pg_cron is a
-- superuser-only extension: on Supabase, supautils has supabase_admin create it, and
-- supabase/postgres' grant_pg_cron_access() then grants postgres what follows.
CREATE EXTENSION IF NOT EXISTS pg_cron WITH SCHEMA pg_catalog;

-- pg_cron's own script grants SELECT on cron.job and SELECT, DELETE on
-- cron.job_run_details to PUBLIC (row-level security limits them to one's own jobs), and
-- nothing on schema cron. Supabase adds:
GRANT USAGE ON SCHEMA cron TO postgres WITH GRANT OPTION;
-- what an upgrade of the extension creates later (the functions and sequences there now keep
-- pg_cron's own privileges: cron.alter_job and cron.schedule_in_database are revoked from
-- PUBLIC, so postgres cannot call those two)
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA cron
    GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA cron
    GRANT ALL ON FUNCTIONS TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA cron
    GRANT ALL ON SEQUENCES TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL TABLES IN SCHEMA cron TO postgres WITH GRANT OPTION;
-- ... but postgres only reads cron.job (migration 20231020085357): jobs are scheduled and
-- unscheduled through cron.schedule()/cron.unschedule() only.
REVOKE ALL ON TABLE cron.job FROM postgres;
GRANT SELECT ON TABLE cron.job TO postgres WITH GRANT OPTION;
-- ... and creates no triggers on the run history (migration 20260730000000).
REVOKE TRIGGER ON TABLE cron.job_run_details FROM postgres;
