-- Every write to the old table runs sync_old_to_new() once per row, after the row is
-- written (AFTER: the app's write is never changed or blocked by the trigger's logic).
-- OR REPLACE: a changed definition, or one pasted from the guide already, is swapped in one
-- transaction; there is no moment without the trigger for a write to slip through unsynced.
CREATE OR REPLACE TRIGGER trigger_habit_tracker_dual_write
    AFTER INSERT OR UPDATE OR DELETE ON public.habit_tracker
    FOR EACH ROW
    EXECUTE FUNCTION public.sync_old_to_new();
