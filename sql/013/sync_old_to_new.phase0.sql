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
--
-- No SET search_path, unlike every other function of 013, and on purpose: a function with a SET
-- clause is called through PostgreSQL's fmgr_security_definer wrapper, which saves, sets and
-- restores the GUC on every call, here once per written row (bench/NOTES.md, 2026-12-02: about
-- 2-3 us of backend CPU per row, 4-8% of Phase 0's write rate against its floor). Pinning guards
-- a function whose body resolves names through the caller's search_path; this body resolves
-- none: its one function and its operator are schema-qualified (pg_catalog.), OLD/NEW/TG_* are
-- PL/pgSQL variables, and RAISE formats with each type's output function. It is SECURITY
-- INVOKER, reads and writes nothing, so it runs nothing with rights the writer does not have.
-- Only SECURITY DEFINER functions must pin (the policy pack's rule; Phase 1's body pins again).
-- Supabase's Security Advisor (lint 0011) lists every unpinned function, so it shows this one
-- as a WARN while a stack runs Phase 0.
CREATE OR REPLACE FUNCTION public.sync_old_to_new()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
AS $$
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        RAISE NOTICE 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, OLD.id;
        -- to_char: the guide's YYYY-MM-DD whatever DateStyle the session uses.
        RAISE NOTICE 'Trigger details: child_name=%, week_start_date=%',
            OLD.child_name, pg_catalog.to_char(OLD.week_start_date, 'YYYY-MM-DD');
    ELSE
        RAISE NOTICE 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, NEW.id;
        RAISE NOTICE 'Trigger details: child_name=%, week_start_date=%',
            NEW.child_name, pg_catalog.to_char(NEW.week_start_date, 'YYYY-MM-DD');
    END IF;
    RETURN NULL; -- AFTER trigger: the result is ignored
END;
$$;
