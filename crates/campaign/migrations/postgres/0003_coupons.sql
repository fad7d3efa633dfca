-- Coupon pools and their codes. A pool's counters are its budgets' spent parts: they are what
-- issuing and redeeming check and change, under the pool row's lock, and what erasure keeps.
CREATE TABLE coupon_pools (
    tenant_id          TEXT COLLATE "C" NOT NULL,
    pool_id            TEXT COLLATE "C" NOT NULL,
    name               TEXT NOT NULL,
    code_prefix        TEXT NOT NULL,
    value_cents        BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    max_issued         BIGINT NOT NULL,
    value_budget_cents BIGINT NOT NULL,
    per_user_limit     BIGINT NOT NULL,
    min_order_cents    BIGINT NOT NULL,
    valid_for_us       BIGINT NOT NULL,
    ends_at_us         BIGINT,
    restore_window_us  BIGINT NOT NULL,
    num_issued         BIGINT NOT NULL DEFAULT 0,
    num_redeemed       BIGINT NOT NULL DEFAULT 0,
    redeemed_value_cents BIGINT NOT NULL DEFAULT 0,
    created_at_us      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, pool_id)
);

-- One row per code. `issue_key` is the send key of the journey step that issued it, or
-- `api:<request id>` (a random one when the caller gives none): one code per pool and key.
CREATE TABLE coupons (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    code           TEXT COLLATE "C" NOT NULL,
    pool_id        TEXT COLLATE "C" NOT NULL,
    user_id        TEXT COLLATE "C" NOT NULL,
    issue_key      TEXT COLLATE "C" NOT NULL,
    campaign_id    TEXT NOT NULL,
    value_cents    BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    issued_at_us   BIGINT NOT NULL,
    expires_at_us  BIGINT,
    redeemed_at_us BIGINT,
    order_id       TEXT COLLATE "C",
    order_amount_cents BIGINT,
    discount_cents BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, code)
);
CREATE UNIQUE INDEX coupons_issue ON coupons (tenant_id, pool_id, issue_key);
CREATE INDEX coupons_user ON coupons (tenant_id, user_id, pool_id);
CREATE INDEX coupons_order ON coupons (tenant_id, order_id) WHERE order_id IS NOT NULL;

-- What happened to each code, refused redemptions included (also of codes that do not exist).
CREATE TABLE coupon_events (
    seq          BIGSERIAL PRIMARY KEY,
    tenant_id    TEXT COLLATE "C" NOT NULL,
    code         TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    kind         TEXT NOT NULL,
    order_id     TEXT,
    amount_cents BIGINT NOT NULL,
    reason       TEXT,
    at_us        BIGINT NOT NULL
);
CREATE INDEX coupon_events_code ON coupon_events (tenant_id, code, seq);
CREATE INDEX coupon_events_user ON coupon_events (tenant_id, user_id);
