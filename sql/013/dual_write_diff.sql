-- Every habit_tracker row, and every mirrored week, whose old and new forms disagree:
-- (legacy_id, state) with state 'missing' (no week with that legacy_id), 'mismatched'
-- (the week is not exactly the row's projection, or the row cannot be projected) or
-- 'orphaned' (a week whose legacy_id no longer exists). Synced rows are not returned.
-- dual_write_drift() counts it; the backfill runner resumes from its smallest id.
--
-- Set-based and one pass over each table: both sides are reduced to the same
-- fingerprint per week, then full-joined on legacy_id. No per-row lookups.
--   week:   child user_id and name, week_start_date, week_period (compared as values)
--   habits: count, and an XOR of one 64-bit hash per habit over (position, name, days),
--           so habit order and names matter but no ordered aggregate is needed
--   days:   an XOR of one hash per non-empty day over (date, status); a record outside
--           its week hashes a date the source cannot produce, so it shows as a mismatch.
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
-- A report over whole tables: hash joins and aggregates must stay in memory, and JIT
-- compilation would cost more than it saves.
SET work_mem = '64MB'
SET jit = off
AS $$
WITH source AS (
    -- One row per habit element (a function scan per row, then one hash aggregate), so
    -- no per-row subquery runs. Rows with an empty array keep one all-NULL element row.
    SELECT
        h.id,
        h.user_id,
        h.child_name,
        h.week_start_date,
        h.week_period,
        coalesce(bool_and(
                     -- row checks inside the aggregate: habits itself need not be carried
                     jsonb_typeof(h.habits) = 'array' AND EXTRACT(ISODOW FROM h.week_start_date) = 1)
                 AND bool_and(
                     x.elem IS NULL
                     OR coalesce(jsonb_typeof(x.elem -> 'name') = 'string', false)
                        AND CASE WHEN jsonb_typeof(x.elem -> 'times') = 'array'
                                 THEN jsonb_array_length(x.elem -> 'times') = 7
                                      AND (x.elem -> 'times') <@ '["green", "yellow", "red", ""]'::jsonb
                                 ELSE false END),
                 false) AS valid,
        count(x.elem) AS habit_count,
        -- Day i of a habit hashes ((week_start_date - epoch + i) * 4 + status code), the
        -- same number the target side computes from a record's own date and status.
        coalesce(bit_xor(hashtextextended(
            (x.ord - 1)::text || ':' || (
                  coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 0 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 0), 0), 0)
                # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 4 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 1), 0), 0)
                # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 8 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 2), 0), 0)
                # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 12 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 3), 0), 0)
                # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 16 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 4), 0), 0)
                # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 20 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 5), 0), 0)
                # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 24 + array_position(ARRAY['green', 'yellow', 'red'], x.elem -> 'times' ->> 6), 0), 0)
            )::text || ':' || (x.elem ->> 'name'), 0)), 0) AS habit_hash
    FROM public.habit_tracker AS h
    LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(h.habits) = 'array' THEN h.habits ELSE '[]' END)
        WITH ORDINALITY AS x (elem, ord) ON true
    GROUP BY h.id
),
record_hash AS (
    SELECT rec.habit_id,
           bit_xor(hashint8extended((rec.record_date - DATE '2000-01-03')::bigint * 4
                                    + array_position(ARRAY['green', 'yellow', 'red'], rec.status), 0)) AS day_hash
    FROM public.habit_records AS rec
    GROUP BY rec.habit_id
),
habit_hash AS (
    SELECT hb.week_id,
           count(*) AS habit_count,
           bit_xor(hashtextextended(
               hb.position::text || ':' || coalesce(rh.day_hash, 0)::text || ':' || hb.name, 0)) AS habit_hash
    FROM public.habits AS hb
    LEFT JOIN record_hash AS rh ON rh.habit_id = hb.id
    GROUP BY hb.week_id
),
target AS (
    SELECT w.legacy_id, c.user_id, c.name, w.week_start_date, w.week_period,
           coalesce(hh.habit_count, 0) AS habit_count,
           coalesce(hh.habit_hash, 0) AS habit_hash
    FROM public.weeks AS w
    JOIN public.children AS c ON c.id = w.child_id
    LEFT JOIN habit_hash AS hh ON hh.week_id = w.id
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
