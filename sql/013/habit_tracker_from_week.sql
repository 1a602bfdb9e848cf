-- Phase 2 (issue 18): rebuild the habit_tracker row of one week (sheet) from the new schema,
-- the reverse of the Phase 1 projection. Returns what it did:
--   'inserted'   the week had no habit_tracker row: one is inserted (or, when the sheet's slot
--                (user_id, child_name, week_start_date) holds a row no week mirrors, that row
--                is adopted) and weeks.legacy_id is set to it
--   'updated'    the row differed and was rewritten; 'unchanged' it did not: nothing written
--   'malformed'  the week cannot be a sheet (not a Monday, habit positions not 0..n-1, a
--                record outside the week): nothing written, one dual_write_errors row
--   'failed'     anything else went wrong: nothing written, one dual_write_errors row
--   'absent'     no such week (deleted): nothing to do (sync_new_to_old deletes the sheet)
-- Malformed or failed, it never raises: the writer whose commit runs it is never failed by it.
--
-- Mapping, the inverse of sync_old_to_new's: child user_id and name, week_start_date and
-- week_period as they are; habits[position] = {"name": name, "times": 7 statuses Monday..Sunday,
-- "" for a day without a record}. Keys an old client keeps beside "name" and "times" in an
-- element are kept (the element at the same position is merged), so a new client's tick never
-- drops what an old client stored; the forward projection ignores them, so drift does too.
--
-- Locking: the sheet's habit_tracker row is locked (FOR UPDATE) before the new schema is read,
-- so a writer that changes this sheet in the meantime is either already committed (and read
-- here) or waits for this transaction (and then wins as the later commit). The reverse sync's
-- BEFORE triggers have taken that lock already; the reverse backfill takes it here.
--
-- habit_tracker_db.syncing = 'reverse' while it writes: its writes, and the triggers they fire,
-- run under that mark, so the forward sync does not project the row back, the old-client record
-- does not count it and the Phase 3 read-only trigger lets it through; the caller's value is put
-- back before it returns (an error rolls the setting back with the rest). set_config, not a SET
-- clause: PostgreSQL 15 lets only a superuser put a custom setting in a function's SET clause.
CREATE OR REPLACE FUNCTION public.habit_tracker_from_week(week_id uuid)
RETURNS text
LANGUAGE plpgsql
-- SECURITY INVOKER: its callers already run as the owner (the SECURITY DEFINER trigger function
-- sync_new_to_old, the deploy role's backfill_new_to_old); no API role gets EXECUTE.
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
AS $$
DECLARE
    v_caller text := coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '');
    v_result text;
    v_legacy bigint;
    v_id bigint;
    v_user uuid;
    v_child text;
    v_date date;
    v_period text;
    v_old jsonb;
    v_habits jsonb;
    v_problem text;
    v_state text;
    v_written integer;
