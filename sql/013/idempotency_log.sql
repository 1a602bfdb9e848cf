-- Edge Function requests, so that a retried request with the same Idempotency-Key gets
-- the cached response instead of writing twice. Exactly the 8 columns of the guide.
CREATE TABLE public.idempotency_log (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Unique through idx_idempotency_key alone: a UNIQUE constraint here would add a
    -- second unique index on the same column.
    key text NOT NULL,
    operation text NOT NULL
        CONSTRAINT idempotency_log_operation_check
        CHECK (operation IN ('create_week', 'update_habit_record', 'delete_week')),
    request_data jsonb,
    response_data jsonb,
    status text NOT NULL
        CONSTRAINT idempotency_log_status_check
        CHECK (status IN ('success', 'failed', 'not_implemented')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '24 hours'
);

-- Cached responses may hold user data: only service_role (the Edge Function) and the
-- owner may see or write rows. With RLS on and a policy for service_role only, anon and
-- authenticated see nothing even if a grant slips through (Supabase grants API roles
-- on new tables by default; the grants are revoked separately).
ALTER TABLE public.idempotency_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY idempotency_log_service_role_only ON public.idempotency_log
    AS PERMISSIVE FOR ALL TO service_role
    USING (true) WITH CHECK (true);
