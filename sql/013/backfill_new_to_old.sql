-- Phase 2 and up (issue 18): the reverse catch-up. Rebuilds the habit_tracker rows of the next
-- batch of weeks (id > after_week, in id order, at most batch_size; after_week NULL: from the
-- first) with habit_tracker_from_week(), and returns the last week id it covered, or NULL when
-- no week is left. The caller commits after each call, so every batch is a short transaction
-- and a killed run resumes from the last id it printed.
--   Stepping back from retirement: weeks written while habit_tracker was archived (new ones
--   get a sheet, changed ones are rewritten) and, on the last call, sheets whose week was
--   deleted meanwhile.
--   Reverse drift (dual_write_reverse_drift()): the same, for weeks the reverse sync missed.
-- Idempotent: habit_tracker_from_week writes only a row that differs, so running it again over
-- synced weeks writes nothing. A malformed week is recorded in dual_write_errors and skipped.
--
-- The last call (no week left) deletes habit_tracker rows that no week mirrors, but only those
-- the forward sync could have projected (habit_tracker_row_error() is NULL) and that have no
-- failure recorded in dual_write_errors: a sheet that was never projected because it is
-- malformed, or because its projection failed, is an old client's data and stays. Run it where
-- the forward sync has nothing pending (the gates of Phases 3 and retired require forward drift
-- 0): a well-formed sheet no week mirrors is then one whose week the new app deleted. While the
-- guide's trigger is disabled (rollback option 1) the last call deletes nothing, with a WARNING.
--
-- Safe while the apps write: each week's sheet is locked before its week is read
-- (habit_tracker_from_week), so a concurrent writer of that sheet either committed before (and
-- is read) or waits for this batch (and its commit is the later one).
CREATE OR REPLACE FUNCTION public.backfill_new_to_old(after_week uuid, batch_size integer)
RETURNS uuid
LANGUAGE plpgsql
-- SECURITY INVOKER: only the deploy role runs it, and it owns the tables; definer rights would
-- only lend them to whoever else got EXECUTE.
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
AS $$
DECLARE
    v_caller text := coalesce(pg_catalog.current_setting('habit_tracker_db.syncing', true), '');
    v_week uuid;
    v_last uuid;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'backfill_new_to_old: batch_size must be a positive number of weeks, got %', batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_week IN
        SELECT w.id FROM public.weeks AS w
        WHERE after_week IS NULL OR w.id > after_week
        ORDER BY w.id
        LIMIT batch_size
    LOOP
        PERFORM public.habit_tracker_from_week(v_week);
        v_last := v_week;
    END LOOP;
    IF v_last IS NOT NULL THEN
        RETURN v_last;
    END IF;

    IF EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
               WHERE t.tgrelid = 'public.habit_tracker'::regclass
                 AND t.tgname = 'trigger_habit_tracker_dual_write' AND t.tgenabled = 'D') THEN
        -- The guide's rollback option 1 is in force: old clients' sheets written meanwhile are
        -- unmirrored and well-formed too, so none of them can be told from a deleted week's.
        RAISE WARNING 'backfill_new_to_old: no habit_tracker row deleted: trigger_habit_tracker_dual_write is '
            'disabled, so a sheet without a week may be an old client''s unsynced write. Enable it and run the '
            'forward backfill first.';
        RETURN NULL;
    END IF;
    -- The deletes are the reverse sync's: not projected forward, not counted as an old client's.
    PERFORM pg_catalog.set_config('habit_tracker_db.syncing', 'reverse', true);
    DELETE FROM public.habit_tracker AS h
    WHERE NOT EXISTS (SELECT FROM public.weeks AS w WHERE w.legacy_id = h.id)
      AND public.habit_tracker_row_error(h.habits, h.week_start_date) IS NULL
      AND NOT EXISTS (SELECT FROM public.dual_write_errors AS e WHERE e.tracker_id = h.id);
    PERFORM pg_catalog.set_config('habit_tracker_db.syncing', v_caller, true);
    RETURN NULL;
END;
$$;
