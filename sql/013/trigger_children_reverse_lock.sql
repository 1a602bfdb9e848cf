-- Phase 2 (issue 18), reverse sync: before a row of children changes, lock the habit_tracker
-- row of each sheet it touches and queue its week for the commit (sync_new_to_old.sql says why
-- the lock comes first); a renamed child (user_id or name) changes every sheet of the child; a
-- deleted one deletes them (children are created without sheets).
-- WHEN: writes the reverse sync makes itself ('reverse'), and those the forward sync makes
-- inside its trigger ('forward', trigger depth > 0), never call the function: no write loops.
-- OR REPLACE: a changed definition is swapped in one transaction.
CREATE OR REPLACE TRIGGER trigger_children_reverse_lock
    BEFORE UPDATE OR DELETE ON public.children
    FOR EACH ROW
    WHEN (coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '') <> 'reverse'
          AND (coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '') <> 'forward'
               OR pg_catalog.pg_trigger_depth() = 0))
    EXECUTE FUNCTION public.sync_new_to_old();
