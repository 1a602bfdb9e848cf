-- Every habit_tracker row, and every mirrored week, whose old and new forms disagree:
-- (legacy_id, state) with state 'missing' (no week with that legacy_id), 'mismatched'
-- (the week is not exactly the row's projection, or the row cannot be projected) or
-- 'orphaned' (a week whose legacy_id no longer exists). Synced rows are not returned.
-- dual_write_drift() counts it; the backfill runner resumes from its smallest id.
--
-- Set-based, sequential reads of each table (habits twice: for its own terms, and in the
-- hash join that hashes the records): both sides are reduced to the same fingerprint per
-- week, then full-joined on legacy_id. No per-row lookups.
--   week:   child user_id and name, week_start_date, week_period (compared as values)
--   habits: the count, and an XOR of one 64-bit hash per habit over (position, name) and
--           one per non-empty day over (position, date, status). Positions are unique per
--           week and dates per habit, so no two terms hash the same input; habit order,
--           names and every day matter. The XOR is linear: records are hashed as they are
--           joined to their habit and XORed per week, never grouped per habit first.
--   a record outside its week hashes a date the source cannot produce: a mismatch.
-- The element test is habit_tracker_row_error()'s, inlined (see there).
CREATE OR REPLACE FUNCTION public.dual_write_diff()
RETURNS TABLE (legacy_id bigint, state text)
LANGUAGE sql
STABLE
-- SECURITY INVOKER: its callers (the owner, service_role for monitoring) read these tables
-- themselves; definer rights would only lend them to whoever else got EXECUTE.
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
-- A report over whole tables, so every table is read sequentially. An index scan in key
-- order (the planner's pick when this function grouped habit_records per habit, and one
-- that an ordered join could still make) reads the heap in random order once rows have
-- been updated: 67 s against 13 s for 20.5M records (bench/NOTES.md). A memo keyed
-- by a whole habits document costs more than it saves. Hash joins and aggregates get room,
-- and JIT compilation would cost more than it saves.
SET enable_indexscan = off
SET enable_bitmapscan = off
SET enable_memoize = off
-- The source side's GROUP BY is hashed per worker (partial aggregates, then one final
-- aggregate of a row per sheet). The planner thinks each habits array has 100 elements (any
-- set-returning function's default estimate), so it would rather sort the wide rows, gather
-- them into one process and group them there: serial again (59 s at 1M rows, against 20 s).
SET enable_sort = off
SET work_mem = '64MB'
SET jit = off
AS $$
WITH source AS (
    -- One row per element (a row with no element for an empty array), reduced per sheet by
    -- GROUP BY h.id: each worker of a parallel scan reduces its own sheets (partial
    -- aggregates), so this side runs in parallel like the target side. A LATERAL aggregate
    -- subquery per row, as this side was, is parallel-restricted (its outer reference is a
    -- parameter), so it ran in one process: at 1M rows, 1.74x the floor (bench/NOTES.md).
    -- Rows whose habits is not an array are reduced as an empty one.
    SELECT h.id, h.user_id, h.child_name, h.week_start_date, h.week_period,
           -- bool_or of a value that is the same on each of the sheet's rows: the aggregate
           -- then carries a boolean per sheet instead of its whole habits document.
           coalesce(bool_or(jsonb_typeof(h.habits) = 'array' AND EXTRACT(ISODOW FROM h.week_start_date) = 1)
                    AND coalesce(bool_and(
                            coalesce(jsonb_typeof(x.elem -> 'name') = 'string', false)
                            AND CASE WHEN jsonb_typeof(x.elem -> 'times') = 'array'
                                     THEN jsonb_array_length(x.elem -> 'times') = 7
                                          AND (x.elem -> 'times') <@ '["green", "yellow", "red", ""]'::jsonb
                                     ELSE false END) FILTER (WHERE x.ord IS NOT NULL), true),
                    false) AS valid,
           count(x.ord) AS habit_count,
           -- Day i of habit p hashes ((week_start_date - epoch + i) * 4 + status code)
           -- seeded with p: the same number the target side computes from a record's
           -- own date and status and its habit's position. An empty day adds nothing.
           coalesce(bit_xor(
               hashtextextended((x.ord - 1)::text || ':' || (x.elem ->> 'name'), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 0 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 0), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 4 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 1), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 8 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 2), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 12 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 3), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 16 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 4), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 20 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 5), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 24 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 6), x.ord - 1), 0)
           ) FILTER (WHERE x.ord IS NOT NULL), 0) AS habit_hash
    FROM public.habit_tracker AS h
    LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(h.habits) = 'array' THEN h.habits ELSE '[]' END)
        WITH ORDINALITY AS x (elem, ord) ON true
    GROUP BY h.id
),
week_term AS (
    -- One term per habit, and one per record (hashed as it meets its habit in a hash join)
    SELECT hb.week_id, 1 AS habits,
           hashtextextended(hb.position::text || ':' || hb.name, 0) AS term
    FROM public.habits AS hb
    UNION ALL
    SELECT hb.week_id, 0,
           hashint8extended((rec.record_date - DATE '2000-01-03')::bigint * 4
                            + array_position(ARRAY['green', 'yellow', 'red'], rec.status), hb.position)
    FROM public.habit_records AS rec
    JOIN public.habits AS hb ON hb.id = rec.habit_id
),
week_hash AS (
    SELECT wt.week_id, sum(wt.habits) AS habit_count, bit_xor(wt.term) AS habit_hash
    FROM week_term AS wt
    GROUP BY wt.week_id
),
target AS (
    SELECT w.legacy_id, c.user_id, c.name, w.week_start_date, w.week_period,
           coalesce(wh.habit_count, 0) AS habit_count,
           coalesce(wh.habit_hash, 0) AS habit_hash
    FROM public.weeks AS w
    JOIN public.children AS c ON c.id = w.child_id
    LEFT JOIN week_hash AS wh ON wh.week_id = w.id
    WHERE w.legacy_id IS NOT NULL -- weeks written only through the new path mirror nothing
)
SELECT coalesce(s.id, t.legacy_id),
       CASE WHEN t.legacy_id IS NULL THEN 'missing'
            WHEN s.id IS NULL THEN 'orphaned'
            ELSE 'mismatched' END
FROM source AS s
FULL JOIN target AS t ON t.legacy_id = s.id
WHERE s.id IS NULL
   OR t.legacy_id IS NULL
   OR NOT (s.valid
           AND s.user_id = t.user_id
           AND s.child_name = t.name
           AND s.week_start_date = t.week_start_date
           AND s.week_period IS NOT DISTINCT FROM t.week_period
           AND s.habit_count = t.habit_count
           AND s.habit_hash = t.habit_hash)
$$;
