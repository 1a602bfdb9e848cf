-- Deletes expired idempotency logs and returns how many it deleted.
--
-- Batched: each DELETE takes at most batch_size rows, found through
-- idx_idempotency_expires and addressed by ctid, so no single statement sorts or scans
-- a million rows. SKIP LOCKED means it never waits behind a row an Edge Function is
-- using, and it only ever takes row locks, so live rows are never blocked. (A function
-- runs inside its caller's transaction and cannot commit between batches; pg_cron runs
-- it as its own short transaction.)
CREATE OR REPLACE FUNCTION public.cleanup_idempotency_log()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    batch_size constant integer := 10000;
    deleted integer;
    total integer := 0;
BEGIN
    LOOP
        DELETE FROM public.idempotency_log
        WHERE ctid = ANY (ARRAY(
            SELECT l.ctid
            FROM public.idempotency_log AS l
            WHERE l.expires_at < pg_catalog.now()
            LIMIT batch_size
            FOR UPDATE SKIP LOCKED
        ));
        GET DIAGNOSTICS deleted = ROW_COUNT;
        total := total + deleted;
        EXIT WHEN deleted < batch_size;
    END LOOP;
    RETURN total;
END;
$$;
