-- When each processed-event key was recorded. Keys older than the deduplication window are deleted by
-- the sweep; the keys already there count as recorded now.
ALTER TABLE processed_events ADD COLUMN processed_at_us INTEGER NOT NULL DEFAULT 0;
UPDATE processed_events
SET processed_at_us = CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER);
CREATE INDEX processed_events_by_time ON processed_events (processed_at_us);
