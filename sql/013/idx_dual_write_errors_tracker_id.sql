-- Phase 1's set-based sync asks, for each row of a statement, whether the row has an error
-- recorded (then its week is diffed whole, not only what the write changed): one probe here.
CREATE INDEX idx_dual_write_errors_tracker_id ON public.dual_write_errors (tracker_id);
