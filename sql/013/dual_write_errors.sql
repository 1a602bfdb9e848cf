-- Where the dual-write trigger and the backfill record a habit_tracker row they could not
-- project (malformed habits, a date that is not a Monday, ...). The app's write itself
-- always succeeds; this table and a WARNING are how the failure surfaces, and drift
-- counts the row.
CREATE TABLE public.dual_write_errors (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No foreign key: the error must outlive a deleted row, and the trigger must not take
    -- extra locks on habit_tracker.
    tracker_id bigint NOT NULL,
    operation text NOT NULL
        CONSTRAINT dual_write_errors_operation_check
        CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'BACKFILL')),
    error text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);

-- Error texts quote user data: RLS on with no policy, so only the owner (and so the
-- SECURITY DEFINER trigger, which writes here as the owner) and BYPASSRLS roles
-- (service_role, granted SELECT) see rows.
ALTER TABLE public.dual_write_errors ENABLE ROW LEVEL SECURITY;
