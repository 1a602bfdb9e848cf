-- What the promotion gate reads from a stack's database, for a read-only role (issue 16): one
-- row of counts and times, never a row's data.
--   drift columns   dual_write_drift()'s, as its owner sees the tables
--   errors_24h      dual_write_errors rows of the last 24 h, and the latest one's time
--   edge_success_24h  successful idempotency_log rows (the Edge Function's) of the last 24 h
-- SECURITY DEFINER, and why: idempotency_log and dual_write_errors have RLS (error texts quote
-- user data), and an app's tables on Supabase usually do too. A read-only role reads through
-- pg_read_all_data, which does not bypass RLS, and cannot be given BYPASSRLS (PostgreSQL 15:
-- only a superuser grants it), so as invoker it would count 0 errors and 0 drift: a gate that
-- passes by not seeing. As the owner (BYPASSRLS on Supabase) it counts every row. It returns
-- counts and times only, it cannot write (a STABLE SQL function runs no data-changing
-- statement), and only pg_read_all_data (the preview roles) and service_role may EXECUTE it.
CREATE OR REPLACE FUNCTION public.dual_write_gate_evidence()
RETURNS TABLE (
    source_rows bigint,
    synced bigint,
    missing bigint,
    mismatched bigint,
    orphaned bigint,
    errors bigint,
    drift_pct numeric,
    errors_24h bigint,
    errors_latest timestamptz,
    edge_success_24h bigint,
    edge_latest timestamptz
)
LANGUAGE sql
STABLE
SECURITY DEFINER
-- Pinned: a definer function must never resolve a name through its caller's search_path.
SET search_path = ''
AS $$
SELECT d.source_rows, d.synced, d.missing, d.mismatched, d.orphaned, d.errors, d.drift_pct,
       e.n, e.latest, l.n, l.latest
FROM public.dual_write_drift() AS d,
     (SELECT count(*) AS n, max(occurred_at) AS latest FROM public.dual_write_errors
      WHERE occurred_at > now() - interval '24 hours') AS e,
     (SELECT count(*) AS n, max(created_at) AS latest FROM public.idempotency_log
      WHERE status = 'success' AND created_at > now() - interval '24 hours') AS l
$$;
