-- One batch of the scheduled cleanup: deletes up to about batch_size expired idempotency
-- logs and returns how many it deleted and where the next batch starts (NULL: it was the
-- last one). The scheduled job (sql/013/cleanup_idempotency_log_job.sql, a DO block that
-- pg_cron runs) and `invoke cleanup` call it in a loop and COMMIT after each call, so the
-- row locks of a batch are released within milliseconds. cleanup_idempotency_log() (the
-- guide's function, `invoke cleanup --one-transaction`) deletes the same rows in one
-- transaction and holds every row lock until it returns, so an Edge Function reusing an
-- expired key waits for the whole cleanup (measured: writer p99 350 ms during a 1M-row
-- cleanup; see bench/results).
--
-- Same stepping as the function: a batch finds the expires_at of the batch_size-th expired
-- row after done_until through idx_idempotency_expires and deletes up to it; rows sharing
-- one expires_at go in the same batch. The caller takes `cutoff` once, before the first
-- batch, and passes each batch's next_after as the next done_until, so no batch re-reads
-- the index entries of rows earlier batches deleted, and rows expiring meanwhile wait for
-- the next run.
--
-- A function, not a procedure that COMMITs: a procedure with transaction control can carry
-- no SET clause, so its search_path would be the caller's (Supabase lint 0011). The loop
-- that commits lives in the caller; this function pins its search_path like every other.
CREATE OR REPLACE FUNCTION public.cleanup_idempotency_log_batch(
    cutoff timestamptz,
    done_until timestamptz DEFAULT '-infinity',
    batch_size integer DEFAULT 5000,
    OUT deleted integer,
    OUT next_after timestamptz
)
LANGUAGE plpgsql
-- SECURITY INVOKER: it runs as its caller (the job's owner, the deploy role); EXECUTE is
-- revoked from PUBLIC and every API role with its CREATE (dualwrite/objects/privileges.py).
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
AS $$
DECLARE
    step_until timestamptz;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, got %', batch_size;
    END IF;

    SELECT l.expires_at INTO step_until
    FROM public.idempotency_log AS l
    WHERE l.expires_at > done_until AND l.expires_at < cutoff
    ORDER BY l.expires_at
    OFFSET batch_size - 1
    LIMIT 1;

    IF step_until IS NULL THEN
        -- Fewer than batch_size expired rows left: the last batch.
        DELETE FROM public.idempotency_log AS l
        WHERE l.expires_at > done_until AND l.expires_at < cutoff;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        next_after := NULL;
        RETURN;
    END IF;

    DELETE FROM public.idempotency_log AS l
    WHERE l.expires_at > done_until AND l.expires_at <= step_until;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    next_after := step_until;
END;
$$;
