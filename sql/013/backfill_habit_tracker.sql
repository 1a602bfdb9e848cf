-- Projects the next batch of habit_tracker rows (id > after_id, in id order, at most
-- batch_size) into the new schema; returns the last id it covered, or NULL when there is
-- no row after after_id. The caller commits after each call (infra/backfill.py), so every
-- batch is its own short transaction, and a killed run resumes where the projection stops
-- matching (dual_write_diff), keeping no state outside the database.
--
-- Set-based: a handful of statements per batch (children, weeks, habits, records), not
-- the trigger's logic row by row. Idempotent: every write is an upsert or a diff that
-- writes only what differs, so re-running a batch that is already projected changes
-- nothing. Same mapping and same malformed-row test as the Phase 1 trigger.
--
-- Safe while the app writes: the batch's rows are locked FOR SHARE first, so an app
-- UPDATE/DELETE of one of them waits until this batch commits (then its own trigger
-- applies the newer version), and the batch always projects the latest committed
-- version. Rows inserted after the lock are the trigger's business.
--
-- Plans: plain statements with the default plan cache (custom plans first, then a generic
-- one, kept for the session). Every join to weeks is restricted by `legacy_id = ANY (<batch
-- ids>)` as well as by the join itself, so even a generic plan, which cannot see how few ids
-- a batch has, is driven by the batch's ids through indexes instead of a merge or hash join
-- over all of weeks. `enable_seqscan = off` for the same reason, and above all for the
-- foreign-key checks the inserts fire (one cached query per inserted row): a backfill
-- starts on empty new tables, so the check's plan, made on the first batch, is a seq scan
-- of weeks/habits, kept until autovacuum re-analyzes them, and each batch got slower as
-- the tables grew (300-row batches: 0.12 s at batch 1, 0.89 s at batch 37; with it 0.09 s
-- and 0.12 s). Not `SET plan_cache_mode = force_custom_plan`: that setting also applies
-- to those foreign-key checks and to habit_tracker_row_error's query, re-planning each of
-- them for every row (5,000-row batches: 2.68 s each with it, about 1.4 s without).
--
-- Keys: every week, habit and record a batch creates gets a time-ordered id (the UUIDv7
-- layout: 48 bits of the clock in milliseconds, the version digit 7, the rest random from
-- gen_random_uuid()), where the trigger and the tables' defaults use random ones. With random
-- ids each batch inserts into pages all over the primary keys and over the (week_id, position)
-- and (habit_id, record_date) indexes, so after every checkpoint nearly every page it touches
-- goes into the WAL whole (full-page writes): at 1M rows, a checkpoint every 4 s at the default
-- max_wal_size, and the app's commits waiting behind that WAL (bench/NOTES.md, 2026-12-02).
-- Time-ordered ids put a batch's entries at the right edge of each of those indexes: the same
-- few pages, already in the WAL since the checkpoint. The ids are still unique and random
-- enough not to guess; they only say when the backfill created the row.
CREATE OR REPLACE FUNCTION public.backfill_habit_tracker(after_id bigint, batch_size integer)
RETURNS bigint
LANGUAGE plpgsql
-- SECURITY INVOKER: only the deploy role runs it (dualwrite/backfill.py), and it owns the new
-- schema's tables; definer rights would only lend them to whoever else got EXECUTE.
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
-- Short batches: JIT compilation of a batch's statements would cost more than it saves.
SET jit = off
-- Every statement of a batch, and every foreign-key check its inserts fire, touches a
-- batch's worth of rows by key: never a whole table. See "Plans" above.
SET enable_seqscan = off
AS $$
DECLARE
    v_ids bigint[];  -- projectable rows of the batch
    v_bad bigint[];  -- malformed rows of the batch
    v_new bigint[];  -- rows whose week this batch created
    v_old bigint[];  -- rows whose week already existed
    v_last bigint;
    v_logged integer;
    -- The first 48 bits of every id this batch creates: the clock in milliseconds, as in a
    -- UUIDv7 ('xxxxxxxx-xxxx-7', the rest random). See "Keys" above.
    v_key_prefix text := overlay(
        pg_catalog.lpad(pg_catalog.to_hex((EXTRACT(EPOCH FROM pg_catalog.clock_timestamp()) * 1000)::bigint), 12, '0')
        PLACING '-' FROM 9 FOR 0) || '-7';
