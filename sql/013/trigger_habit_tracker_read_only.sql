-- Phase 3 (issue 18, contract): refuse every write to habit_tracker that the reverse sync does
-- not make (habit_tracker_read_only.sql). BEFORE ... FOR EACH STATEMENT: refused once, before
-- any row is touched or any row trigger runs, whatever the statement would have written.
-- OR REPLACE: a changed definition is swapped in one transaction.
CREATE OR REPLACE TRIGGER trigger_habit_tracker_read_only
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.habit_tracker
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.habit_tracker_read_only();
