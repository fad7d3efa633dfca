//! Integration tests against a real Kafka-protocol broker (`SOCIALOPS_TEST_KAFKA`), PostgreSQL
//! (`SOCIALOPS_TEST_DATABASE_URL`) and SQLite; the embedded-broker test needs neither.

#[path = "bus/consumer.rs"]
mod consumer;
#[path = "bus/embedded.rs"]
mod embedded;
#[path = "bus/outbox.rs"]
mod outbox;
#[path = "bus/replay.rs"]
mod replay;
#[path = "bus/support.rs"]
mod support;
