-- Phase 1's sync of one habit_tracker row (a statement that wrote one row): afterwards the
-- week with legacy_id = id is exactly the row's projection. The mapping, the malformed-row
-- test and the subtransaction are those of sync_habit_tracker_rows(), one row at a time: the
-- per-row body Phase 1 ran as a row trigger before syncs were made per statement, kept for
-- single-row statements, where a statement's fixed cost (a dozen set-based statements and
-- their DML nodes) was measured at 0.57x the TPS of this body (bench/NOTES.md,
-- "2026-12-02: bulk writes"). tests/db/test_bulk_sync.py checks that both give the same weeks.
-- `old_row` is NULL for INSERT, `new_row` for DELETE. Its steps: the malformed-row test
-- (habit_tracker_row_error()'s, inlined; the helper only for the message); then, in one
-- subtransaction: repoint a changed id; read the week with its child; if it is in place,
-- update the period, else find or create the child and insert, move or adopt the week (as in
-- sync_habit_tracker_rows()); habits by position (drop the tail, upsert new or renamed
-- positions, unchanged ones filtered by a scalar subquery so ON CONFLICT never locks them);
-- records by date (delete days now empty or outside the week, upsert new or changed days);
-- an UPDATE of a week made from the row's previous version compares only the habits and days
-- that differ between the two versions (tests/db/test_single_row_diff.py counts the reads).
-- A concurrent writer's child is re-read after ON CONFLICT DO NOTHING.
--
-- SECURITY INVOKER: its only caller is the statement trigger's SECURITY DEFINER function,
-- which runs it as the migration's owner; nobody else may execute it.
CREATE OR REPLACE FUNCTION public.sync_one_habit_tracker_row(
    op text, new_row public.habit_tracker, old_row public.habit_tracker
)
RETURNS void
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
-- Every statement below is a lookup by a unique key. PL/pgSQL caches a generic plan per
-- session, and a session that first fires while the new schema is still small (the flip
-- to Phase 1, before the backfill fills it) would keep sequential-scan plans as the tables
-- grow: measured by bench/, each app write then re-read the whole habits table and the
-- writer's p99 during backfill reached seconds. Index plans only, whatever the stats said.
SET enable_seqscan = off
AS $$
DECLARE
    r public.habit_tracker%ROWTYPE;
    v_problem text;
    v_state text;
    v_child uuid;
    v_week uuid;
    v_occupant uuid;
    v_week_date date;
    v_week_period text;
    v_child_user uuid;
    v_child_name text;
    v_whole boolean := true;
    v_names_changed boolean;
    v_failed boolean;          -- the row has a dual_write_errors entry (read with its week)
BEGIN
    IF op = 'DELETE' THEN
        r := old_row;
    ELSE
        r := new_row;
    END IF;

    IF op <> 'DELETE' AND NOT (
        jsonb_typeof(r.habits) = 'array' AND EXTRACT(ISODOW FROM r.week_start_date) = 1
        AND NOT EXISTS (
            SELECT FROM jsonb_array_elements(r.habits) AS e (elem)
            WHERE NOT (coalesce(jsonb_typeof(e.elem -> 'name') = 'string', false)
                       AND CASE WHEN jsonb_typeof(e.elem -> 'times') = 'array'
                                THEN jsonb_array_length(e.elem -> 'times') = 7
                                     AND (e.elem -> 'times') <@ '["green", "yellow", "red", ""]'::jsonb
                                ELSE false END)))
    THEN
        v_problem := public.habit_tracker_row_error(r.habits, r.week_start_date);
        IF v_problem IS NOT NULL THEN
            INSERT INTO public.dual_write_errors (tracker_id, operation, error) VALUES (r.id, op, v_problem);
            RAISE WARNING 'dual-write: habit_tracker id=% not synced (%): %', r.id, op, v_problem;
            RETURN;
        END IF;
    END IF;

    BEGIN
        IF op = 'DELETE' THEN
            DELETE FROM public.weeks AS w WHERE w.legacy_id = r.id;
            RETURN;
        END IF;

        IF op = 'UPDATE' AND old_row.id <> new_row.id THEN
            UPDATE public.weeks AS w SET legacy_id = new_row.id WHERE w.legacy_id = old_row.id;
        END IF;

        SELECT w.id, w.week_start_date, w.week_period, c.user_id, c.name,
               EXISTS (SELECT FROM public.dual_write_errors AS e WHERE e.tracker_id = r.id)
        INTO v_week, v_week_date, v_week_period, v_child_user, v_child_name, v_failed
        FROM public.weeks AS w
        JOIN public.children AS c ON c.id = w.child_id
        WHERE w.legacy_id = r.id;

        IF v_week IS NOT NULL AND v_child_user = r.user_id AND v_child_name = r.child_name
           AND v_week_date = r.week_start_date THEN
            IF v_week_period IS DISTINCT FROM r.week_period THEN
                UPDATE public.weeks AS w SET week_period = r.week_period, updated_at = now() WHERE w.id = v_week;
            END IF;
            -- An UPDATE of a week in place whose previous version the sync made diffs only the
            -- habits and days that differ between the two versions, as sync_habit_tracker_rows()
            -- does: an app's edit of one day reads one habit's records, not the week's 35. A
            -- previous version that was not an array has no element at any position (NULL is
            -- distinct from every habit and day), so all of its week is compared.
            v_whole := op <> 'UPDATE' OR old_row.id <> new_row.id OR v_failed;
        ELSE
            SELECT c.id INTO v_child FROM public.children AS c
            WHERE c.user_id = r.user_id AND c.name = r.child_name;
            IF v_child IS NULL THEN
                INSERT INTO public.children AS c (user_id, name) VALUES (r.user_id, r.child_name)
                ON CONFLICT (user_id, name) DO NOTHING
                RETURNING c.id INTO v_child;
                IF v_child IS NULL THEN
                    SELECT c.id INTO v_child FROM public.children AS c
                    WHERE c.user_id = r.user_id AND c.name = r.child_name;
                END IF;
            END IF;

            IF v_week IS NULL THEN
                INSERT INTO public.weeks AS w (child_id, week_start_date, week_period, legacy_id)
                VALUES (v_child, r.week_start_date, r.week_period, r.id)
                ON CONFLICT (child_id, week_start_date) DO UPDATE
                    SET legacy_id = EXCLUDED.legacy_id, week_period = EXCLUDED.week_period, updated_at = now()
                RETURNING w.id INTO v_week;
            ELSE
                SELECT w.id INTO v_occupant FROM public.weeks AS w
                WHERE w.child_id = v_child AND w.week_start_date = r.week_start_date;
                IF v_occupant IS NULL THEN
                    UPDATE public.weeks AS w
                    SET child_id = v_child, week_start_date = r.week_start_date,
                        week_period = r.week_period, updated_at = now()
                    WHERE w.id = v_week;
                ELSE
                    DELETE FROM public.weeks AS w WHERE w.id = v_week;
                    UPDATE public.weeks AS w
                    SET legacy_id = r.id, week_period = r.week_period, updated_at = now()
                    WHERE w.id = v_occupant;
                    v_week := v_occupant;
                END IF;
            END IF;
        END IF;

        -- Habits: skipped when a diffed UPDATE kept every name and the count (its two DML nodes
        -- cost their start-up even when they write nothing); compared here without a query.
        v_names_changed := v_whole OR jsonb_typeof(old_row.habits) IS DISTINCT FROM 'array'
                           OR jsonb_array_length(old_row.habits) <> jsonb_array_length(r.habits);
        IF NOT v_names_changed THEN
            FOR i IN 0 .. jsonb_array_length(r.habits) - 1 LOOP
                IF old_row.habits -> i ->> 'name' IS DISTINCT FROM r.habits -> i ->> 'name' THEN
                    v_names_changed := true;
                    EXIT;
                END IF;
            END LOOP;
        END IF;
        IF v_names_changed THEN
            WITH dropped AS (
                DELETE FROM public.habits AS h
                WHERE h.week_id = v_week AND h.position >= jsonb_array_length(r.habits)
            )
            INSERT INTO public.habits AS h (week_id, name, position)
            SELECT v_week, e.elem ->> 'name', (e.ord - 1)::integer
            FROM jsonb_array_elements(r.habits) WITH ORDINALITY AS e (elem, ord)
            WHERE (v_whole OR old_row.habits -> (e.ord - 1)::integer ->> 'name' IS DISTINCT FROM e.elem ->> 'name')
              AND (SELECT o.name FROM public.habits AS o
                   WHERE o.week_id = v_week AND o.position = (e.ord - 1)::integer) IS DISTINCT FROM e.elem ->> 'name'
            ON CONFLICT (week_id, position) DO UPDATE SET name = EXCLUDED.name;
        END IF;

        WITH cleared AS (
            DELETE FROM public.habit_records AS rec
            USING public.habits AS h
            WHERE h.week_id = v_week AND rec.habit_id = h.id
              AND (v_whole OR old_row.habits -> h.position -> 'times' IS DISTINCT FROM r.habits -> h.position -> 'times')
              AND coalesce(CASE WHEN rec.record_date - r.week_start_date BETWEEN 0 AND 6
                                THEN r.habits -> h.position -> 'times' ->> (rec.record_date - r.week_start_date) END,
                           '') = ''
        )
        INSERT INTO public.habit_records AS rec (habit_id, record_date, status)
        SELECT h.id, r.week_start_date + d.i, r.habits -> h.position -> 'times' ->> d.i
        FROM public.habits AS h
        CROSS JOIN generate_series(0, 6) AS d (i)
        WHERE h.week_id = v_week AND r.habits -> h.position -> 'times' ->> d.i <> ''
          AND (v_whole OR old_row.habits -> h.position -> 'times' ->> d.i IS DISTINCT FROM r.habits -> h.position -> 'times' ->> d.i)
          AND (SELECT o.status FROM public.habit_records AS o
               WHERE o.habit_id = h.id AND o.record_date = r.week_start_date + d.i)
              IS DISTINCT FROM r.habits -> h.position -> 'times' ->> d.i
        ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_problem = MESSAGE_TEXT;
        INSERT INTO public.dual_write_errors (tracker_id, operation, error)
        VALUES (r.id, op, v_problem || ' (SQLSTATE ' || v_state || ')');
        RAISE WARNING 'dual-write: habit_tracker id=% not synced (%): % (SQLSTATE %)', r.id, op, v_problem, v_state;
    END;
END;
$$;
