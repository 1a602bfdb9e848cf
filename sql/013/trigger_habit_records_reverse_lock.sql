-- Phase 2 (issue 18), reverse sync: before a row of habit_records changes, lock the
-- habit_tracker row of each sheet it touches and queue its week for the commit
-- (sync_new_to_old.sql says why the lock comes first); a ticked, changed or cleared day changes
-- its habit's sheet.
-- WHEN: writes the reverse sync makes itself ('reverse'), and those the forward sync makes
-- inside its trigger ('forward', trigger depth > 0), never call the function: no write loops.
-- OR REPLACE: a changed definition is swapped in one transaction.
CREATE OR REPLACE TRIGGER trigger_habit_records_reverse_lock
    BEFORE INSERT OR UPDATE OR DELETE ON public.habit_records
    FOR EACH ROW
    WHEN (coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '') <> 'reverse'
          AND (coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '') <> 'forward'
               OR pg_catalog.pg_trigger_depth() = 0))
    EXECUTE FUNCTION public.sync_new_to_old();
