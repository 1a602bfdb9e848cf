-- Phase 3 (issue 18, contract): habit_tracker is read-only for everyone but the reverse sync.
-- A statement that would write it (INSERT, UPDATE, DELETE, TRUNCATE) is refused before it
-- touches a row, with SQLSTATE 42501 (insufficient_privilege: PostgREST answers 403), a
-- message naming Phase 3 and a hint saying the app must be updated. The reverse sync's own
-- writes (habit_tracker_db.syncing = 'reverse') go through, so old app versions keep reading
-- current sheets. Stepping back to Phase 2 drops the trigger and old versions write again.
CREATE OR REPLACE FUNCTION public.habit_tracker_read_only()
RETURNS trigger
LANGUAGE plpgsql
-- SECURITY INVOKER: it reads and writes nothing; definer rights would add nothing.
SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    IF pg_catalog.current_setting('habit_tracker_db.syncing', true) = 'reverse' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = 'habit_tracker is read-only: migration 013 is in Phase 3 (contract), so this '
                  || TG_OP || ' was refused. The app now writes children, weeks, habits and habit_records, '
                  || 'and habit_tracker is kept current from them for old app versions to read.',
        HINT = 'Update the app to the version that writes the new tables (children, weeks, habits, '
               || 'habit_records); this app version can still read its sheets. To let old versions write '
               || 'again, step migration 013 back to Phase 2.';
END;
$$;
