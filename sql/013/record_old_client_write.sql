-- Phase 2 (issue 18): count one statement that wrote habit_tracker (INSERT, UPDATE, DELETE or
-- TRUNCATE, whatever rows it touched) in old_client_writes, unless the reverse sync made it
-- (habit_tracker_db.syncing = 'reverse'). Statement level: one upsert of this backend's row
-- of the day per statement, never per row (old_client_writes.sql says why that row).
--
-- SECURITY DEFINER: old clients write habit_tracker as anon/authenticated, which have no
-- privilege on old_client_writes; the count is written as the owner.
CREATE OR REPLACE FUNCTION public.record_old_client_write()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    IF pg_catalog.current_setting('habit_tracker_db.syncing', true) = 'reverse' THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.old_client_writes AS o (day, backend_pid, login_role, statements, first_at, last_at)
    VALUES (current_date, pg_catalog.pg_backend_pid(), session_user, 1, now(), now())
    ON CONFLICT (day, backend_pid) DO UPDATE
        SET statements = o.statements + 1, last_at = EXCLUDED.last_at, login_role = EXCLUDED.login_role;
    RETURN NULL;
END;
$$;
