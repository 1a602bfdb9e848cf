-- Phase 0: the dual-write trigger only logs; it writes nothing to the new schema.
--
-- SECURITY INVOKER: Phase 0 reads nothing and writes nothing, so it needs no rights of
-- its own (Phase 1's body is SECURITY DEFINER: it writes tables the app's roles may not).
-- CREATE OR REPLACE sets the attribute with the body, so a phase flip swaps both.
--
-- As cheap as PL/pgSQL gets: no variables and no row copy (OLD/NEW are read in place),
-- RAISE placeholders instead of format(), one branch per operation. What remains per
-- row is the two NOTICEs themselves (issue 3 requires both, with these exact texts):
-- each one is a separate protocol message that the backend flushes to the client
-- socket at once, see bench/results notes for the measured cost.
CREATE OR REPLACE FUNCTION public.sync_old_to_new()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
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
