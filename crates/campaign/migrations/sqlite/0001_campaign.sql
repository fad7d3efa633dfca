-- Ids are opaque: byte order ("C") sorts them as well as any locale and compares far faster.
-- Times are microseconds since the Unix epoch. Documents (definitions, rules, journey state) are JSON.

-- Events and profile changes already handled: a redelivered message changes nothing.
CREATE TABLE processed_events (
    tenant_id       TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    processed_at_us INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX processed_events_age ON processed_events (processed_at_us);

-- `entry_type` and `entry_key` (segment id, target stage, event type) find the campaigns an incoming
-- message can start without reading every definition. `num_sent` counts sends against the budget.
-- `next_entry_at_us` is when a schedule entry fires next or a launch still has members to enter.
CREATE TABLE campaigns (
    tenant_id        TEXT NOT NULL,
    campaign_id      TEXT NOT NULL,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    channel          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    definition       TEXT NOT NULL,
    entry_type       TEXT NOT NULL,
    entry_key        TEXT NOT NULL,
    created_at_us    INTEGER NOT NULL,
    updated_at_us    INTEGER NOT NULL,
    paused_by        TEXT,
    pause_reason     TEXT,
    crisis_id        TEXT,
    num_sent         INTEGER NOT NULL DEFAULT 0,
    next_entry_at_us INTEGER,
    launch_cursor    TEXT,
    PRIMARY KEY (tenant_id, campaign_id)
);
CREATE INDEX campaigns_entry ON campaigns (tenant_id, entry_type, entry_key) WHERE status = 'running';
CREATE INDEX campaigns_next_entry ON campaigns (next_entry_at_us) WHERE next_entry_at_us IS NOT NULL;

CREATE TABLE campaign_transitions (
    tenant_id   TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    seq         INTEGER PRIMARY KEY,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at_us       INTEGER NOT NULL
);
CREATE INDEX campaign_transitions_campaign ON campaign_transitions (tenant_id, campaign_id, seq);

CREATE TABLE finding_acceptances (
    tenant_id   TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    finding_id  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at_us       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, finding_id)
);

-- One row per user and time through a journey. `due_at_us` is the journey's timer while it waits.
CREATE TABLE journeys (
    tenant_id     TEXT NOT NULL,
    campaign_id   TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    occurrence    INTEGER NOT NULL,
    holdout       INTEGER NOT NULL,
    variant_id    TEXT NOT NULL,
    step_id       TEXT NOT NULL,
    state         TEXT NOT NULL,
    entered_at_us INTEGER NOT NULL,
    due_at_us     INTEGER,
    exited_at_us  INTEGER,
    exit_reason   TEXT,
    PRIMARY KEY (tenant_id, campaign_id, user_id, occurrence)
);
CREATE INDEX journeys_due ON journeys (due_at_us) WHERE due_at_us IS NOT NULL;
-- A batch reads every journey of its users (open ones, the latest per campaign) in one statement.
CREATE INDEX journeys_user ON journeys (tenant_id, user_id, campaign_id, occurrence);

-- What the campaign knows of a user: their time zone (from events), their stage and tier as last
-- announced. Deciding a user's sends locks their row, so concurrent deciders never exceed a cap.
CREATE TABLE users (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    time_zone  TEXT,
    stage      TEXT,
    tier       TEXT,
    hours      TEXT,
    first_order_at_us INTEGER,
    PRIMARY KEY (tenant_id, user_id)
);

-- Every send, keyed `tenant:campaign:step:user:occurrence`. state: delayed (due again at `due_at_us`),
-- sent (published), dropped, held (its campaign is paused).
CREATE TABLE sends (
    send_key         TEXT NOT NULL PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    campaign_id      TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    step_id          TEXT NOT NULL,
    occurrence       INTEGER NOT NULL,
    variant_id       TEXT NOT NULL,
    channel          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,
    rule             TEXT,
    first_ready_at_us INTEGER NOT NULL,
    due_at_us        INTEGER,
    decided_at_us    INTEGER,
    created_at_us    INTEGER NOT NULL
);
CREATE INDEX sends_history ON sends (tenant_id, user_id, decided_at_us) WHERE state = 'sent';
CREATE INDEX sends_due ON sends (due_at_us) WHERE state = 'delayed';
CREATE INDEX sends_campaign ON sends (tenant_id, campaign_id, created_at_us);
CREATE INDEX sends_user ON sends (tenant_id, user_id, created_at_us);
CREATE INDEX sends_held ON sends (tenant_id, campaign_id) WHERE state = 'held';

-- Every decision about a user in a campaign: entered or not and why, sent, delayed, dropped, held.
CREATE TABLE decisions (
    tenant_id   TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    seq         INTEGER PRIMARY KEY,
    send_key    TEXT,
    step_id     TEXT,
    outcome     TEXT NOT NULL,
    rule        TEXT,
    detail      TEXT,
    until_us    INTEGER,
    at_us       INTEGER NOT NULL
);
CREATE INDEX decisions_user ON decisions (tenant_id, campaign_id, user_id, seq);

CREATE TABLE tenant_settings (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    settings  TEXT NOT NULL
);

CREATE TABLE faqs (
    tenant_id     TEXT NOT NULL,
    faq_id        TEXT NOT NULL,
    patterns      TEXT NOT NULL,
    answer        TEXT NOT NULL,
    updated_at_us INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, faq_id)
);

-- The last answer per conversation and question, for the cooldown.
CREATE TABLE faq_replies (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    faq_id          TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    num_replies     INTEGER NOT NULL,
    replied_at_us   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, faq_id)
);

-- Crises open at or above a pausing severity, from `socialops.alerts.v1`.
CREATE TABLE crises (
    tenant_id  TEXT NOT NULL,
    crisis_id  TEXT NOT NULL,
    severity   INTEGER NOT NULL,
    open       INTEGER NOT NULL,
    at_us      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, crisis_id)
);

-- Activity by local hour over all of a tenant's users: the fallback best time.
CREATE TABLE tenant_hours (
    tenant_id TEXT NOT NULL,
    hour      INTEGER NOT NULL,
    num_events INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);

-- Members of a launch's segment, copied when the campaign starts and entered by the sweep.
CREATE TABLE launch_members (
    tenant_id   TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, user_id)
);

-- Segment members as announced on `socialops.profiles.v1`: the audience of scheduled sends.
CREATE TABLE segment_members (
    tenant_id  TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, user_id)
);
