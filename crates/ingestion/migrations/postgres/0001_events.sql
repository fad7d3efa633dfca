-- Every accepted event, keyed for permanent deduplication. Erasure empties a row's personal data but
-- keeps its key, so a replayed event of an erased user is still recognised as a duplicate.
-- Ids are opaque: byte order ("C") sorts them as well as any locale and compares far faster.
CREATE TABLE events (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    event_id       TEXT COLLATE "C" NOT NULL,
    user_id        TEXT COLLATE "C" NOT NULL,
    event_type     TEXT   NOT NULL,
    platform       INTEGER NOT NULL,
    occurred_at_us BIGINT NOT NULL,
    received_at_us BIGINT NOT NULL,
    payload        BYTEA,
    erased_at_us   BIGINT,
    PRIMARY KEY (tenant_id, event_id)
);

CREATE INDEX events_by_user_time ON events (tenant_id, user_id, occurred_at_us, event_id);
CREATE INDEX events_by_time ON events (tenant_id, occurred_at_us, event_id);
