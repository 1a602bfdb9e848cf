-- Phase 2 (issue 18), reverse sync: before a row of habits changes, lock the habit_tracker row
-- of each sheet it touches and queue its week for the commit (sync_new_to_old.sql says why the
-- lock comes first); an added, renamed, moved or removed habit changes its week's sheet.
-- WHEN: writes the reverse sync makes itself ('reverse'), and those the forward sync makes
-- inside its trigger ('forward', trigger depth > 0), never call the function: no write loops.
-- OR REPLACE: a changed definition is swapped in one transaction.
CREATE OR REPLACE TRIGGER trigger_habits_reverse_lock
    BEFORE INSERT OR UPDATE OR DELETE ON public.habits
    FOR EACH ROW
    WHEN (coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '') <> 'reverse'
          AND (coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '') <> 'forward'
               OR pg_catalog.pg_trigger_depth() = 0))
    EXECUTE FUNCTION public.sync_new_to_old();
