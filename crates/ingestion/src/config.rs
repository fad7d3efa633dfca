use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use socialops_storage::DatabaseConfig;

use crate::domain::Limits;

/// The ingestion service's settings, under `[ingestion]` in the config file and
/// `SOCIALOPS_INGESTION__*` in the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestionConfig {
    pub grpc_listen: SocketAddr,
    /// PostgreSQL or SQLite; unset means `ingestion.db` under the data directory.
    pub database: Option<DatabaseConfig>,
    pub consumer_group: String,
    /// Key for hashing alias ids (open ids, union ids, phones). Required outside `socialops dev`;
    /// changing it breaks identity linking for everything hashed before.
    pub alias_key: Option<SecretString>,
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
    pub max_text_chars: usize,
    pub max_event_bytes: usize,
    /// Most events in one `IngestEvents` request or one message of a stream.
    pub max_batch_events: usize,
    /// Most raw messages handled per consumer batch (one transaction).
    pub consume_batch: usize,
    pub relay_batch: usize,
}

impl Default for IngestionConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 50051)),
            database: None,
            consumer_group: "socialops-ingestion".into(),
            alias_key: None,
            max_clock_skew: limits.max_clock_skew,
            max_text_chars: limits.max_text_chars,
            max_event_bytes: limits.max_event_bytes,
            max_batch_events: 1_000,
            consume_batch: 2_000,
            relay_batch: 2_000,
        }
    }
}

impl IngestionConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_clock_skew: self.max_clock_skew,
            max_text_chars: self.max_text_chars,
            max_event_bytes: self.max_event_bytes,
        }
    }
}
