-- "Recent logs": newest first.
CREATE INDEX idx_idempotency_created ON public.idempotency_log (created_at DESC);
