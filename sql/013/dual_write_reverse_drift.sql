-- Phase 2 and 3 (issue 18): one row saying how far habit_tracker is from the new schema, the
-- reverse of dual_write_drift(), with the same columns, counted per week:
--   source_rows  weeks
--   synced       weeks whose habit_tracker row is exactly the week
--   missing      weeks with no habit_tracker row (legacy_id NULL, or its row is gone)
--   mismatched   weeks whose habit_tracker row differs (or that cannot be a sheet: malformed)
--   orphaned     habit_tracker rows no week mirrors
--   errors       missing or mismatched weeks with a row in dual_write_errors for their sheet
--                (a week that never had a sheet is recorded under tracker_id 0 and not matched)
--   drift_pct    (missing + mismatched + orphaned) / greatest(source_rows, 1) * 100
-- "Exactly" is dual_write_diff()'s comparison, which is symmetric: a sheet and a week agree
-- when each is the other's projection, so both directions read one diff and agree on it.
-- STABLE: the counts and the diff read one snapshot, so the numbers add up.
CREATE OR REPLACE FUNCTION public.dual_write_reverse_drift()
RETURNS TABLE (
    source_rows bigint,
    synced bigint,
    missing bigint,
    mismatched bigint,
    orphaned bigint,
    errors bigint,
    drift_pct numeric
)
LANGUAGE sql
STABLE
-- SECURITY INVOKER, like dual_write_drift(): its callers (the owner, service_role for
-- monitoring) read these tables themselves; definer rights would only lend them to others.
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
SET work_mem = '64MB' -- for the diff it calls (see dual_write_diff)
SET jit = off
AS $$
WITH diff AS (
    -- dual_write_diff's states, turned around: its 'missing' (a sheet without a week) is an
    -- orphaned sheet here, its 'orphaned' (a week whose sheet is gone) a missing one.
    SELECT CASE d.state WHEN 'missing' THEN 'orphaned' WHEN 'orphaned' THEN 'missing' ELSE d.state END AS state,
           d.state <> 'missing' AND d.legacy_id IN (SELECT e.tracker_id FROM public.dual_write_errors AS e) AS has_error
    FROM public.dual_write_diff() AS d
),
counts AS (
    SELECT (SELECT count(*) FROM public.weeks) AS source_rows,
           (SELECT count(*) FROM public.weeks AS w WHERE w.legacy_id IS NULL)
               + count(*) FILTER (WHERE diff.state = 'missing') AS missing,
           count(*) FILTER (WHERE diff.state = 'mismatched') AS mismatched,
           count(*) FILTER (WHERE diff.state = 'orphaned') AS orphaned,
           count(*) FILTER (WHERE diff.has_error) AS errors
    FROM diff
)
SELECT counts.source_rows,
       counts.source_rows - counts.missing - counts.mismatched,
       counts.missing,
       counts.mismatched,
       counts.orphaned,
       counts.errors,
       -- As dual_write_drift(): any drift at all never rounds to 0.
       CASE WHEN counts.missing + counts.mismatched + counts.orphaned = 0 THEN 0::numeric
            ELSE greatest(round((counts.missing + counts.mismatched + counts.orphaned)::numeric
                                / greatest(counts.source_rows, 1) * 100, 6), 0.000001)
       END
FROM counts
$$;
