-- Phase 2 (issue 18): every statement that writes habit_tracker is counted once, after it ran
-- (record_old_client_write.sql); the Phase 3 gate reads the counts. AFTER ... FOR EACH
-- STATEMENT: one call per statement, whatever rows it touched, and a refused or failed
-- statement counts nothing (its transaction rolls the count back).
-- OR REPLACE: a changed definition is swapped in one transaction.
CREATE OR REPLACE TRIGGER trigger_habit_tracker_old_client_writes
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.habit_tracker
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.record_old_client_write();
