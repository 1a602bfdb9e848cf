-- Phase 1's sync of a set of habit_tracker rows, in one subtransaction: afterwards the week
-- with legacy_id = id of each row is its projection (the mapping of issue 4, see
-- sync_old_to_new_statement.phase1.sql). The rows come as one array per column, in one
-- order: well-formed rows as they are now (for DELETE: only `ids`, as they were) and, for
-- UPDATE, the same rows' ids and habits before it (NULL otherwise). Parallel arrays zipped
-- by unnest(a, b, ...): a subscript of a large array inside SQL walks it, which made a
-- 10,000-row statement quadratic (measured: 60 s), and an array of whole rows cost more to
-- build and take apart than the sync.
--
-- Set-based: a handful of statements for the whole set, where the row trigger ran a dozen
-- per row (bench/NOTES.md: a row's cost was mostly how many statements and DML nodes ran
-- for it). Only rows whose week is missing or elsewhere (new rows, renamed children, moved
-- weeks) are placed one at a time.
--
-- What an UPDATE diffs: the habits and days that differ between the previous and the new
-- row; for those, the new schema is read and written only where it differs, so an edit of
-- one day reads and writes one record, not the week. That trusts the rest of the week to
-- be the previous row's projection, which the sync made. A row whose previous version the
-- sync did not make has all of its week diffed instead: no week in place (never synced,
-- or moved), a previous version that was not an array, or a row with a dual_write_errors
-- entry (malformed or failed before). Rows already mirrored that were written while the
-- sync was off (a rollback, Phase 0) are brought back by the backfill that `invoke up`
-- runs when it turns the sync back on (its refresh counts them); drift shows them meanwhile.
--
-- Steps: repoint changed ids; find each row's week (in place: same child and date) and the
-- periods that changed; place the others one at a time (find or create the child; insert,
-- move or adopt the week: a slot already taken by a new-path or stale week is adopted and
-- the old one dropped); find the habits to diff; habits by position (drop the tail of a
-- shorter week, records cascade; upsert new or renamed positions: an unchanged habit never
-- reaches ON CONFLICT, which would lock it, a heap write per unchanged row); records by
-- (habit, date) for the days that differ (delete a day now empty, update a changed status
-- by the ctid read in the same statement, insert a missing day; a week diffed whole also
-- loses records outside its dates). Filters are scalar subqueries, one index probe each,
-- never joins a plan could turn into scans; positions and days come from set-returning
-- functions in the select list (no per-row materialisation, as a function in FROM has).
--
-- Anything that fails rolls back this call's subtransaction and is retried on each half
-- of the rows, down to the single row that fails, which is logged to dual_write_errors and
-- warned, never raised to the app. With no such row (malformed rows never get here) a
-- statement uses one subtransaction; with k of them in N rows about k * log2(N).
--
-- SECURITY INVOKER: its only caller is the statement trigger's SECURITY DEFINER function,
-- which runs it as the migration's owner; nobody else may execute it.
CREATE OR REPLACE FUNCTION public.sync_habit_tracker_rows(
    op text, ids bigint[], user_ids uuid[], child_names text[], week_start_dates date[], week_periods text[],
    habits jsonb[], previous_ids bigint[], previous_habits jsonb[]
)
RETURNS void
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
-- Lookups by key only: nested loops over index probes, whatever the statistics said when
-- a session cached its plans (a small new schema at the flip, before the backfill) and
-- however many rows a statement has (the planner never sees the arrays' length).
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
-- Disabled plan types cost 1e10 in the planner's estimates, far past jit_above_cost: JIT
-- would compile every statement (100-300 ms each, measured) to save nothing.
SET jit = off
-- Each unnest(...) in FROM is a Function Scan that stores its rows first: a 10,000-row
-- statement's habits (about 5 MB a column) spilled to a temporary file in five statements
-- at the default 4 MB (bench/NOTES.md, 2026-12-02 (later)). Bounded by the statement's size.
SET work_mem = '64MB'
AS $$
DECLARE
    v_week uuid[];             -- per row: its week (NULL until placed)
    v_whole boolean[];         -- per row: diff all of its week (no synced previous version to trust)
    v_period_weeks uuid[];     -- weeks in place whose period changed, and the new periods
    v_periods text[];
    -- Per habit to diff (every habit of a week diffed whole, else those that changed): its
    -- week, position, week start, element now, and times and name before.
    v_h_week uuid[];
    v_h_position integer[];
    v_h_whole boolean[];
    v_h_start date[];
    v_h_element jsonb[];
    v_h_before jsonb[];
    v_h_before_name text[];
    v_child uuid;
    v_occupant uuid;
    v_found uuid;
    v_half integer;
    v_state text;
    v_problem text;
BEGIN
    IF cardinality(ids) IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        IF op = 'DELETE' THEN
            DELETE FROM public.weeks AS w USING unnest(ids) AS o (id) WHERE w.legacy_id = o.id;
            RETURN;
        END IF;

        IF previous_ids <> ids THEN
            UPDATE public.weeks AS w SET legacy_id = p.id
            FROM unnest(ids, previous_ids) AS p (id, previous_id)
            WHERE w.legacy_id = p.previous_id AND p.id <> p.previous_id;
        END IF;

        SELECT array_agg(CASE WHEN x.in_place THEN x.week_id END ORDER BY x.i),
               array_agg(NOT x.in_place OR x.before IS NULL OR jsonb_typeof(x.before) <> 'array'
                         OR x.id <> x.previous_id
                         OR EXISTS (SELECT FROM public.dual_write_errors AS e WHERE e.tracker_id = x.id) ORDER BY x.i),
               array_agg(x.week_id) FILTER (WHERE x.in_place AND x.period IS DISTINCT FROM x.week_period),
               array_agg(x.week_period) FILTER (WHERE x.in_place AND x.period IS DISTINCT FROM x.week_period)
        INTO v_week, v_whole, v_period_weeks, v_periods
        FROM (SELECT n.i, n.id, n.week_period, w.id AS week_id, w.week_period AS period, n.before, n.previous_id,
                     coalesce(c.user_id = n.user_id AND c.name = n.child_name
                              AND w.week_start_date = n.week_start_date, false) AS in_place
              FROM unnest(ids, user_ids, child_names, week_start_dates, week_periods, previous_ids, previous_habits)
                  WITH ORDINALITY AS n (id, user_id, child_name, week_start_date, week_period, previous_id, before, i)
              LEFT JOIN public.weeks AS w ON w.legacy_id = n.id
              LEFT JOIN public.children AS c ON c.id = w.child_id) AS x;

        IF v_period_weeks IS NOT NULL THEN
            UPDATE public.weeks AS w SET week_period = p.week_period, updated_at = now()
            FROM unnest(v_period_weeks, v_periods) AS p (week_id, week_period)
            WHERE w.id = p.week_id;
        END IF;

        FOR i IN 1 .. cardinality(ids) LOOP
            CONTINUE WHEN v_week[i] IS NOT NULL;
            SELECT c.id INTO v_child FROM public.children AS c
            WHERE c.user_id = user_ids[i] AND c.name = child_names[i];
            IF v_child IS NULL THEN
                INSERT INTO public.children AS c (user_id, name) VALUES (user_ids[i], child_names[i])
                ON CONFLICT (user_id, name) DO NOTHING
                RETURNING c.id INTO v_child;
                IF v_child IS NULL THEN
                    SELECT c.id INTO v_child FROM public.children AS c
                    WHERE c.user_id = user_ids[i] AND c.name = child_names[i];
                END IF;
            END IF;
            SELECT w.id INTO v_found FROM public.weeks AS w WHERE w.legacy_id = ids[i];
            IF v_found IS NULL THEN
                INSERT INTO public.weeks AS w (child_id, week_start_date, week_period, legacy_id)
                VALUES (v_child, week_start_dates[i], week_periods[i], ids[i])
                ON CONFLICT (child_id, week_start_date) DO UPDATE
                    SET legacy_id = EXCLUDED.legacy_id, week_period = EXCLUDED.week_period, updated_at = now()
                RETURNING w.id INTO v_found;
            ELSE
                SELECT w.id INTO v_occupant FROM public.weeks AS w
                WHERE w.child_id = v_child AND w.week_start_date = week_start_dates[i];
                IF v_occupant IS NULL THEN
                    UPDATE public.weeks AS w
                    SET child_id = v_child, week_start_date = week_start_dates[i],
                        week_period = week_periods[i], updated_at = now()
                    WHERE w.id = v_found;
                ELSE
                    DELETE FROM public.weeks AS w WHERE w.id = v_found;
                    UPDATE public.weeks AS w
                    SET legacy_id = ids[i], week_period = week_periods[i], updated_at = now()
                    WHERE w.id = v_occupant;
                    v_found := v_occupant;
                END IF;
            END IF;
            v_week[i] := v_found;
        END LOOP;

        SELECT array_agg(x.week_id), array_agg(x.position), array_agg(x.whole), array_agg(x.start),
               array_agg(x.habits -> x.position), array_agg(x.before -> x.position -> 'times'),
               array_agg(x.before -> x.position ->> 'name')
        INTO v_h_week, v_h_position, v_h_whole, v_h_start, v_h_element, v_h_before, v_h_before_name
        FROM (SELECT k.week_id, k.whole, k.start, k.habits, k.before,
                     generate_series(0, jsonb_array_length(k.habits) - 1) AS position
              FROM unnest(v_week, v_whole, week_start_dates, habits, previous_habits)
                  AS k (week_id, whole, start, habits, before)) AS x
        WHERE x.whole OR x.before -> x.position IS DISTINCT FROM x.habits -> x.position;

        WITH dropped AS (
            DELETE FROM public.habits AS h
            USING unnest(v_week, v_whole, habits, previous_habits) AS k (week_id, whole, habits, before)
            WHERE (k.whole OR jsonb_array_length(k.before) > jsonb_array_length(k.habits))
              AND h.week_id = k.week_id AND h.position >= jsonb_array_length(k.habits)
        )
        INSERT INTO public.habits AS h (week_id, name, position)
        SELECT x.week_id, x.element ->> 'name', x.position
        FROM unnest(v_h_week, v_h_position, v_h_whole, v_h_element, v_h_before_name)
            AS x (week_id, position, whole, element, before_name)
        WHERE (x.whole OR x.before_name IS DISTINCT FROM x.element ->> 'name')
          AND (SELECT o.name FROM public.habits AS o WHERE o.week_id = x.week_id AND o.position = x.position)
              IS DISTINCT FROM x.element ->> 'name'
        ON CONFLICT (week_id, position) DO UPDATE SET name = EXCLUDED.name;

        WITH habit AS (
            SELECT (SELECT h.id FROM public.habits AS h WHERE h.week_id = x.week_id AND h.position = x.position) AS id,
                   x.start, x.element -> 'times' AS times, x.before, x.whole
            FROM unnest(v_h_week, v_h_position, v_h_whole, v_h_start, v_h_element, v_h_before)
                AS x (week_id, position, whole, start, element, before)
        ), day AS (
            SELECT y.habit_id, y.record_date, y.status, r.ctid AS record, r.status AS recorded
            FROM (SELECT t.id AS habit_id, t.start + t.i AS record_date, t.times ->> t.i AS status
                  FROM (SELECT t.*, generate_series(0, 6) AS i FROM habit AS t) AS t
                  WHERE t.whole OR t.before ->> t.i IS DISTINCT FROM t.times ->> t.i) AS y
            LEFT JOIN LATERAL (SELECT o.ctid, o.status FROM public.habit_records AS o
                               WHERE o.habit_id = y.habit_id AND o.record_date = y.record_date) AS r ON true
        ), outside AS (
            DELETE FROM public.habit_records AS rec USING habit AS t
            WHERE t.whole AND rec.habit_id = t.id AND rec.record_date NOT BETWEEN t.start AND t.start + 6
        ), cleared AS (
            DELETE FROM public.habit_records AS rec USING day AS t
            WHERE t.status = '' AND rec.ctid = t.record
        ), changed AS (
            UPDATE public.habit_records AS rec SET status = t.status
            FROM day AS t
            WHERE t.status <> '' AND rec.ctid = t.record AND t.recorded <> t.status
        )
        INSERT INTO public.habit_records AS rec (habit_id, record_date, status)
        SELECT t.habit_id, t.record_date, t.status FROM day AS t
        WHERE t.status <> '' AND t.record IS NULL
        ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status;
    EXCEPTION WHEN OTHERS THEN
        IF cardinality(ids) > 1 THEN
            v_half := cardinality(ids) / 2;
            PERFORM public.sync_habit_tracker_rows(
                op, ids[1:v_half], user_ids[1:v_half], child_names[1:v_half], week_start_dates[1:v_half],
                week_periods[1:v_half], habits[1:v_half], previous_ids[1:v_half], previous_habits[1:v_half]);
            PERFORM public.sync_habit_tracker_rows(
                op, ids[v_half + 1:], user_ids[v_half + 1:], child_names[v_half + 1:], week_start_dates[v_half + 1:],
                week_periods[v_half + 1:], habits[v_half + 1:], previous_ids[v_half + 1:], previous_habits[v_half + 1:]);
            RETURN;
        END IF;
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_problem = MESSAGE_TEXT;
        INSERT INTO public.dual_write_errors (tracker_id, operation, error)
        VALUES (ids[1], op, v_problem || ' (SQLSTATE ' || v_state || ')');
        RAISE WARNING 'dual-write: habit_tracker id=% not synced (%): % (SQLSTATE %)', ids[1], op, v_problem, v_state;
    END;
END;
$$;
