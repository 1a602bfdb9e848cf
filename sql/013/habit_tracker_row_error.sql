-- Why a habit_tracker row cannot be projected into the new schema, or NULL when it can.
--
-- One definition of "malformed", used by the Phase 1 trigger and by the backfill, so both
-- skip (and log) exactly the same rows. dual_write_diff() and the Phase 1 trigger repeat
-- the test inline for speed (a per-row function call would dominate their cost; the
-- trigger calls this function only for a row its inline test rejects, for the message);
-- tests/db check that they agree on every malformed case.
--
-- A row is projectable when habits is an array of {"name": <string>, "times": [7 strings]}
-- with every string one of "green", "yellow", "red", "" and week_start_date is a Monday.
-- Pure: it reads no table (built-ins resolve from pg_catalog, which is always searched).
-- PL/pgSQL, not SQL: the backfill calls it once per row, and a SQL function that cannot
-- be inlined (it has a SET clause) is planned again on every call; PL/pgSQL caches the
-- plan of its query for the session.
CREATE OR REPLACE FUNCTION public.habit_tracker_row_error(habits jsonb, week_start_date date)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
-- SECURITY INVOKER: it reads no table, so there is nothing definer rights would add.
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
AS $$
BEGIN
    RETURN CASE
    WHEN habits IS NULL OR jsonb_typeof(habits) <> 'array' THEN
        'habits is not a JSON array (it is ' || coalesce(jsonb_typeof(habits), 'NULL') || ')'
    WHEN week_start_date IS NULL OR EXTRACT(ISODOW FROM week_start_date) <> 1 THEN
        'week_start_date ' || coalesce(to_char(week_start_date, 'YYYY-MM-DD'), 'NULL') || ' is not a Monday'
    ELSE (
        SELECT 'habits[' || (e.ord - 1) || '] ' || CASE
            WHEN jsonb_typeof(e.elem) <> 'object' THEN 'is not an object: ' || left(e.elem::text, 100)
            WHEN coalesce(jsonb_typeof(e.elem -> 'name'), '') <> 'string' THEN 'has no "name" string'
            WHEN coalesce(jsonb_typeof(e.elem -> 'times'), '') <> 'array' THEN 'has no "times" array'
            WHEN jsonb_array_length(e.elem -> 'times') <> 7 THEN
                'has ' || jsonb_array_length(e.elem -> 'times') || ' entries in "times", not 7 (Monday..Sunday)'
            ELSE 'has an unknown status in "times" ' || left((e.elem -> 'times')::text, 100)
                || ' (allowed: "green", "yellow", "red", "")'
        END
        FROM jsonb_array_elements(habits) WITH ORDINALITY AS e (elem, ord)
        WHERE NOT (
            coalesce(jsonb_typeof(e.elem -> 'name') = 'string', false)
            AND CASE WHEN jsonb_typeof(e.elem -> 'times') = 'array'
                     THEN jsonb_array_length(e.elem -> 'times') = 7
                          AND (e.elem -> 'times') <@ '["green", "yellow", "red", ""]'::jsonb
                     ELSE false END
        )
        ORDER BY e.ord
        LIMIT 1
    )
    END;
END;
$$;
