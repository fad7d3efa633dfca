-- Segments whose membership is still to be brought in line with their rule. Creating a segment or
-- changing its rule writes the row in the same transaction; the sweep's rebuild re-evaluates the
-- profiles whose membership disagrees with the rule, a page per transaction, and deletes the row when
-- none is left. Every rule change gives the row a new `request_id`, so a rebuild that started under an
-- older rule leaves the row for the newer one.
CREATE TABLE segment_rebuilds (
    tenant_id       TEXT NOT NULL,
    segment_id      TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    -- When the membership first fell behind the rule; the oldest rebuilds go first.
    requested_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment_id)
);

-- Segments created before this migration were rebuilt inside the call that created or changed them,
-- which stopped half-way when the caller went away: each is checked once more.
INSERT INTO segment_rebuilds (tenant_id, segment_id, request_id, requested_at_us)
SELECT tenant_id, segment_id, 'upgrade',
    CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
FROM segments;
