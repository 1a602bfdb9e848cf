-- The one unique index on key: fast lookup of a request by its Idempotency-Key, and the
-- only thing that makes keys unique (the table declares no UNIQUE constraint).
CREATE UNIQUE INDEX idx_idempotency_key ON public.idempotency_log (key);
