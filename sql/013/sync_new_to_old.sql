-- Phase 2 (issue 18): the reverse sync. Every write of the new app release to children / weeks /
-- habits / habit_records is copied into habit_tracker, in the writer's own transaction, so old
-- app versions keep reading (and writing) their sheets.
--
-- Two triggers per table call this function:
--   BEFORE ROW (trigger_<table>_reverse_lock): before the row changes, lock the habit_tracker
--     row of every sheet the change touches (FOR UPDATE) and queue its week for the commit.
--     The lock order is then the old client's: the sheet's habit_tracker row first, the new
--     schema's rows after. An old client holds its habit_tracker row before its forward sync
--     touches the new rows, so a new client that locked them first and waited for the
--     habit_tracker row at commit would deadlock with it; locked up front, one of the two simply
--     waits for the other, and the later commit wins in both copies.
--     A new week gets its habit_tracker row here (and its legacy_id), for the same reason: an
--     old client creating the same sheet at the same moment meets the row, not a deadlock.
--     Deleting a week or a child deletes its sheets here, at once (nothing is left to rebuild).
--   AFTER ROW, DEFERRABLE INITIALLY DEFERRED (trigger_<table>_reverse_sync): at commit, the
--     first of them rebuilds each queued week once (habit_tracker_from_week) and empties the
--     queue; the others find it empty. So a transaction that ticks seven days of one sheet in
--     seven statements rebuilds that sheet once, not seven times.
-- The queue is the transaction-local setting habit_tracker_db.reverse_queue (week ids, comma
-- separated): nothing is written for it, and a rolled-back savepoint takes its part back.
--
-- No write loops: both triggers skip, by their WHEN clause (no call at all), a write made
-- under habit_tracker_db.syncing = 'reverse' (this sync writing weeks.legacy_id) or made by a
-- trigger under 'forward' (the forward sync projecting an old client's write). The forward
-- sync marks 'forward' and leaves it set to the end of the transaction; pg_trigger_depth() > 0
-- tells its writes (made inside its trigger) from a new client's statement in the same
-- transaction (depth 0), which is still copied.
--
-- Malformed or failing input never fails the writer: each step records the problem in
-- dual_write_errors (error text 'new -> old: ...', tracker_id = the sheet's habit_tracker id,
-- 0 when it has none yet) with a WARNING, and dual_write_reverse_drift() counts the week.
--
-- SECURITY DEFINER: the new client writes as authenticated, which must not need any privilege
-- on habit_tracker (in Phase 3 it has none that matter); this writes it as the owner.
-- habit_tracker_db.syncing = 'reverse' around its own writes to habit_tracker (set_config, put
-- back after them), so they are not projected forward again nor counted as an old client's.
CREATE OR REPLACE FUNCTION public.sync_new_to_old()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    v_queue text := coalesce(pg_catalog.current_setting('habit_tracker_db.reverse_queue', true), '');
    v_caller text := coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '');
    v_weeks uuid[];
    v_week uuid;
    v_new_legacy bigint;
    v_legacy bigint;
    v_old jsonb;
    v_new jsonb;
    v_user uuid;
    v_child text;
    v_problem text;
    v_state text;
