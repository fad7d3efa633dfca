-- One row per profile. Columns are what segment rules, listing, the sweep and the funnel query; `doc`
-- holds the rest (tags, categories, active hours, merged user ids) as JSON, read and written whole.
CREATE TABLE profiles (
    tenant_id              TEXT NOT NULL,
    profile_id             TEXT NOT NULL,
    stage                  BIGINT NOT NULL,
    tier                   BIGINT NOT NULL,
    rfm_r                  BIGINT,
    rfm_f                  BIGINT,
    rfm_m                  BIGINT,
    following              BIGINT NOT NULL,
    -- One bit per platform, in the order of the Platform enum (wechat = 1, weibo = 2, ...).
    platforms              BIGINT NOT NULL,
    orders_count           BIGINT NOT NULL,
    orders_total_cents     BIGINT NOT NULL,
    refunded_cents         BIGINT NOT NULL,
    first_seen_at_us       BIGINT,
    last_seen_at_us        BIGINT,
    last_interaction_at_us BIGINT,
    first_order_at_us      BIGINT,
    last_order_at_us       BIGINT,
    -- When the clock alone next changes the stage; the sweep's index.
    next_check_at_us       BIGINT,
    updated_at_us          BIGINT NOT NULL,
    -- Events seen, per event type.
    count_post_published         BIGINT NOT NULL DEFAULT 0,
    count_comment                BIGINT NOT NULL DEFAULT 0,
    count_mention                BIGINT NOT NULL DEFAULT 0,
    count_like                   BIGINT NOT NULL DEFAULT 0,
    count_share                  BIGINT NOT NULL DEFAULT 0,
    count_follow                 BIGINT NOT NULL DEFAULT 0,
    count_unfollow               BIGINT NOT NULL DEFAULT 0,
    count_direct_message         BIGINT NOT NULL DEFAULT 0,
    count_content_impression     BIGINT NOT NULL DEFAULT 0,
    count_content_click          BIGINT NOT NULL DEFAULT 0,
    count_order_placed           BIGINT NOT NULL DEFAULT 0,
    count_order_refunded         BIGINT NOT NULL DEFAULT 0,
    count_coupon_redeemed        BIGINT NOT NULL DEFAULT 0,
    count_referral               BIGINT NOT NULL DEFAULT 0,
    count_identify               BIGINT NOT NULL DEFAULT 0,
    doc                    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, profile_id)
);
CREATE INDEX profiles_due ON profiles (next_check_at_us) WHERE next_check_at_us IS NOT NULL;
CREATE INDEX profiles_by_stage ON profiles (tenant_id, stage, profile_id);
CREATE INDEX profiles_by_first_seen ON profiles (tenant_id, first_seen_at_us);

-- Every order of a profile: lifecycle loyalty and RFM frequency and monetary value count them inside
-- their windows. An order id counts once per profile.
CREATE TABLE orders (
    tenant_id      TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    at_us          BIGINT NOT NULL,
    amount_cents   BIGINT NOT NULL,
    refunded_cents BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, profile_id, order_id)
);

-- Every name a profile is known by: `user:<id>` for user ids, `<kind>:<platform>:<hash>` for
-- identify aliases. A merge points the absorbed profile's aliases at the surviving one.
CREATE TABLE aliases (
    tenant_id  TEXT NOT NULL,
    alias      TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, alias)
);
CREATE INDEX aliases_by_profile ON aliases (tenant_id, profile_id);

-- Events already folded into a profile: a redelivered event counts once.
CREATE TABLE processed_events (
    tenant_id TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

-- Users whose data was erased, and when the erasure was requested: their events from before then,
-- still on the canonical topic, do not bring the profile back.
CREATE TABLE erasures (
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    erased_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- Every tenant seen, with its RFM quintile edges (comma-separated, NULL before the first
-- computation) and when they were computed.
CREATE TABLE tenants (
    tenant_id          TEXT NOT NULL PRIMARY KEY,
    rfm_recency_days   TEXT,
    rfm_frequency      TEXT,
    rfm_monetary_cents TEXT,
    rfm_window_days    BIGINT,
    rfm_num_buyers     BIGINT,
    rfm_computed_at_us BIGINT
);

CREATE TABLE tag_rules (
    tenant_id     TEXT NOT NULL,
    rule_id       TEXT NOT NULL,
    pattern       TEXT NOT NULL,
    tag           TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, rule_id)
);

CREATE TABLE profile_tags (
    tenant_id  TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, profile_id, tag)
);
CREATE INDEX profile_tags_by_tag ON profile_tags (tenant_id, tag);

CREATE TABLE segments (
    tenant_id     TEXT NOT NULL,
    segment_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    rule          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment_id),
    CONSTRAINT segments_name_unique UNIQUE (tenant_id, name)
);

CREATE TABLE segment_members (
    tenant_id     TEXT NOT NULL,
    segment_id    TEXT NOT NULL,
    profile_id    TEXT NOT NULL,
    entered_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, profile_id)
);
CREATE INDEX segment_members_by_profile ON segment_members (tenant_id, profile_id);

CREATE TABLE segment_size_history (
    tenant_id  TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    at_us      BIGINT NOT NULL,
    size       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, at_us)
);

CREATE TABLE stage_transitions (
    tenant_id  TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    from_stage BIGINT NOT NULL,
    to_stage   BIGINT NOT NULL,
    at_us      BIGINT NOT NULL,
    cause      BIGINT NOT NULL
);
CREATE INDEX stage_transitions_by_time ON stage_transitions (tenant_id, at_us);
CREATE INDEX stage_transitions_by_profile ON stage_transitions (tenant_id, profile_id);

-- Audience counters per tenant-local day.
CREATE TABLE audience_daily (
    tenant_id     TEXT NOT NULL,
    day           BIGINT NOT NULL,
    new_followers BIGINT NOT NULL,
    unfollows     BIGINT NOT NULL,
    interactions  BIGINT NOT NULL,
    impressions   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Which profiles interacted on which tenant-local day: active users and cohort retention.
CREATE TABLE active_days (
    tenant_id  TEXT NOT NULL,
    day        BIGINT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, day, profile_id)
);
CREATE INDEX active_days_by_profile ON active_days (tenant_id, profile_id);

CREATE TABLE kpi_targets (
    tenant_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    name      TEXT NOT NULL,
    metric    BIGINT NOT NULL,
    value     BIGINT NOT NULL,
    start_us  BIGINT NOT NULL,
    end_us    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, target_id)
);
