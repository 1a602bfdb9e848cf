-- Phase 1's sync of every INSERT statement on habit_tracker, once per statement, with the
-- rows it wrote (a trigger with transition tables may have only one event: one trigger per
-- event). See sync_old_to_new_statement.phase1.sql; the guide's trigger_habit_tracker_dual_write
-- stays the switch that turns it off. OR REPLACE: swapped in one transaction, no moment without it.
CREATE OR REPLACE TRIGGER trigger_habit_tracker_dual_write_insert
    AFTER INSERT ON public.habit_tracker
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.sync_old_to_new_statement();
