-- Phase 0: the dual-write trigger only logs; it writes nothing to the new schema.
--
-- SECURITY DEFINER with an empty search_path like every function of this migration
-- (Phase 1's body writes tables the app's roles may not; Phase 0 keeps the same shape
-- so flipping phases only swaps the body).
CREATE OR REPLACE FUNCTION public.sync_old_to_new()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    r public.habit_tracker%ROWTYPE;
BEGIN
    -- DELETE has no NEW row: log the row that was deleted.
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    RAISE NOTICE 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, r.id;
    -- to_char: the guide's YYYY-MM-DD whatever DateStyle the session uses.
    RAISE NOTICE 'Trigger details: child_name=%, week_start_date=%',
        r.child_name, to_char(r.week_start_date, 'YYYY-MM-DD');
    RETURN NULL; -- AFTER trigger: the result is ignored
END;
$$;
