-- Ids are opaque: byte order ("C") sorts them as well as any locale and compares far faster.
-- Times are microseconds since the Unix epoch; labels are 1 negative, 2 neutral, 3 positive.

-- Events already handled: a redelivered event changes nothing.
CREATE TABLE processed_events (
    tenant_id TEXT COLLATE "C" NOT NULL,
    event_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

-- Every scored user text, counted per hour and label: the sentiment timeline.
CREATE TABLE sentiment_hours (
    tenant_id TEXT COLLATE "C" NOT NULL,
    hour_us   BIGINT NOT NULL,
    negative  BIGINT NOT NULL,
    neutral   BIGINT NOT NULL,
    positive  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, hour_us)
);

-- Term lists are JSON arrays of strings, read and written whole.
CREATE TABLE watchlists (
    tenant_id     TEXT COLLATE "C" NOT NULL,
    watchlist_id  TEXT COLLATE "C" NOT NULL,
    name          TEXT NOT NULL,
    brands        TEXT NOT NULL,
    products      TEXT NOT NULL,
    risk_words    TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, watchlist_id),
    CONSTRAINT watchlists_name_unique UNIQUE (tenant_id, name)
);

-- A text that matched a watchlist. `crisis_id` is set once an open crisis takes it in.
CREATE TABLE mentions (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    watchlist_id   TEXT COLLATE "C" NOT NULL,
    event_id       TEXT COLLATE "C" NOT NULL,
    user_id        TEXT COLLATE "C" NOT NULL,
    platform       BIGINT NOT NULL,
    author         TEXT NOT NULL,
    body           TEXT NOT NULL,
    polarity       DOUBLE PRECISION NOT NULL,
    label          BIGINT NOT NULL,
    confidence     DOUBLE PRECISION NOT NULL,
    reach          BIGINT NOT NULL,
    risk           BIGINT NOT NULL,
    occurred_at_us BIGINT NOT NULL,
    crisis_id      TEXT COLLATE "C",
    PRIMARY KEY (tenant_id, watchlist_id, event_id)
);
CREATE INDEX mentions_by_crisis ON mentions (tenant_id, crisis_id, reach) WHERE crisis_id IS NOT NULL;
CREATE INDEX mentions_by_time ON mentions (tenant_id, watchlist_id, occurred_at_us);
CREATE INDEX mentions_by_user ON mentions (tenant_id, user_id);

-- Mentions per watchlist and bucket, by label: the spike window and its baseline.
CREATE TABLE mention_buckets (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    watchlist_id TEXT COLLATE "C" NOT NULL,
    bucket_us    BIGINT NOT NULL,
    negative     BIGINT NOT NULL,
    neutral      BIGINT NOT NULL,
    positive     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, watchlist_id, bucket_us)
);

-- Per watchlist: the first bucket ever counted (baseline days before it do not count) and when a spike
-- last opened a crisis (the cooldown).
CREATE TABLE watch_state (
    tenant_id        TEXT COLLATE "C" NOT NULL,
    watchlist_id     TEXT COLLATE "C" NOT NULL,
    first_bucket_us  BIGINT NOT NULL,
    last_spike_at_us BIGINT,
    PRIMARY KEY (tenant_id, watchlist_id)
);

CREATE TABLE crises (
    tenant_id          TEXT COLLATE "C" NOT NULL,
    crisis_id          TEXT COLLATE "C" NOT NULL,
    watchlist_id       TEXT COLLATE "C" NOT NULL,
    watchlist_name     TEXT NOT NULL,
    state              BIGINT NOT NULL,
    severity           BIGINT NOT NULL,
    reason             TEXT NOT NULL,
    window_start_us    BIGINT NOT NULL,
    detected_at_us     BIGINT NOT NULL,
    half_time_at_us    BIGINT NOT NULL,
    respond_by_us      BIGINT NOT NULL,
    half_time_reminded BIGINT NOT NULL,
    breached           BIGINT NOT NULL,
    num_mentions       BIGINT NOT NULL,
    num_negative       BIGINT NOT NULL,
    total_reach        BIGINT NOT NULL,
    num_steps          BIGINT NOT NULL,
    updated_at_us      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, crisis_id)
);
-- One open crisis (detected, acknowledged, responding) per tenant and watchlist.
CREATE UNIQUE INDEX crises_one_open ON crises (tenant_id, watchlist_id) WHERE state <= 3;
-- The sweep's index: crises whose response clock may owe a reminder.
CREATE INDEX crises_clock ON crises (half_time_at_us) WHERE state = 1 AND breached = 0;
CREATE INDEX crises_by_tenant ON crises (tenant_id, detected_at_us);

-- Every change of a crisis, numbered; each one was published as an alert.
CREATE TABLE crisis_steps (
    tenant_id TEXT COLLATE "C" NOT NULL,
    crisis_id TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    kind      BIGINT NOT NULL,
    state     BIGINT NOT NULL,
    severity  BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    note      TEXT NOT NULL,
    at_us     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, crisis_id, seq)
);

-- Users' comments and direct messages, waiting for the brand's answer or answered.
CREATE TABLE user_messages (
    tenant_id       TEXT COLLATE "C" NOT NULL,
    platform        BIGINT NOT NULL,
    message_id      TEXT COLLATE "C" NOT NULL,
    event_id        TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    is_dm           BIGINT NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    body            TEXT NOT NULL,
    polarity        DOUBLE PRECISION NOT NULL,
    label           BIGINT NOT NULL,
    reach           BIGINT NOT NULL,
    occurred_at_us  BIGINT NOT NULL,
    answered_at_us  BIGINT,
    reply_seconds   DOUBLE PRECISION,
    PRIMARY KEY (tenant_id, platform, message_id)
);
CREATE INDEX user_messages_waiting ON user_messages (tenant_id, occurred_at_us) WHERE answered_at_us IS NULL;
CREATE INDEX user_messages_answered ON user_messages (tenant_id, occurred_at_us) WHERE answered_at_us IS NOT NULL;
CREATE INDEX user_messages_by_conversation ON user_messages (tenant_id, platform, conversation_id, occurred_at_us);
CREATE INDEX user_messages_by_user ON user_messages (tenant_id, user_id);

-- What the brand's own accounts wrote that can answer a user: kept so that a user message processed
-- after its answer still finds it.
CREATE TABLE brand_messages (
    tenant_id       TEXT COLLATE "C" NOT NULL,
    platform        BIGINT NOT NULL,
    message_id      TEXT COLLATE "C" NOT NULL,
    is_dm           BIGINT NOT NULL,
    reply_to_id     TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    occurred_at_us  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, platform, message_id)
);
CREATE INDEX brand_messages_by_reply_to ON brand_messages (tenant_id, platform, reply_to_id);
CREATE INDEX brand_messages_by_conversation ON brand_messages (tenant_id, platform, conversation_id, occurred_at_us);
