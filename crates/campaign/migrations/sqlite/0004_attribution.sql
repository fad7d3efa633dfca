-- Impressions and clicks of sends: `content_impression` and `content_click` events whose attributes
-- carry the send key. The first of each kind per send counts.
CREATE TABLE engagements (
    tenant_id   TEXT NOT NULL,
    send_key    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    variant_id  TEXT NOT NULL,
    at_us       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, send_key, kind)
);
CREATE INDEX engagements_campaign ON engagements (tenant_id, campaign_id, kind, variant_id);
CREATE INDEX engagements_user ON engagements (tenant_id, user_id, at_us);

-- Orders, each attributed to the user's last touch within the tenant's attribution window: a send
-- (arm `variant`), a campaign's holdout entry (`holdout`) or a send the global control group kept
-- from the user (`control`). Orders with no touch are kept with an empty campaign, for tenant totals.
-- `refunded_cents` is what `order_refunded` events took back.
CREATE TABLE conversions (
    tenant_id      TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    campaign_id    TEXT NOT NULL,
    variant_id     TEXT NOT NULL,
    arm            TEXT NOT NULL,
    send_key       TEXT,
    touched_at_us  INTEGER,
    amount_cents   INTEGER NOT NULL,
    refunded_cents INTEGER NOT NULL DEFAULT 0,
    first_order    INTEGER NOT NULL,
    at_us          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX conversions_campaign ON conversions (tenant_id, campaign_id, arm, variant_id, user_id);
CREATE INDEX conversions_user ON conversions (tenant_id, user_id);

-- The report counts sends and their distinct users per variant, state and rule from this index alone.
CREATE INDEX sends_report ON sends (tenant_id, campaign_id, variant_id, state, rule, user_id);
