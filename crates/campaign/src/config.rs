use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use socialops_storage::DatabaseConfig;

/// The campaign service's settings, under `[campaign]` in the config file and
/// `SOCIALOPS_CAMPAIGN__*` in the environment. Per-tenant rules (pressure, banned words, crisis
/// pause) are set over gRPC and kept in the store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignConfig {
    pub grpc_listen: SocketAddr,
    /// PostgreSQL or SQLite; unset means `campaign.db` under the data directory.
    pub database: Option<DatabaseConfig>,
    pub consumer_group: String,
    /// Most messages handled per consumer batch (one transaction).
    pub consume_batch: usize,
    pub relay_batch: usize,
    /// How often due journey timers, delayed sends and scheduled entries are looked for.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Most due journeys or sends one sweep step takes in one transaction.
    pub sweep_batch: usize,
    /// How long the key of a processed message is kept, so that a redelivered copy changes nothing.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// The segmentation service, asked for a segment's members when a campaign launches to them.
    pub segmentation_url: Option<String>,
    /// Most characters of one definition document.
    pub max_definition_bytes: usize,
    /// How often running experiments with `auto_rollout` are checked for a winner.
    #[serde(with = "humantime_serde")]
    pub rollout_check_interval: Duration,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 50053)),
            database: None,
            consumer_group: "socialops-campaign".into(),
            consume_batch: 500,
            relay_batch: 1_000,
            sweep_interval: Duration::from_millis(500),
            sweep_batch: 500,
            dedup_window: Duration::from_secs(14 * 86_400),
            segmentation_url: None,
            max_definition_bytes: 256 * 1024,
            rollout_check_interval: Duration::from_secs(600),
        }
    }
}
