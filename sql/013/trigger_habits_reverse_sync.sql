-- Phase 2 (issue 18), reverse sync: at commit, rebuild each sheet the transaction touched
-- once (sync_new_to_old.sql). A constraint trigger, DEFERRABLE INITIALLY DEFERRED: it runs at
-- commit, after every statement of the transaction, and its WHEN clause is evaluated when the
-- row changes, so writes the syncs make themselves queue nothing (see the lock trigger).
-- A constraint trigger cannot be CREATE OR REPLACE'd: the drop and the create run in one
-- transaction (the deploy's), so no commit happens without it.
DROP TRIGGER IF EXISTS trigger_habits_reverse_sync ON public.habits;
CREATE CONSTRAINT TRIGGER trigger_habits_reverse_sync
    AFTER INSERT OR UPDATE OR DELETE ON public.habits
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '') <> 'reverse'
          AND (coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '') <> 'forward'
               OR pg_catalog.pg_trigger_depth() = 0))
    EXECUTE FUNCTION public.sync_new_to_old();
