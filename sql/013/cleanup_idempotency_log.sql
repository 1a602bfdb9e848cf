-- Deletes expired idempotency logs and returns how many it deleted.
--
-- Batched by expires_at: each step finds the expires_at of the batch_size-th expired row
-- through idx_idempotency_expires and deletes up to it, then the next step starts after
-- it. So no statement sorts or scans a million rows, and no step re-reads the index
-- entries of rows earlier steps deleted (a LIMIT-and-repeat loop would, making a large
-- cleanup quadratic). Rows sharing one expires_at go in the same step.
--
-- Locks: row locks on expired rows only; live rows and the app's writes never wait for
-- it. A function runs inside its caller's transaction and cannot commit between steps, so
-- it holds every row lock until that transaction ends: this is the guide's function, for
-- manual use (`invoke cleanup --one-transaction`, the Edge Function). The scheduled job and
-- `invoke cleanup` call cleanup_idempotency_log_batch() instead, committing after each batch.
CREATE OR REPLACE FUNCTION public.cleanup_idempotency_log()
RETURNS integer
LANGUAGE plpgsql
-- SECURITY INVOKER: its callers, the owner and service_role (BYPASSRLS, DELETE on
-- idempotency_log), may delete these rows themselves; definer rights would only lend them
-- to whoever else got EXECUTE.
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
AS $$
DECLARE
    batch_size constant integer := 10000;
    cutoff constant timestamptz := pg_catalog.now();
    done_until timestamptz := '-infinity'::timestamptz;
    step_until timestamptz;
    deleted integer;
    total integer := 0;
BEGIN
    LOOP
        SELECT l.expires_at INTO step_until
        FROM public.idempotency_log AS l
        WHERE l.expires_at > done_until AND l.expires_at < cutoff
        ORDER BY l.expires_at
        OFFSET batch_size - 1
        LIMIT 1;
        -- Fewer than batch_size expired rows left: the last step, after the loop.
        EXIT WHEN step_until IS NULL;

        DELETE FROM public.idempotency_log AS l
        WHERE l.expires_at > done_until AND l.expires_at <= step_until;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        total := total + deleted;
        done_until := step_until;
    END LOOP;

    DELETE FROM public.idempotency_log AS l
    WHERE l.expires_at > done_until AND l.expires_at < cutoff;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN total + deleted;
END;
$$;
