use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use socialops_storage::DatabaseConfig;

use crate::domain::{LifecycleThresholds, RfmConfig, TierThresholds};
use crate::error::SegmentationError;

/// The segmentation service's settings, under `[segmentation]` in the config file and
/// `SOCIALOPS_SEGMENTATION__*` in the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentationConfig {
    pub grpc_listen: SocketAddr,
    /// PostgreSQL or SQLite; unset means `segmentation.db` under the data directory.
    pub database: Option<DatabaseConfig>,
    pub consumer_group: String,
    /// Most canonical events folded into profiles per consumer batch (one transaction per lane).
    /// A batch only fills up when the consumer is behind (it lingers 20 ms after the first event,
    /// then takes what has arrived), and then a larger one folds more of a user's events into one
    /// profile write: catching up on PostgreSQL went from ~20,000 to ~55,000 events/s between 2,000
    /// and 20,000.
    pub consume_batch: usize,
    /// Transactions a consumer batch is split into, by user, running at the same time (PostgreSQL;
    /// SQLite has one writer and always uses one).
    pub consume_lanes: usize,
    pub relay_batch: usize,
    /// How often the sweep looks for profiles whose stage or segment membership the clock changes.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Profiles re-evaluated per sweep transaction.
    pub sweep_batch: usize,
    /// How often each tenant's RFM quintile edges are recomputed and every buyer rescored.
    #[serde(with = "humantime_serde")]
    pub rfm_interval: Duration,
    /// How long the key of a processed event is kept, so that a redelivered copy changes nothing.
    /// Keep it longer than `socialops.events.v1` keeps messages: an event delivered again after its
    /// key is gone (a consumer group reset to the earliest offset) would count twice.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// Thresholds and time zone for tenants not listed in `tenants`.
    pub defaults: TenantSettings,
    /// Per-tenant overrides, by tenant id.
    pub tenants: BTreeMap<String, TenantSettings>,
}

impl Default for SegmentationConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 50052)),
            database: None,
            consumer_group: "socialops-segmentation".into(),
            consume_batch: 20_000,
            consume_lanes: 2,
            relay_batch: 2_000,
            sweep_interval: Duration::from_secs(60),
            sweep_batch: 1_000,
            rfm_interval: Duration::from_secs(3_600),
            dedup_window: Duration::from_secs(14 * 86_400),
            defaults: TenantSettings::default(),
            tenants: BTreeMap::new(),
        }
    }
}

/// A tenant's lifecycle thresholds, RFM window and time zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// IANA name; the active-hours histogram and daily KPIs use it.
    pub time_zone: String,
    pub new_within_days: u32,
    pub loyal_min_orders: u32,
    pub loyal_window_days: u32,
    pub churn_after_days: u32,
    pub rfm_window_days: u32,
}

impl Default for TenantSettings {
    fn default() -> Self {
        let lifecycle = LifecycleThresholds::default();
        Self {
            time_zone: "Asia/Shanghai".into(),
            new_within_days: lifecycle.new_within_days,
            loyal_min_orders: lifecycle.loyal_min_orders,
            loyal_window_days: lifecycle.loyal_window_days,
            churn_after_days: lifecycle.churn_after_days,
            rfm_window_days: RfmConfig::default().window_days,
        }
    }
}

/// [`TenantSettings`] checked and in the domain's types.
#[derive(Debug, Clone, Copy)]
pub struct TenantRules {
    pub time_zone: Tz,
    pub lifecycle: LifecycleThresholds,
    pub rfm: RfmConfig,
    pub tiers: TierThresholds,
}

impl TenantSettings {
    pub fn rules(&self) -> Result<TenantRules, SegmentationError> {
        let time_zone: Tz = self.time_zone.parse().map_err(|_| {
            SegmentationError::Config(format!("unknown time zone `{}`", self.time_zone))
        })?;
        Ok(TenantRules {
            time_zone,
            lifecycle: LifecycleThresholds {
                new_within_days: self.new_within_days,
                loyal_min_orders: self.loyal_min_orders,
                loyal_window_days: self.loyal_window_days,
                churn_after_days: self.churn_after_days,
            },
            rfm: RfmConfig {
                window_days: self.rfm_window_days,
            },
            tiers: TierThresholds::default(),
        })
    }
}

/// Every tenant's rules, validated once at start-up.
#[derive(Debug, Clone)]
pub struct TenantDirectory {
    defaults: TenantRules,
    tenants: BTreeMap<String, TenantRules>,
}

impl TenantDirectory {
    pub fn from_config(config: &SegmentationConfig) -> Result<Self, SegmentationError> {
        Ok(Self {
            defaults: config.defaults.rules()?,
            tenants: config
                .tenants
                .iter()
                .map(|(id, s)| Ok((id.clone(), s.rules()?)))
                .collect::<Result<_, SegmentationError>>()?,
        })
    }

    pub fn rules(&self, tenant_id: &str) -> TenantRules {
        self.tenants
            .get(tenant_id)
            .copied()
            .unwrap_or(self.defaults)
    }
}
