-- cleanup_idempotency_log() finds expired rows by range on expires_at.
CREATE INDEX idx_idempotency_expires ON public.idempotency_log (expires_at);
