-- Every habit_tracker row, and every mirrored week, whose old and new forms disagree:
-- (legacy_id, state) with state 'missing' (no week with that legacy_id), 'mismatched'
-- (the week is not exactly the row's projection, or the row cannot be projected) or
-- 'orphaned' (a week whose legacy_id no longer exists). Synced rows are not returned.
-- dual_write_drift() counts it; the backfill runner resumes from its smallest id.
--
-- One set-based pass: both sides are cut into 64-bit terms keyed by the sheet's id
-- (legacy_id), and one GROUP BY XORs each sheet's terms of both sides together. A sheet
-- and its week cancel out exactly when every term of one has its twin in the other:
--   sheet:  user_id, child name, week_start_date and week_period, hashed as a chain (each
--           hash the seed of the next, week_period NULL not the same as ''), one term per
--           side: the sheet's (on its first element's row) and the week's with its child's
--   habit:  one term per habit over (position, name)
--   day:    one term per non-empty day over (position, date, status); the target side
--           hashes each habit_record as it meets its habit and week in hash joins
-- Positions are unique per week and dates per habit, so no two terms of one side hash the
-- same input, and a term of one side is cancelled only by its twin. So a sheet is synced
-- when its side bits (bit_or over its rows) are exactly 3, both sides and no source row that
-- cannot be projected (bit 4), and its XOR is 0; a difference hides only if 64-bit
-- hashes collide. A record outside its week hashes a date the source cannot produce.
-- The element test is habit_tracker_row_error()'s, inlined (see there).
--
-- Why one GROUP BY (bench/NOTES.md, 2026-12-02 "drift at 1M"): PostgreSQL 15 runs a FULL
-- JOIN of a source and a target side in one process, after each side was finalised there
-- too; one partial aggregate per worker over the UNION ALL of both sides, finalised once,
-- keeps the whole diff in parallel workers up to that final step.
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
-- order reads the heap in random order once rows have been updated: 67 s against 13 s for
-- 20.5M records (bench/NOTES.md). A memo keyed by a whole habits document costs more than
-- it saves. Hash joins and aggregates get room, and JIT compilation would cost more than
-- it saves.
SET enable_indexscan = off
SET enable_bitmapscan = off
SET enable_memoize = off
-- The GROUP BY is hashed per worker (partial aggregates, then one final aggregate of a row
-- per sheet and worker). The planner thinks each habits array has 100 elements (any
-- set-returning function's default estimate), so it would rather sort the rows, gather
-- them into one process and group them there: serial again (59 s at 1M rows, against 20 s).
SET enable_sort = off
SET work_mem = '64MB'
SET jit = off
AS $$
WITH term AS (
    -- Source: one row per element (a row with no element for an empty array or one that is
    -- not an array, which is then not valid). jsonb_to_record reads an element's name and
    -- times once, instead of looking 'times' up again for each day.
    SELECT h.id AS legacy_id,
           -- side bits: 1 a sheet's row, 4 one that cannot be projected, 2 a week's row
           -- ((date - a Monday) % 7 = 0 is ISO day 1, in integer arithmetic)
           CASE WHEN jsonb_typeof(h.habits) = 'array' AND (h.week_start_date - DATE '2000-01-03') % 7 = 0
           AND (x.ord IS NULL OR (
                coalesce(jsonb_typeof(r.name) = 'string', false)
                AND CASE WHEN jsonb_typeof(r.times) = 'array'
                         THEN jsonb_array_length(r.times) = 7
                              AND r.times <@ '["green", "yellow", "red", ""]'::jsonb
                         ELSE false END))
                THEN 1 ELSE 5 END AS side,
           CASE WHEN x.ord IS NULL OR x.ord = 1
                THEN CASE WHEN h.week_period IS NULL
                          THEN hashtextextended(h.child_name, hashint8extended(h.week_start_date - DATE '2000-01-03', uuid_hash_extended(h.user_id, 7)))
                          ELSE hashtextextended(h.week_period, hashtextextended(h.child_name, hashint8extended(h.week_start_date - DATE '2000-01-03', uuid_hash_extended(h.user_id, 7)))) END
                ELSE 0 END
           -- Day i of habit p hashes ((week_start_date - epoch + i) * 4 + status code)
           -- seeded with p: the same number the target side computes from a record's
           -- own date and status and its habit's position. An empty day adds nothing.
           # coalesce(hashtextextended((x.ord - 1)::text || ':' || (r.name #>> '{}'), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 0 + array_position(ARRAY['green', 'yellow', 'red'], r.times ->> 0), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 4 + array_position(ARRAY['green', 'yellow', 'red'], r.times ->> 1), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 8 + array_position(ARRAY['green', 'yellow', 'red'], r.times ->> 2), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 12 + array_position(ARRAY['green', 'yellow', 'red'], r.times ->> 3), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 16 + array_position(ARRAY['green', 'yellow', 'red'], r.times ->> 4), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 20 + array_position(ARRAY['green', 'yellow', 'red'], r.times ->> 5), x.ord - 1), 0)
               # coalesce(hashint8extended((h.week_start_date - DATE '2000-01-03')::bigint * 4 + 24 + array_position(ARRAY['green', 'yellow', 'red'], r.times ->> 6), x.ord - 1), 0), 0)
           AS term
    FROM public.habit_tracker AS h
    LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(h.habits) = 'array' THEN h.habits ELSE '[]' END)
        WITH ORDINALITY AS x (elem, ord) ON true
    LEFT JOIN LATERAL jsonb_to_record(CASE WHEN jsonb_typeof(x.elem) = 'object' THEN x.elem END)
        AS r (name jsonb, times jsonb) ON true
    UNION ALL
    -- Target: weeks written only through the new path mirror nothing (legacy_id NULL).
    SELECT w.legacy_id, 2,
           CASE WHEN w.week_period IS NULL
                THEN hashtextextended(c.name, hashint8extended(w.week_start_date - DATE '2000-01-03', uuid_hash_extended(c.user_id, 7)))
                ELSE hashtextextended(w.week_period, hashtextextended(c.name, hashint8extended(w.week_start_date - DATE '2000-01-03', uuid_hash_extended(c.user_id, 7)))) END
    FROM public.weeks AS w
    JOIN public.children AS c ON c.id = w.child_id
    WHERE w.legacy_id IS NOT NULL
    UNION ALL
    SELECT w.legacy_id, 2, hashtextextended(hb.position::text || ':' || hb.name, 0)
    FROM public.habits AS hb
    JOIN public.weeks AS w ON w.id = hb.week_id
    WHERE w.legacy_id IS NOT NULL
    UNION ALL
    SELECT w.legacy_id, 2,
           hashint8extended((rec.record_date - DATE '2000-01-03')::bigint * 4
                            + array_position(ARRAY['green', 'yellow', 'red'], rec.status), hb.position)
    FROM public.habit_records AS rec
    JOIN public.habits AS hb ON hb.id = rec.habit_id
    JOIN public.weeks AS w ON w.id = hb.week_id
    WHERE w.legacy_id IS NOT NULL
),
per_sheet AS (
    SELECT t.legacy_id, bit_or(t.side) AS sides, bit_xor(t.term) AS term
    FROM term AS t
    GROUP BY t.legacy_id
)
SELECT p.legacy_id,
       CASE WHEN p.sides & 2 = 0 THEN 'missing' WHEN p.sides & 1 = 0 THEN 'orphaned' ELSE 'mismatched' END
FROM per_sheet AS p
WHERE p.sides <> 3 OR p.term <> 0
$$;
