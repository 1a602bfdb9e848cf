-- Phase 1: the guide's row trigger raises its two messages for every row, as in Phase 0;
-- the sync itself runs once per statement, for all the rows the statement wrote, in
-- sync_old_to_new_statement() (triggers trigger_habit_tracker_dual_write_insert, _update,
-- _delete). This trigger stays the switch: disabled or dropped (the guide's rollback
-- options 1 and 2, pasted as they are), it stops every sync, not only these messages.
--
-- Why not sync here, once per row: a row trigger cannot know how many rows its statement
-- writes, and one UPDATE of 10,000 rows then ran 10,000 syncs of a dozen statements each,
-- each in its own subtransaction (bench: 19.6x the statement without a trigger, 10,000
-- subtransaction XIDs). The statement trigger knows: one row goes through the per-row
-- body (sync_one_habit_tracker_row), more through the set-based one (sync_habit_tracker_rows).
--
-- SECURITY INVOKER: it reads nothing and writes nothing (the statement function is the
-- SECURITY DEFINER one). OLD/NEW are read in place, as in Phase 0.
CREATE OR REPLACE FUNCTION public.sync_old_to_new()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    -- Phase 1: the sync runs per statement, in sync_old_to_new_statement().
    -- Phase 2 (issue 18): a row the reverse sync wrote (habit_tracker_db.syncing = 'reverse') came
    -- from the new schema: no NOTICE for it, and the statement function projects nothing back.
    IF pg_catalog.current_setting('habit_tracker_db.syncing', true) = 'reverse' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE NOTICE 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, OLD.id;
        -- to_char: the guide's YYYY-MM-DD whatever DateStyle the session uses.
        RAISE NOTICE 'Trigger details: child_name=%, week_start_date=%',
            OLD.child_name, to_char(OLD.week_start_date, 'YYYY-MM-DD');
    ELSE
        RAISE NOTICE 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, NEW.id;
        RAISE NOTICE 'Trigger details: child_name=%, week_start_date=%',
            NEW.child_name, to_char(NEW.week_start_date, 'YYYY-MM-DD');
    END IF;
    RETURN NULL; -- AFTER trigger: the result is ignored
END;
$$;
