//! What the socialops test suites share: a fresh database of either backend, the broker, an
//! environment of suffixed topics, tokens and a clock to start a service in ([`TestEnv`]), gRPC
//! clients that present a token, topics read back from their start ([`TopicReader`],
//! [`read_topic`], [`dead_letters`]) and waiting with one deadline ([`eventually`], [`poll`]).
//!
//! Tests that need the broker or PostgreSQL find them through `SOCIALOPS_TEST_KAFKA` /
//! `SOCIALOPS_TEST_DATABASE_URL`; unset, they are skipped with a note, except under `CI`, where
//! they fail.

mod client;
mod env;
mod topic;
mod wait;

use std::path::Path;
use std::time::Duration;

use socialops_bus::KafkaConfig;
use socialops_proto::Timestamp;
use socialops_storage::testing::required_env;
use socialops_storage::{DatabaseConfig, create_scratch_postgres};

pub use client::{Authed, channel_with_token};
pub use env::TestEnv;
pub use socialops_service::Dependencies;
pub use topic::{Received, Record, TopicReader, consumer, dead_letters, read_topic};
pub use wait::{eventually, poll};

/// How long a test waits for something that crosses a service or the broker.
pub const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The broker named by `SOCIALOPS_TEST_KAFKA`, with test telemetry installed.
pub fn kafka() -> Option<KafkaConfig> {
    socialops_telemetry::init_for_tests();
    required_env("SOCIALOPS_TEST_KAFKA").map(KafkaConfig::new)
}

/// The administrative PostgreSQL URL, `SOCIALOPS_TEST_DATABASE_URL`.
pub fn postgres_admin_url() -> Option<String> {
    required_env("SOCIALOPS_TEST_DATABASE_URL")
}

/// A fresh database of `backend` called after `name`: the SQLite file `dir/{name}.db`, or a scratch
/// PostgreSQL database whose name starts with `name`.
pub async fn database(backend: Backend, dir: &Path, name: &str) -> Option<DatabaseConfig> {
    Some(match backend {
        Backend::Sqlite => DatabaseConfig::sqlite_file(&dir.join(format!("{name}.db"))),
        Backend::Postgres => DatabaseConfig {
            url: create_scratch_postgres(&postgres_admin_url()?, name)
                .await
                .expect("scratch database"),
            max_connections: 4,
        },
    })
}

/// `prefix` followed by a fresh UUID, for names no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Microseconds since the epoch as a protobuf timestamp.
pub fn ts(us: i64) -> Timestamp {
    socialops_proto::timestamp(us)
}