BEGIN
    -- The batch's commit need not wait for its WAL flush: a crash can lose only the last
    -- batches' commits, which leaves the database consistent (never half a batch) and the
    -- run resumable (dual_write_diff finds the rows again); any later synchronous commit,
    -- such as an app write through the trigger, flushes them first. Saves one WAL flush
    -- wait per batch (hundreds per run: batches are sized to ~50 ms).
    PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);

    -- The malformed-row test inlined (as dual_write_diff does); the helper runs only for
    -- the rows it rejects, to log their message.
    SELECT array_agg(b.id) FILTER (WHERE b.valid),
           array_agg(b.id) FILTER (WHERE NOT b.valid),
           max(b.id)
    INTO v_ids, v_bad, v_last
    FROM (
        SELECT h.id,
               coalesce(jsonb_typeof(h.habits) = 'array' AND EXTRACT(ISODOW FROM h.week_start_date) = 1
                        AND NOT EXISTS (
                            SELECT FROM jsonb_array_elements(h.habits) AS e (elem)
                            WHERE NOT (coalesce(jsonb_typeof(e.elem -> 'name') = 'string', false)
                                       AND CASE WHEN jsonb_typeof(e.elem -> 'times') = 'array'
                                                THEN jsonb_array_length(e.elem -> 'times') = 7
                                                     AND (e.elem -> 'times') <@ '["green", "yellow", "red", ""]'::jsonb
                                                ELSE false END)),
                        false) AS valid
        FROM public.habit_tracker AS h
        WHERE h.id > after_id
        ORDER BY h.id
        LIMIT batch_size
        FOR SHARE
    ) AS b;

    -- Weeks whose source row is gone (deleted while the trigger was not syncing).
    -- The last call (no rows left) sweeps everything above after_id.
    DELETE FROM public.weeks AS w
    WHERE w.legacy_id > after_id
      AND (v_last IS NULL OR w.legacy_id <= v_last)
      AND NOT EXISTS (SELECT FROM public.habit_tracker AS h WHERE h.id = w.legacy_id);

    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;

    IF v_bad IS NOT NULL THEN
        -- Logged once per row and problem, so re-running a batch adds no duplicates.
        INSERT INTO public.dual_write_errors (tracker_id, operation, error)
        SELECT h.id, 'BACKFILL', p.problem
        FROM public.habit_tracker AS h
        CROSS JOIN LATERAL (SELECT public.habit_tracker_row_error(h.habits, h.week_start_date) AS problem) AS p
        WHERE h.id = ANY (v_bad)
          AND p.problem IS NOT NULL
          AND NOT EXISTS (SELECT FROM public.dual_write_errors AS e WHERE e.tracker_id = h.id AND e.error = p.problem);
        GET DIAGNOSTICS v_logged = ROW_COUNT;
        RAISE WARNING 'backfill: % malformed habit_tracker rows not projected (% newly logged in dual_write_errors)',
            cardinality(v_bad), v_logged;
    END IF;

    IF v_ids IS NULL THEN
        RETURN v_last;
    END IF;

    INSERT INTO public.children (user_id, name)
    SELECT DISTINCT h.user_id, h.child_name
    FROM public.habit_tracker AS h
    WHERE h.id = ANY (v_ids)
    ON CONFLICT (user_id, name) DO NOTHING;

    -- A mirrored week in the wrong place (renamed child or moved date while unsynced) is
    -- dropped and projected again below; rare, so simplicity wins over moving it.
    DELETE FROM public.weeks AS w
    USING public.habit_tracker AS h
    JOIN public.children AS c ON c.user_id = h.user_id AND c.name = h.child_name
    WHERE h.id = ANY (v_ids)
      AND w.legacy_id = h.id
      AND w.legacy_id = ANY (v_ids)
      AND (w.child_id <> c.id OR w.week_start_date <> h.week_start_date);

    -- Upsert by (child, date), adopting a week already in that slot, as the trigger does.
    -- xmax = 0 marks a row this statement inserted (not updated): those weeks are new and
    -- empty, so their habits and records are plainly inserted; the rest are diffed.
    WITH upserted AS (
        INSERT INTO public.weeks AS w (id, child_id, week_start_date, week_period, legacy_id)
        SELECT overlay(pg_catalog.gen_random_uuid()::text PLACING v_key_prefix FROM 1 FOR 15)::uuid,
               c.id, h.week_start_date, h.week_period, h.id
        FROM public.habit_tracker AS h
        JOIN public.children AS c ON c.user_id = h.user_id AND c.name = h.child_name
        WHERE h.id = ANY (v_ids)
        ON CONFLICT (child_id, week_start_date) DO UPDATE
            SET legacy_id = EXCLUDED.legacy_id, week_period = EXCLUDED.week_period, updated_at = now()
            WHERE (w.legacy_id, w.week_period) IS DISTINCT FROM (EXCLUDED.legacy_id, EXCLUDED.week_period)
        RETURNING w.legacy_id, w.xmax = 0 AS created
    )
    SELECT array_agg(u.legacy_id) FILTER (WHERE u.created) INTO v_new FROM upserted AS u;
    v_old := ARRAY(SELECT unnest(v_ids) EXCEPT SELECT unnest(v_new));

    IF v_new IS NOT NULL THEN
        -- New weeks: one statement inserts their habits and, from the returned habit ids,
        -- their records (no read-back of what was just written). Nobody else can see these
        -- weeks yet, so there is nothing to conflict with.
        -- Each returned habit finds its source row through a LATERAL lookup by primary keys
        -- (OFFSET 0 keeps it a per-row lookup): joined as a second CTE instead, a generic
        -- plan (estimating ~1 row per side) put the CTE scan inside a nested loop and
        -- rescanned it once per week, quadratic in the batch (1,000-row batches: 0.56 s
        -- for this statement, against 0.29 s with a custom plan).
        WITH new_habits AS (
            INSERT INTO public.habits (id, week_id, name, position)
            SELECT overlay(pg_catalog.gen_random_uuid()::text PLACING v_key_prefix FROM 1 FOR 15)::uuid,
                   w.id, e.elem ->> 'name', (e.ord - 1)::integer
            FROM public.habit_tracker AS h
            JOIN public.weeks AS w ON w.legacy_id = h.id AND w.legacy_id = ANY (v_new)
            CROSS JOIN LATERAL jsonb_array_elements(h.habits) WITH ORDINALITY AS e (elem, ord)
            WHERE h.id = ANY (v_new)
            RETURNING id, week_id, position
        )
        INSERT INTO public.habit_records (id, habit_id, record_date, status)
        SELECT overlay(pg_catalog.gen_random_uuid()::text PLACING v_key_prefix FROM 1 FOR 15)::uuid,
               nh.id, src.week_start_date + d.i, src.habits -> nh.position -> 'times' ->> d.i
        FROM new_habits AS nh
        CROSS JOIN LATERAL (
            SELECT h.week_start_date, h.habits
            FROM public.weeks AS w
            JOIN public.habit_tracker AS h ON h.id = w.legacy_id
            WHERE w.id = nh.week_id
            OFFSET 0
        ) AS src
        CROSS JOIN generate_series(0, 6) AS d (i)
        WHERE src.habits -> nh.position -> 'times' ->> d.i <> '';
    END IF;

    IF cardinality(v_old) = 0 THEN
        RETURN v_last;
    END IF;

    -- Weeks that existed: habits by position (drop the tail, upsert, renaming only where
    -- the name differs), then records by date (drop days now empty or outside the week,
    -- upsert changed ones). Re-running an already projected batch writes nothing.
    DELETE FROM public.habits AS hb
    USING public.habit_tracker AS h
    JOIN public.weeks AS w ON w.legacy_id = h.id AND w.legacy_id = ANY (v_old)
    WHERE h.id = ANY (v_old)
      AND hb.week_id = w.id
      AND hb.position >= jsonb_array_length(h.habits);

    INSERT INTO public.habits AS hb (id, week_id, name, position)
    SELECT overlay(pg_catalog.gen_random_uuid()::text PLACING v_key_prefix FROM 1 FOR 15)::uuid,
           w.id, e.elem ->> 'name', (e.ord - 1)::integer
    FROM public.habit_tracker AS h
    JOIN public.weeks AS w ON w.legacy_id = h.id AND w.legacy_id = ANY (v_old)
    CROSS JOIN LATERAL jsonb_array_elements(h.habits) WITH ORDINALITY AS e (elem, ord)
    WHERE h.id = ANY (v_old)
    ON CONFLICT (week_id, position) DO UPDATE
        SET name = EXCLUDED.name
        WHERE hb.name <> EXCLUDED.name;

    DELETE FROM public.habit_records AS rec
    USING public.habit_tracker AS h
    JOIN public.weeks AS w ON w.legacy_id = h.id AND w.legacy_id = ANY (v_old)
    JOIN public.habits AS hb ON hb.week_id = w.id
    WHERE h.id = ANY (v_old)
      AND rec.habit_id = hb.id
      AND coalesce(CASE WHEN rec.record_date - h.week_start_date BETWEEN 0 AND 6
                        THEN h.habits -> hb.position -> 'times' ->> (rec.record_date - h.week_start_date) END,
                   '') = '';

    INSERT INTO public.habit_records AS rec (id, habit_id, record_date, status)
    SELECT overlay(pg_catalog.gen_random_uuid()::text PLACING v_key_prefix FROM 1 FOR 15)::uuid,
           hb.id, h.week_start_date + d.i, h.habits -> hb.position -> 'times' ->> d.i
    FROM public.habit_tracker AS h
    JOIN public.weeks AS w ON w.legacy_id = h.id AND w.legacy_id = ANY (v_old)
    JOIN public.habits AS hb ON hb.week_id = w.id
    CROSS JOIN generate_series(0, 6) AS d (i)
    WHERE h.id = ANY (v_old)
      AND h.habits -> hb.position -> 'times' ->> d.i <> ''
    ON CONFLICT (habit_id, record_date) DO UPDATE
        SET status = EXCLUDED.status
        WHERE rec.status <> EXCLUDED.status;

    RETURN v_last;
END;
$$;
