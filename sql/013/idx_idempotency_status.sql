-- Monitoring counts rows per status (success / failed / not_implemented).
CREATE INDEX idx_idempotency_status ON public.idempotency_log (status);
