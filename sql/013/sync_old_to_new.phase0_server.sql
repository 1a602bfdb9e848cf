-- Phase 0, server-log variant (stack config phase0_log = server): the same two messages
-- as sync_old_to_new.phase0.sql, with the same texts, raised at level LOG instead of NOTICE.
-- It writes nothing to the new schema.
--
-- Where the messages go:
--   * LOG is at or above log_min_messages (Supabase and PostgreSQL default: warning; LOG
--     ranks above WARNING for the server log), so every row's two lines land in the
--     server log: Supabase Dashboard > Logs (Postgres), which is where the guide's
--     Monitoring section says to look. NOTICEs never get there at that default.
--   * LOG is below client_min_messages' default (notice), so an ordinary session (the app,
--     PostgREST) receives nothing: no protocol message, no socket flush per row.
--   * A session that asks for them sees them: SET client_min_messages = log (the smoke test
--     reads the two lines that way).
--
-- Cost: one server-log line per message (log_line_prefix, a CONTEXT line, one write() to
-- the log); bench/ measures it against an empty trigger raising the same two LOG lines.
--
-- SECURITY INVOKER, as sync_old_to_new.phase0.sql (it reads and writes nothing, so it needs no
-- rights of its own).
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
        RAISE LOG 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, OLD.id;
        -- to_char: the guide's YYYY-MM-DD whatever DateStyle the session uses.
        RAISE LOG 'Trigger details: child_name=%, week_start_date=%',
            OLD.child_name, pg_catalog.to_char(OLD.week_start_date, 'YYYY-MM-DD');
    ELSE
        RAISE LOG 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, NEW.id;
        RAISE LOG 'Trigger details: child_name=%, week_start_date=%',
            NEW.child_name, pg_catalog.to_char(NEW.week_start_date, 'YYYY-MM-DD');
    END IF;
    RETURN NULL; -- AFTER trigger: the result is ignored
END;
$$;