BEGIN
    IF TG_WHEN = 'AFTER' THEN
        -- At commit: rebuild every queued week once. Emptied first, so a rebuild that writes
        -- the new schema (weeks.legacy_id) cannot queue anything (and is skipped anyway).
        IF v_queue = '' THEN
            RETURN NULL;
        END IF;
        PERFORM pg_catalog.set_config('habit_tracker_db.reverse_queue', '', true);
        FOR v_week IN SELECT DISTINCT q.id::uuid FROM unnest(string_to_array(v_queue, ',')) AS q (id) LOOP
            PERFORM public.habit_tracker_from_week(v_week);
        END LOOP;
        RETURN NULL;
    END IF;

    BEGIN
        PERFORM pg_catalog.set_config('habit_tracker_db.syncing', 'reverse', true);
        -- One function serves four tables: their rows are read as jsonb (NULL where the event has
        -- no OLD or NEW), so each field is looked up by name and plpgsql_check can type it.
        v_old := to_jsonb(OLD);
        v_new := to_jsonb(NEW);
        -- The weeks this row change touches (its old and its new week when it moves).
        IF TG_TABLE_NAME = 'habit_records' THEN
            SELECT array_agg(hb.week_id) INTO v_weeks FROM public.habits AS hb
            WHERE hb.id = (v_old ->> 'habit_id')::uuid OR hb.id = (v_new ->> 'habit_id')::uuid;
        ELSIF TG_TABLE_NAME = 'habits' THEN
            v_weeks := ARRAY[(v_old ->> 'week_id')::uuid, (v_new ->> 'week_id')::uuid];
        ELSIF TG_TABLE_NAME = 'weeks' THEN
            IF TG_OP = 'DELETE' THEN
                v_legacy := (v_old ->> 'legacy_id')::bigint;
                DELETE FROM public.habit_tracker AS h WHERE h.id = v_legacy;
            ELSIF TG_OP = 'INSERT' AND v_new ->> 'legacy_id' IS NULL
                  AND EXTRACT(ISODOW FROM (v_new ->> 'week_start_date')::date) = 1 THEN
                -- The sheet's row now, filled at commit; an unmirrored row in its slot is adopted.
                SELECT c.user_id, c.name INTO v_user, v_child FROM public.children AS c
                WHERE c.id = (v_new ->> 'child_id')::uuid;
                INSERT INTO public.habit_tracker AS h (user_id, child_name, week_start_date, week_period)
                VALUES (v_user, v_child, (v_new ->> 'week_start_date')::date, v_new ->> 'week_period')
                ON CONFLICT (user_id, child_name, week_start_date) DO UPDATE SET updated_at = now()
                    WHERE NOT EXISTS (SELECT FROM public.weeks AS o WHERE o.legacy_id = h.id)
                RETURNING h.id INTO v_new_legacy;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                v_weeks := ARRAY[(v_new ->> 'id')::uuid];
            END IF;
        ELSIF TG_OP = 'DELETE' THEN -- children: every sheet of the child goes
            DELETE FROM public.habit_tracker AS h
            USING public.weeks AS w
            WHERE w.child_id = (v_old ->> 'id')::uuid AND h.id = w.legacy_id;
        ELSIF (v_old -> 'user_id', v_old -> 'name') IS DISTINCT FROM (v_new -> 'user_id', v_new -> 'name') THEN
            -- children: renamed, or moved to another user
            SELECT array_agg(w.id) INTO v_weeks FROM public.weeks AS w WHERE w.child_id = (v_new ->> 'id')::uuid;
        END IF;

        -- Lock each sheet's row the first time this transaction touches it, then queue its week.
        FOR v_week IN SELECT DISTINCT u.id FROM unnest(v_weeks) AS u (id) WHERE u.id IS NOT NULL LOOP
            CONTINUE WHEN strpos(v_queue, v_week::text) > 0;
            PERFORM FROM public.habit_tracker AS h
            JOIN public.weeks AS w ON w.legacy_id = h.id
            WHERE w.id = v_week
            FOR UPDATE OF h;
            v_queue := CASE WHEN v_queue = '' THEN '' ELSE v_queue || ',' END || v_week::text;
        END LOOP;
        PERFORM pg_catalog.set_config('habit_tracker_db.reverse_queue', v_queue, true);
        PERFORM pg_catalog.set_config('habit_tracker_db.syncing', v_caller, true);
    EXCEPTION WHEN OTHERS THEN
        -- OTHERS excludes query_canceled: a statement_timeout still cancels the writer.
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_problem = MESSAGE_TEXT;
        INSERT INTO public.dual_write_errors (tracker_id, operation, error)
        VALUES (coalesce(v_legacy, 0), TG_OP,
                'new -> old: ' || TG_OP || ' on ' || TG_TABLE_NAME || ' not copied to habit_tracker: ' || v_problem
                || ' (SQLSTATE ' || v_state || ')');
        RAISE WARNING 'reverse sync: % on % not copied to habit_tracker: % (SQLSTATE %)',
            TG_OP, TG_TABLE_NAME, v_problem, v_state;
        v_new_legacy := NULL;
    END;

    IF v_new_legacy IS NOT NULL THEN -- a new week: it mirrors the sheet created above
        NEW := jsonb_populate_record(NEW, jsonb_build_object('legacy_id', v_new_legacy));
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
