-- One row saying how far the new schema is from habit_tracker (issue 4):
--   source_rows  rows in habit_tracker
--   synced       rows whose week is exactly their projection
--   missing      rows with no week (legacy_id = id)
--   mismatched   rows whose week differs from their projection (or that cannot be projected)
--   orphaned     weeks whose legacy_id is gone from habit_tracker
--   errors       missing or mismatched rows with a logged failure in dual_write_errors
--                (malformed data, explaining that part of the drift)
--   drift_pct    (missing + mismatched + orphaned) / greatest(source_rows, 1) * 100
-- STABLE: the count and the diff read one snapshot, so the numbers add up.
CREATE OR REPLACE FUNCTION public.dual_write_drift()
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
-- SECURITY INVOKER, like dual_write_diff(), which it calls with its caller's rights.
SECURITY INVOKER
-- Pinned: a caller's search_path never redirects a name (Supabase lint 0011).
SET search_path = ''
SET work_mem = '64MB' -- for the diff it calls (see dual_write_diff)
SET jit = off
AS $$
WITH diff AS (
    SELECT d.legacy_id, d.state,
           -- Uncorrelated IN: one hashed lookup table, not a scan of the log per row.
           d.legacy_id IN (SELECT e.tracker_id FROM public.dual_write_errors AS e) AS has_error
    FROM public.dual_write_diff() AS d
),
counts AS (
    SELECT (SELECT count(*) FROM public.habit_tracker) AS source_rows,
           count(*) FILTER (WHERE diff.state = 'missing') AS missing,
           count(*) FILTER (WHERE diff.state = 'mismatched') AS mismatched,
           count(*) FILTER (WHERE diff.state = 'orphaned') AS orphaned,
           count(*) FILTER (WHERE diff.state <> 'orphaned' AND diff.has_error) AS errors
    FROM diff
)
SELECT counts.source_rows,
       counts.source_rows - counts.missing - counts.mismatched,
       counts.missing,
       counts.mismatched,
       counts.orphaned,
       counts.errors,
       -- Six decimals are plenty for a 0.1 % gate, but any drift at all never rounds to 0.
       CASE WHEN counts.missing + counts.mismatched + counts.orphaned = 0 THEN 0::numeric
            ELSE greatest(round((counts.missing + counts.mismatched + counts.orphaned)::numeric
                                / greatest(counts.source_rows, 1) * 100, 6), 0.000001)
       END
FROM counts
$$;
