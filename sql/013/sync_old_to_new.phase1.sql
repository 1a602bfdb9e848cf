-- Phase 1: every write to habit_tracker is mirrored into children / weeks / habits /
-- habit_records, in the app's own transaction.
--
-- Wait for writers already running: a session that started its write under the Phase 0
-- body could otherwise commit an unsynced row after the backfill that follows this flip
-- has passed it. SHARE ROW EXCLUSIVE waits for in-flight writes and blocks new ones only
-- until this transaction commits (bounded by the deploy's lock_timeout).
LOCK TABLE public.habit_tracker IN SHARE ROW EXCLUSIVE MODE;

-- Mapping (issue 4):
--   INSERT  upsert the child by (user_id, child_name), upsert the week by (child,
--           week_start_date) with legacy_id = id, one habit per array element (position =
--           index), one record per non-empty day (record_date = week_start_date + day).
--   UPDATE  afterwards the week with legacy_id = id is exactly the projection of the new
--           row: renamed child and moved week move that week; habits are diffed by
--           position and records by date, so an edit of one day writes one row.
--   DELETE  delete the week with legacy_id = id (habits and records cascade); keep the child.
--
-- Malformed rows (see habit_tracker_row_error) and any unexpected error never fail the
-- app's write: the row stays as the app wrote it, the failure goes to dual_write_errors
-- and to a WARNING, and dual_write_drift() counts the row as missing or mismatched.
--
-- Concurrency: writers of the same habit_tracker row are serialised by its row lock (and
-- writers of the same (user, child, week) by its unique index), so two triggers never
-- project the same week at once. The only shared row is the child: it is created with
-- ON CONFLICT DO NOTHING and re-read, so concurrent first writes of a child never raise
-- a unique violation. The backfill takes FOR SHARE locks on the rows it projects, so a
-- trigger and the backfill never interleave on one row (no lost update).
--
-- SECURITY DEFINER: the app writes habit_tracker as anon/authenticated, which need not be
-- able to write the new schema; the trigger does it as the migration's owner. The empty
-- search_path and fully qualified names keep a caller's search_path out of that.
CREATE OR REPLACE FUNCTION public.sync_old_to_new()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
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
BEGIN
    -- Phase 2 (issue 18), the one guard of the two-way sync: the reverse sync writes habit_tracker
    -- under habit_tracker_db.syncing = 'reverse' (the row comes from the new schema: nothing to
    -- project back, no NOTICE); any other write is marked 'forward' for the rest of the
    -- transaction, and the reverse triggers skip what a trigger writes under that mark (their
    -- WHEN clause, sql/013/trigger_weeks_reverse_sync.sql). Phases 0 and 1 never set 'reverse'.
    IF pg_catalog.set_config('habit_tracker_db.syncing',
                             CASE WHEN pg_catalog.current_setting('habit_tracker_db.syncing', true) = 'reverse'
                                  THEN 'reverse' ELSE 'forward' END, true) = 'reverse' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    RAISE NOTICE 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, r.id;
    RAISE NOTICE 'Trigger details: child_name=%, week_start_date=%',
        r.child_name, to_char(r.week_start_date, 'YYYY-MM-DD');

    -- Malformed input is an expected case: checked first, without a subtransaction. The
    -- test is habit_tracker_row_error()'s, inlined as dual_write_diff inlines it (one
    -- expression here instead of a SECURITY DEFINER call with its own query per write); the
    -- helper runs only for a row the test rejects, for its message, and has the last word
    -- (tests/db/test_malformed.py checks that the trigger, the helper and drift agree).
    IF TG_OP <> 'DELETE' AND NOT (
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
            INSERT INTO public.dual_write_errors (tracker_id, operation, error) VALUES (r.id, TG_OP, v_problem);
            RAISE WARNING 'dual-write: habit_tracker id=% not synced (%): %', r.id, TG_OP, v_problem;
            RETURN NULL;
        END IF;
    END IF;

    -- Anything else that fails is rolled back to here and logged, never raised to the app.
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM public.weeks AS w WHERE w.legacy_id = r.id;
            RETURN NULL;
        END IF;

        IF TG_OP = 'UPDATE' AND OLD.id <> NEW.id THEN
            UPDATE public.weeks AS w SET legacy_id = NEW.id WHERE w.legacy_id = OLD.id;
        END IF;

        -- The week this row already mirrors, with its child (one index lookup each).
        SELECT w.id, w.week_start_date, w.week_period, c.user_id, c.name
        INTO v_week, v_week_date, v_week_period, v_child_user, v_child_name
        FROM public.weeks AS w
        JOIN public.children AS c ON c.id = w.child_id
        WHERE w.legacy_id = r.id;

        IF v_week IS NOT NULL AND v_child_user = r.user_id AND v_child_name = r.child_name
           AND v_week_date = r.week_start_date THEN
            -- Same child, same week: only the period may have changed.
            IF v_week_period IS DISTINCT FROM r.week_period THEN
                UPDATE public.weeks AS w SET week_period = r.week_period, updated_at = now() WHERE w.id = v_week;
            END IF;
        ELSE
            -- New row, renamed child or moved week: find or create the child first.
            SELECT c.id INTO v_child FROM public.children AS c
            WHERE c.user_id = r.user_id AND c.name = r.child_name;
            IF v_child IS NULL THEN
                INSERT INTO public.children AS c (user_id, name) VALUES (r.user_id, r.child_name)
                ON CONFLICT (user_id, name) DO NOTHING
                RETURNING c.id INTO v_child;
                IF v_child IS NULL THEN
                    -- A concurrent writer created it and has committed: this statement sees it.
                    SELECT c.id INTO v_child FROM public.children AS c
                    WHERE c.user_id = r.user_id AND c.name = r.child_name;
                END IF;
            END IF;

            IF v_week IS NULL THEN
                -- Not mirrored yet (new row, or written in Phase 0): upsert by (child, date),
                -- adopting a week written only through the new path.
                INSERT INTO public.weeks AS w (child_id, week_start_date, week_period, legacy_id)
                VALUES (v_child, r.week_start_date, r.week_period, r.id)
                ON CONFLICT (child_id, week_start_date) DO UPDATE
                    SET legacy_id = EXCLUDED.legacy_id, week_period = EXCLUDED.week_period, updated_at = now()
                RETURNING w.id INTO v_week;
            ELSE
                SELECT w.id INTO v_occupant FROM public.weeks AS w
                WHERE w.child_id = v_child AND w.week_start_date = r.week_start_date;
                IF v_occupant IS NULL THEN
                    -- Move the week (keeps its id, habits and records).
                    UPDATE public.weeks AS w
                    SET child_id = v_child, week_start_date = r.week_start_date,
                        week_period = r.week_period, updated_at = now()
                    WHERE w.id = v_week;
                ELSE
                    -- The target slot already has a week (new-path only, or stale): adopt it,
                    -- as INSERT would, and drop the one left behind at the old slot.
                    DELETE FROM public.weeks AS w WHERE w.id = v_week;
                    UPDATE public.weeks AS w
                    SET legacy_id = r.id, week_period = r.week_period, updated_at = now()
                    WHERE w.id = v_occupant;
                    v_week := v_occupant;
                END IF;
            END IF;
        END IF;

        -- Habits by position: drop the tail (their records cascade), then one upsert that
        -- inserts new positions and renames changed ones. Two DML nodes per write instead of
        -- a diff of three (bench/NOTES.md: the per-row cost is mostly statements and DML nodes
        -- set up). An unchanged habit is filtered out before ON CONFLICT, which would lock it
        -- (a heap write per unchanged row; bench/NOTES.md has what that cost). The filter is
        -- a scalar subquery, one index probe per element: a NOT EXISTS would be planned as
        -- an anti-join, and a session whose generic plan was made while the new schema was
        -- still small (the flip, before the backfill) then read all of it on every write
        -- (bench: a writer's p99 of seconds during the backfill). Only writers of this same
        -- habit_tracker row, already serialised by its row lock, ever write these rows.
        WITH dropped AS (
            DELETE FROM public.habits AS h
            WHERE h.week_id = v_week AND h.position >= jsonb_array_length(r.habits)
        )
        INSERT INTO public.habits AS h (week_id, name, position)
        SELECT v_week, e.elem ->> 'name', (e.ord - 1)::integer
        FROM jsonb_array_elements(r.habits) WITH ORDINALITY AS e (elem, ord)
        WHERE (SELECT o.name FROM public.habits AS o
               WHERE o.week_id = v_week AND o.position = (e.ord - 1)::integer) IS DISTINCT FROM e.elem ->> 'name'
        ON CONFLICT (week_id, position) DO UPDATE SET name = EXCLUDED.name;

        -- Records by (habit, date): drop days now empty (or outside the week), upsert the
        -- days that are new or changed; unchanged days are neither written nor locked.
        WITH cleared AS (
            DELETE FROM public.habit_records AS rec
            USING public.habits AS h
            WHERE h.week_id = v_week AND rec.habit_id = h.id
              AND coalesce(CASE WHEN rec.record_date - r.week_start_date BETWEEN 0 AND 6
                                THEN r.habits -> h.position -> 'times' ->> (rec.record_date - r.week_start_date) END,
                           '') = ''
        )
        INSERT INTO public.habit_records AS rec (habit_id, record_date, status)
        SELECT h.id, r.week_start_date + d.i, r.habits -> h.position -> 'times' ->> d.i
        FROM public.habits AS h
        CROSS JOIN generate_series(0, 6) AS d (i)
        WHERE h.week_id = v_week AND r.habits -> h.position -> 'times' ->> d.i <> ''
          AND (SELECT o.status FROM public.habit_records AS o
               WHERE o.habit_id = h.id AND o.record_date = r.week_start_date + d.i)
              IS DISTINCT FROM r.habits -> h.position -> 'times' ->> d.i
        ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status;
    EXCEPTION WHEN OTHERS THEN
        -- OTHERS excludes query_canceled: a statement_timeout still cancels the app's write.
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_problem = MESSAGE_TEXT;
        INSERT INTO public.dual_write_errors (tracker_id, operation, error)
        VALUES (r.id, TG_OP, v_problem || ' (SQLSTATE ' || v_state || ')');
        RAISE WARNING 'dual-write: habit_tracker id=% not synced (%): % (SQLSTATE %)', r.id, TG_OP, v_problem, v_state;
    END;
    RETURN NULL;
END;
$$;
