-- Referral programmes, invite codes, referrals with their fraud verdict, and the append-only ledger.
CREATE TABLE referral_programmes (
    tenant_id          TEXT NOT NULL,
    programme_id       TEXT NOT NULL,
    name               TEXT NOT NULL,
    reward_pool_id     TEXT NOT NULL,
    invitee_pool_id    TEXT NOT NULL,
    reward_every       INTEGER NOT NULL,
    reversal_window_us INTEGER NOT NULL,
    burst_limit        INTEGER NOT NULL,
    burst_window_us    INTEGER NOT NULL,
    created_at_us      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, programme_id)
);

CREATE TABLE invite_codes (
    tenant_id    TEXT NOT NULL,
    code         TEXT NOT NULL,
    programme_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, code)
);
CREATE UNIQUE INDEX invite_codes_user ON invite_codes (tenant_id, programme_id, user_id);

-- One referral per invitee and programme: the first one stands. state: pending, converted, reversed,
-- flagged (with the check that flagged it).
CREATE TABLE referrals (
    tenant_id       TEXT NOT NULL,
    programme_id    TEXT NOT NULL,
    invitee_user_id TEXT NOT NULL,
    inviter_user_id TEXT NOT NULL,
    state           TEXT NOT NULL,
    flag_check      TEXT,
    reason          TEXT,
    referred_at_us  INTEGER NOT NULL,
    order_id        TEXT,
    converted_at_us INTEGER,
    PRIMARY KEY (tenant_id, programme_id, invitee_user_id)
);
CREATE INDEX referrals_inviter ON referrals (tenant_id, programme_id, inviter_user_id, referred_at_us);
CREATE INDEX referrals_invitee ON referrals (tenant_id, invitee_user_id);

CREATE TABLE referral_ledger (
    seq             INTEGER PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    programme_id    TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    invitee_user_id TEXT NOT NULL,
    order_id        TEXT,
    coupon_code     TEXT,
    reverses_seq    INTEGER,
    at_us           INTEGER NOT NULL
);
CREATE INDEX referral_ledger_user ON referral_ledger (tenant_id, programme_id, user_id, seq);

-- What identifies a person besides their user id: hashed phone numbers, union ids, platform open ids
-- (from `identify` events) and profiles merged into one (from `socialops.profiles.v1`).
CREATE TABLE aliases (
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value_hash TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, value_hash, user_id)
);
CREATE INDEX aliases_user ON aliases (tenant_id, user_id);
