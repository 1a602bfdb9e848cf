-- Phase 0: the dual-write trigger only logs (sync_old_to_new(), once per row); the
-- statement triggers of Phase 1's sync exist but do nothing.
--
-- SECURITY INVOKER: it reads nothing and writes nothing. CREATE OR REPLACE sets the
-- attribute with the body, so a phase flip swaps both.
CREATE OR REPLACE FUNCTION public.sync_old_to_new_statement()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    RETURN NULL; -- AFTER trigger: the result is ignored
END;
$$;
