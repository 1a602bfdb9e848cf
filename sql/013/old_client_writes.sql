-- Phase 2 (issue 18): the evidence the Phase 3 gate reads, that old app versions have stopped
-- writing habit_tracker. One row per day and server session (backend) that wrote it, with how
-- many statements and when the first and the last ran. Writes the reverse sync makes are not
-- counted (record_old_client_write.sql).
--
-- Why a row per (day, backend) and not a row per statement or per day: a row per statement
-- grows with the old clients' traffic and needs a pruning job; one row per day would be a hot
-- row every old client's write updates, serialising them all on its lock until commit. A
-- backend runs one transaction at a time, so its row is never contended, and the table stays
-- small without pruning (days x server connections: about 60 x 365 rows a year through a
-- pooler). The gate reads max(last_at) (no write in the quiet period) and sum(statements).
-- login_role is session_user: through PostgREST `authenticator`, in the SQL editor or psql the
-- role that logged in, so a gate can tell the app's writes from an operator's.
CREATE TABLE public.old_client_writes (
    day date NOT NULL,
    -- integer: what pg_backend_pid() returns (a process id).
    -- squawk-ignore prefer-bigint-over-int
    backend_pid integer NOT NULL,
    login_role text NOT NULL,
    statements bigint NOT NULL,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    CONSTRAINT old_client_writes_pkey PRIMARY KEY (day, backend_pid)
);

-- Counts and times only, but no API role needs them: RLS on with no policy, so only the owner
-- (and the SECURITY DEFINER trigger function, which writes as the owner) and BYPASSRLS roles
-- (service_role, granted SELECT, for monitoring) see rows.
ALTER TABLE public.old_client_writes ENABLE ROW LEVEL SECURITY;
