-- Privileges of migration 013's objects, declared as one `Grants` resource of the program's
-- Security component (dualwrite/objects/grants.py), and applied after the objects by
-- dualwrite/migration.py too, so tests get the same privileges without the engine.
--
-- idempotency_log: service_role only (Supabase grants every new public table to the API
-- roles by default, so the revokes are needed, not decorative).
REVOKE ALL ON public.idempotency_log FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.idempotency_log TO service_role;

-- Error texts quote user data.
REVOKE ALL ON public.dual_write_errors FROM PUBLIC, anon, authenticated;

-- SECURITY DEFINER functions run as the owner: nobody else may call them, except
-- service_role for cleanup (pg_cron / Edge Function) and drift (monitoring).
REVOKE EXECUTE ON FUNCTION
    public.cleanup_idempotency_log(),
    public.habit_tracker_row_error(jsonb, date),
    public.sync_old_to_new(),
    public.dual_write_diff(),
    public.dual_write_drift(),
    public.backfill_habit_tracker(bigint, integer)
FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.cleanup_idempotency_log(), public.dual_write_drift() TO service_role;

-- The scheduled cleanup procedure runs as its caller (it COMMITs, so it cannot be
-- SECURITY DEFINER): only pg_cron's job owner calls it.
REVOKE EXECUTE ON PROCEDURE public.cleanup_idempotency_log_in_batches(integer) FROM PUBLIC, anon, authenticated;
