-- Phase 1: every write to habit_tracker is mirrored into children / weeks / habits /
-- habit_records, in the app's own transaction, once per statement.
--
-- Wait for writers already running: a session that started its write before the sync existed
-- could otherwise commit an unsynced row after the backfill that follows the step to Phase 1
-- has passed it. SHARE ROW EXCLUSIVE waits for in-flight writes and blocks new ones only
-- until this transaction commits (bounded by the deploy's lock_timeout). The step to Phase 1
-- creates this function, then its three triggers (delete, update, insert: dualwrite/catalog.py
-- says why that order), each CREATE TRIGGER waiting for in-flight writes the same way; the
-- backfill starts after the last of them.
LOCK TABLE public.habit_tracker IN SHARE ROW EXCLUSIVE MODE;

-- Three statement-level AFTER triggers run this function, one per event, because a trigger
-- with transition tables may have only one (trigger_habit_tracker_dual_write_insert,
-- _update, _delete); they see every row the statement wrote at once. The guide's row
-- trigger, trigger_habit_tracker_dual_write, still fires for every row and raises its two
-- messages (sync_old_to_new()), and it stays the switch: the guide's emergency SQL,
-- `ALTER TABLE habit_tracker DISABLE TRIGGER trigger_habit_tracker_dual_write` or
-- `DROP TRIGGER ... trigger_habit_tracker_dual_write`, pasted as it is, stops every sync,
-- because this function syncs nothing unless that trigger is there and enabled (one catalog
-- lookup per statement).
--
-- Mapping (issue 4):
--   INSERT  upsert the child by (user_id, child_name), upsert the week by (child,
--           week_start_date) with legacy_id = id, one habit per array element (position =
--           index), one record per non-empty day (record_date = week_start_date + day).
--   UPDATE  afterwards the week with legacy_id = id is exactly the projection of the new
--           row: renamed child and moved week move that week; habits are diffed by
--           position and records by date, so an edit of one day writes one row.
--   DELETE  delete the week with legacy_id = id (habits and records cascade); keep the child.
-- A statement of one row is synced by sync_one_habit_tracker_row(), one of more rows by
-- sync_habit_tracker_rows(), for the whole set at once (bench/NOTES.md: each is the faster
-- one for its size; tests/db/test_bulk_sync.py: both give the same weeks).
--
-- Malformed rows (see habit_tracker_row_error) and any unexpected error never fail the
-- app's write: the row stays as the app wrote it, the failure goes to dual_write_errors
-- and to a WARNING, dual_write_drift() counts the row as missing or mismatched, and the
-- statement's other rows are synced.
--
-- Concurrency: writers of the same habit_tracker row are serialised by its row lock (held
-- to the end of the transaction, so past this statement-level trigger) and writers of the
-- same (user, child, week) by its unique index, so two triggers never project the same
-- week at once. The only shared row is the child: created with ON CONFLICT DO NOTHING and
-- re-read. The backfill takes FOR SHARE locks on the rows it projects, so a trigger and the
-- backfill never interleave on one row (no lost update).
--
-- SECURITY DEFINER: the app writes habit_tracker as anon/authenticated, which need not be
-- able to write the new schema; the sync runs as the migration's owner. The empty
-- search_path and fully qualified names keep a caller's search_path out of that.
CREATE OR REPLACE FUNCTION public.sync_old_to_new_statement()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
-- The only joins below are a transition table's rows against lookups by key.
SET enable_seqscan = off
AS $$
DECLARE
    -- The statement's rows, one array per column (see sync_habit_tracker_rows).
    v_ids bigint[];
    v_user_ids uuid[];
    v_child_names text[];
    v_week_start_dates date[];
    v_week_periods text[];
    v_habits jsonb[];
    v_previous_ids bigint[];
    v_previous_habits jsonb[];
    v_malformed bigint[] := '{}'::bigint[];
    -- The statement's row count (at most 2 read) and its first row, before and after.
    v_first record;
    v_syncing text := current_setting('habit_tracker_db.syncing', true);
    r record;
BEGIN
    -- Phase 2's reverse sync wrote these rows from the new schema: nothing to project back.
    IF v_syncing = 'reverse' THEN
        RETURN NULL;
    END IF;
    -- One query for how many rows (0, 1 or more) and the first one: each statement a trigger
    -- runs has a fixed cost (executor start-up), and most app writes are one row.
    IF TG_OP = 'DELETE' THEN
        SELECT count(*) AS n_rows, NULL::public.habit_tracker AS new_row, (array_agg(o.o))[1] AS old_row INTO v_first
        FROM (SELECT ROW(o.*)::public.habit_tracker AS o FROM old_rows AS o LIMIT 2) AS o;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT count(*) AS n_rows, (array_agg(n.n))[1] AS new_row, NULL::public.habit_tracker AS old_row INTO v_first
        FROM (SELECT ROW(n.*)::public.habit_tracker AS n FROM new_rows AS n LIMIT 2) AS n;
    ELSE
        -- The two transition tables list an UPDATE's rows in the same order.
        SELECT count(*) AS n_rows, (array_agg(n.n))[1] AS new_row,
               (SELECT ROW(o.*)::public.habit_tracker FROM old_rows AS o LIMIT 1) AS old_row INTO v_first
        FROM (SELECT ROW(n.*)::public.habit_tracker AS n FROM new_rows AS n LIMIT 2) AS n;
    END IF;
    -- No row: nothing to sync (an INSERT ... ON CONFLICT DO UPDATE fires both the INSERT and
    -- the UPDATE statement triggers, and one of them usually has no row).
    IF v_first.n_rows = 0 THEN
        RETURN NULL;
    END IF;
    -- The guide's switch: its row trigger disabled or dropped means no sync at all.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                   WHERE t.tgrelid = TG_RELID AND t.tgname = 'trigger_habit_tracker_dual_write'
                     AND t.tgenabled <> 'D') THEN
        RETURN NULL;
    END IF;

    -- One row (most app writes): the per-row body, cheaper for one row than the set-based
    -- statements (sync_one_habit_tracker_row.sql says how much). What either sync writes to
    -- the new schema is not an app write there: Phase 2's reverse sync skips it.
    IF v_first.n_rows = 1 THEN
        PERFORM set_config('habit_tracker_db.syncing', 'forward', true);
        PERFORM public.sync_one_habit_tracker_row(TG_OP, v_first.new_row, v_first.old_row);
        PERFORM set_config('habit_tracker_db.syncing', coalesce(v_syncing, ''), true);
        RETURN NULL;
    END IF;

    IF TG_OP = 'DELETE' THEN
        SELECT array_agg(o.id) INTO v_ids FROM old_rows AS o;
    ELSE
        -- Malformed input is an expected case: found without a subtransaction, by
        -- habit_tracker_row_error()'s test inlined (as dual_write_diff inlines it); the
        -- helper runs only for a row the test rejects, for its message, and has the last
        -- word (tests/db/test_malformed.py checks that the trigger, the helper and drift agree).
        FOR r IN
            SELECT n.id, n.ordinal, public.habit_tracker_row_error(n.habits, n.week_start_date) AS problem
            FROM (SELECT m.id, m.habits, m.week_start_date, row_number() OVER () AS ordinal FROM new_rows AS m) AS n
            WHERE NOT (
                jsonb_typeof(n.habits) = 'array' AND EXTRACT(ISODOW FROM n.week_start_date) = 1
                AND NOT EXISTS (
                    SELECT FROM jsonb_array_elements(n.habits) AS e (elem)
                    WHERE NOT (coalesce(jsonb_typeof(e.elem -> 'name') = 'string', false)
                               AND CASE WHEN jsonb_typeof(e.elem -> 'times') = 'array'
                                        THEN jsonb_array_length(e.elem -> 'times') = 7
                                             AND (e.elem -> 'times') <@ '["green", "yellow", "red", ""]'::jsonb
                                        ELSE false END)))
        LOOP
            CONTINUE WHEN r.problem IS NULL;
            INSERT INTO public.dual_write_errors (tracker_id, operation, error) VALUES (r.id, TG_OP, r.problem);
            RAISE WARNING 'dual-write: habit_tracker id=% not synced (%): %', r.id, TG_OP, r.problem;
            v_malformed := v_malformed || r.ordinal;
        END LOOP;
        -- The rows to sync and, for UPDATE, the same rows before it, in one order: the two
        -- transition tables list an UPDATE's rows in the same order.
        SELECT array_agg(n.id), array_agg(n.user_id), array_agg(n.child_name), array_agg(n.week_start_date),
               array_agg(n.week_period), array_agg(n.habits)
        INTO v_ids, v_user_ids, v_child_names, v_week_start_dates, v_week_periods, v_habits
        FROM (SELECT m.*, row_number() OVER () AS ordinal FROM new_rows AS m) AS n
        WHERE n.ordinal <> ALL (v_malformed);
        IF TG_OP = 'UPDATE' THEN
            SELECT array_agg(o.id), array_agg(o.habits) INTO v_previous_ids, v_previous_habits
            FROM (SELECT m.id, m.habits, row_number() OVER () AS ordinal FROM old_rows AS m) AS o
            WHERE o.ordinal <> ALL (v_malformed);
        END IF;
    END IF;

    PERFORM set_config('habit_tracker_db.syncing', 'forward', true);
    PERFORM public.sync_habit_tracker_rows(TG_OP, v_ids, v_user_ids, v_child_names, v_week_start_dates, v_week_periods,
                                          v_habits, v_previous_ids, v_previous_habits);
    PERFORM set_config('habit_tracker_db.syncing', coalesce(v_syncing, ''), true);
    RETURN NULL;
END;
$$;
