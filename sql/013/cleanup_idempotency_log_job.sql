-- What the pg_cron job `cleanup_idempotency_log` runs (Phase 1): the batched cleanup, one
-- COMMIT per batch. A top-level DO block may COMMIT (pg_cron sends it as one statement,
-- outside any transaction block), and it is no stored function, so there is no routine
-- whose search_path could be left mutable (Supabase lint 0011); every name is qualified.
-- The batches are public.cleanup_idempotency_log_batch(), which pins its search_path.
DO $job$
DECLARE
    cutoff constant timestamptz := pg_catalog.now();
    done_until timestamptz := '-infinity';
    batch record;
BEGIN
    LOOP
        SELECT b.deleted, b.next_after INTO batch
        FROM public.cleanup_idempotency_log_batch(cutoff, done_until) AS b;
        COMMIT;
        EXIT WHEN batch.next_after IS NULL;
        done_until := batch.next_after;
    END LOOP;
END
$job$;
