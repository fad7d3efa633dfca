-- The transactional outbox: messages written with the rows they announce, relayed to Kafka in id order
-- and deleted once delivered (socialops_bus::OutboxRelay). IF NOT EXISTS: stores created before this
-- migration made the table at start-up.
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    msg_key TEXT NULL,
    payload BLOB NOT NULL,
    headers BLOB NOT NULL,
    created_at_us BIGINT NOT NULL
);

-- Outbox rows that can never be published (unreadable headers, a message the broker refuses for good),
-- set aside with the reason so that the rows behind them go on.
CREATE TABLE outbox_dead (
    id BIGINT PRIMARY KEY,
    topic TEXT NOT NULL,
    msg_key TEXT NULL,
    payload BLOB NOT NULL,
    headers BLOB NOT NULL,
    created_at_us BIGINT NOT NULL,
    reason TEXT NOT NULL,
    set_aside_at_us BIGINT NOT NULL
);
