-- When each processed-event key was recorded. Keys older than the deduplication window are deleted by
-- the sweep; the keys already there count as recorded now (a constant default, so no table rewrite).
ALTER TABLE processed_events
    ADD COLUMN processed_at_us BIGINT NOT NULL
    DEFAULT ((extract(epoch FROM now()) * 1000000)::BIGINT);
ALTER TABLE processed_events ALTER COLUMN processed_at_us DROP DEFAULT;
CREATE INDEX processed_events_by_time ON processed_events (processed_at_us);