BEGIN
    PERFORM pg_catalog.set_config('habit_tracker_db.syncing', 'reverse', true);
    <<work>>
    BEGIN
        SELECT w.legacy_id INTO v_legacy FROM public.weeks AS w WHERE w.id = week_id;
        IF NOT FOUND THEN
            v_result := 'absent';
            EXIT work;
        END IF;
        IF v_legacy IS NOT NULL THEN
            SELECT h.habits INTO v_old FROM public.habit_tracker AS h WHERE h.id = v_legacy FOR UPDATE;
            IF NOT FOUND THEN
                v_legacy := NULL; -- its row is gone: the sheet is inserted again below
            END IF;
        END IF;

        -- Read after the lock: the week as the last committed writer of this sheet left it.
        SELECT c.user_id, c.name, w.week_start_date, w.week_period
        INTO v_user, v_child, v_date, v_period
        FROM public.weeks AS w
        JOIN public.children AS c ON c.id = w.child_id
        WHERE w.id = week_id;
        IF NOT FOUND THEN
            v_result := 'absent';
            EXIT work;
        END IF;

        -- Malformed: what the old table's sheet cannot hold. Checked before anything is written.
        IF EXTRACT(ISODOW FROM v_date) <> 1 THEN
            v_problem := 'week_start_date ' || to_char(v_date, 'YYYY-MM-DD') || ' is not a Monday';
        ELSE
            SELECT 'habit positions are ' || string_agg(hb.position::text, ', ' ORDER BY hb.position)
                   || ', not 0..' || (count(*) - 1) || ' (a gap or a negative position)'
            INTO v_problem
            FROM public.habits AS hb
            WHERE hb.week_id = habit_tracker_from_week.week_id
            HAVING min(hb.position) <> 0 OR max(hb.position) <> count(*) - 1;
            IF v_problem IS NULL THEN
                SELECT 'habit ' || hb.position || ' ("' || left(hb.name, 100) || '") has a record on '
                       || to_char(rec.record_date, 'YYYY-MM-DD') || ', outside the week '
                       || to_char(v_date, 'YYYY-MM-DD') || '..' || to_char(v_date + 6, 'YYYY-MM-DD')
                INTO v_problem
                FROM public.habits AS hb
                JOIN public.habit_records AS rec ON rec.habit_id = hb.id
                WHERE hb.week_id = habit_tracker_from_week.week_id
                  AND rec.record_date - v_date NOT BETWEEN 0 AND 6
                ORDER BY hb.position, rec.record_date
                LIMIT 1;
            END IF;
        END IF;
        IF v_problem IS NOT NULL THEN
            INSERT INTO public.dual_write_errors (tracker_id, operation, error)
            VALUES (coalesce(v_legacy, 0), CASE WHEN v_legacy IS NULL THEN 'INSERT' ELSE 'UPDATE' END,
                    'new -> old: week ' || week_id || ' not copied to habit_tracker: ' || v_problem);
            RAISE WARNING 'reverse sync: week % not copied to habit_tracker id=% (%)', week_id, v_legacy, v_problem;
            v_result := 'malformed';
            EXIT work;
        END IF;

        SELECT coalesce(jsonb_agg(
                   CASE WHEN jsonb_typeof(v_old -> hb.position) = 'object' THEN v_old -> hb.position ELSE '{}'::jsonb END
                   || jsonb_build_object('name', hb.name, 'times', (
                          SELECT jsonb_agg(coalesce(rec.status, '') ORDER BY d.i)
                          FROM generate_series(0, 6) AS d (i)
                          LEFT JOIN public.habit_records AS rec
                              ON rec.habit_id = hb.id AND rec.record_date = v_date + d.i))
                   ORDER BY hb.position), '[]'::jsonb)
        INTO v_habits
        FROM public.habits AS hb
        WHERE hb.week_id = habit_tracker_from_week.week_id;

        BEGIN
            IF v_legacy IS NOT NULL THEN
                UPDATE public.habit_tracker AS h
                SET user_id = v_user, child_name = v_child, week_start_date = v_date, week_period = v_period,
                    habits = v_habits, updated_at = now()
                WHERE h.id = v_legacy
                  AND (h.user_id, h.child_name, h.week_start_date, h.week_period, h.habits)
                      IS DISTINCT FROM (v_user, v_child, v_date, v_period, v_habits);
                GET DIAGNOSTICS v_written = ROW_COUNT;
                v_result := CASE WHEN v_written = 0 THEN 'unchanged' ELSE 'updated' END;
                EXIT work;
            END IF;

            -- A slot held by a row no week mirrors (malformed when written, or left when its week
            -- was deleted while nothing synced) is adopted: the new schema is the newer write.
            INSERT INTO public.habit_tracker AS h (user_id, child_name, week_start_date, week_period, habits)
            VALUES (v_user, v_child, v_date, v_period, v_habits)
            ON CONFLICT (user_id, child_name, week_start_date) DO UPDATE
                SET week_period = EXCLUDED.week_period, habits = EXCLUDED.habits, updated_at = now()
                WHERE NOT EXISTS (SELECT FROM public.weeks AS o WHERE o.legacy_id = h.id)
            RETURNING h.id INTO v_id;
            IF v_id IS NULL THEN
                RAISE EXCEPTION 'habit_tracker already has the sheet (user_id %, child_name %, week_start_date %) '
                    'for another week', v_user, v_child, v_date;
            END IF;
            UPDATE public.weeks AS w SET legacy_id = v_id WHERE w.id = week_id;
            v_result := 'inserted';
            EXIT work;
        EXCEPTION WHEN OTHERS THEN
            -- OTHERS excludes query_canceled: a statement_timeout still cancels the writer.
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_problem = MESSAGE_TEXT;
            INSERT INTO public.dual_write_errors (tracker_id, operation, error)
            VALUES (coalesce(v_legacy, 0), CASE WHEN v_legacy IS NULL THEN 'INSERT' ELSE 'UPDATE' END,
                    'new -> old: week ' || week_id || ' not copied to habit_tracker: ' || v_problem
                    || ' (SQLSTATE ' || v_state || ')');
            RAISE WARNING 'reverse sync: week % not copied to habit_tracker id=%: % (SQLSTATE %)',
                week_id, v_legacy, v_problem, v_state;
            v_result := 'failed';
            EXIT work;
        END;
    END;
    PERFORM pg_catalog.set_config('habit_tracker_db.syncing', v_caller, true);
    RETURN v_result;
END;
$$;
