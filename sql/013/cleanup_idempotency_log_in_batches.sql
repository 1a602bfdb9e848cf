-- The scheduled cleanup (pg_cron runs `CALL public.cleanup_idempotency_log_in_batches()`):
-- deletes expired idempotency logs in batches and COMMITs after each batch, so the row
-- locks of a batch are released within milliseconds. cleanup_idempotency_log() (the
-- function, for manual use) deletes the same rows in one transaction and holds every row
-- lock until it returns, so an Edge Function reusing an expired key waits for the whole
-- cleanup (measured: writer p99 350 ms during a 1M-row cleanup; see bench/results).
--
-- Same stepping as the function: each step finds the expires_at of the batch_size-th
-- expired row through idx_idempotency_expires and deletes up to it; rows sharing one
-- expires_at go in the same step. The cutoff is taken once, at the start: each COMMIT
-- starts a new transaction with a new now(), and rows expiring meanwhile wait for the
-- next run.
--
-- A procedure, because only a procedure can COMMIT between batches. A procedure that
-- COMMITs can be neither SECURITY DEFINER nor have SET clauses (Postgres refuses
-- transaction control in either: "invalid transaction termination"), so it runs as its
-- caller (pg_cron's job owner: the deploy role `postgres`, which schedules it) and, unlike
-- every function of this migration, without `SET search_path = ''`. Every name is therefore
-- fully qualified (public.*, pg_catalog.*), so the caller's search_path cannot redirect it.
-- EXECUTE is revoked from PUBLIC, anon, authenticated and service_role with its CREATE
-- (dualwrite/objects/privileges.py).
-- Must be CALLed outside an explicit transaction block to commit per batch.
CREATE OR REPLACE PROCEDURE public.cleanup_idempotency_log_in_batches(batch_size integer DEFAULT 5000)
LANGUAGE plpgsql
AS $$
DECLARE
    cutoff constant timestamptz := pg_catalog.now();
    done_until timestamptz := '-infinity'::timestamptz;
    step_until timestamptz;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, got %', batch_size;
    END IF;
    LOOP
        SELECT l.expires_at INTO step_until
        FROM public.idempotency_log AS l
        WHERE l.expires_at OPERATOR(pg_catalog.>) done_until
          AND l.expires_at OPERATOR(pg_catalog.<) cutoff
        ORDER BY l.expires_at
        OFFSET batch_size OPERATOR(pg_catalog.-) 1
        LIMIT 1;

        IF step_until IS NULL THEN
            -- Fewer than batch_size expired rows left: the last step.
            DELETE FROM public.idempotency_log AS l
            WHERE l.expires_at OPERATOR(pg_catalog.>) done_until
              AND l.expires_at OPERATOR(pg_catalog.<) cutoff;
            COMMIT;
            RETURN;
        END IF;

        DELETE FROM public.idempotency_log AS l
        WHERE l.expires_at OPERATOR(pg_catalog.>) done_until
          AND l.expires_at OPERATOR(pg_catalog.<=) step_until;
        COMMIT;
        done_until := step_until;
    END LOOP;
END;
$$;
