use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use socialops_storage::DatabaseConfig;

use crate::domain::severity::SeverityRules;
use crate::domain::spike::SpikeRules;
use crate::error::SentimentError;

/// The sentiment service's settings, under `[sentiment]` in the config file and
/// `SOCIALOPS_SENTIMENT__*` in the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentimentConfig {
    pub grpc_listen: SocketAddr,
    /// PostgreSQL or SQLite; unset means `sentiment.db` under the data directory.
    pub database: Option<DatabaseConfig>,
    pub consumer_group: String,
    /// Most canonical events handled per consumer batch (one transaction).
    pub consume_batch: usize,
    pub relay_batch: usize,
    /// Most texts in one `ScoreTexts` call, and most characters per text.
    pub max_score_texts: usize,
    pub max_text_chars: usize,
    /// How often the sweep looks for crises whose response clock owes a reminder.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// How long the key of a processed event is kept, so that a redelivered copy changes nothing.
    /// Keep it longer than `socialops.events.v1` keeps messages: an event delivered again after its
    /// key is gone (a consumer group reset to the earliest offset) would count twice.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    pub spike: SpikeSettings,
    pub severity: SeverityRules,
    /// Settings for tenants not listed in `tenants`.
    pub defaults: TenantSettings,
    /// Per-tenant overrides, by tenant id.
    pub tenants: BTreeMap<String, TenantSettings>,
}

impl Default for SentimentConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 50054)),
            database: None,
            consumer_group: "socialops-sentiment".into(),
            consume_batch: 1_000,
            relay_batch: 1_000,
            max_score_texts: 1_000,
            max_text_chars: 10_000,
            sweep_interval: Duration::from_secs(30),
            dedup_window: Duration::from_secs(14 * 86_400),
            spike: SpikeSettings::default(),
            severity: SeverityRules::default(),
            defaults: TenantSettings::default(),
            tenants: BTreeMap::new(),
        }
    }
}

/// Spike detection thresholds (see [`crate::domain::spike`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpikeSettings {
    /// Mentions are counted per bucket; it must divide a day.
    #[serde(with = "humantime_serde")]
    pub bucket: Duration,
    /// The rolling window, a whole number of buckets.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Earlier days whose same window forms the baseline.
    pub baseline_days: u32,
    /// Standard deviations above the baseline mean that make a volume spike.
    pub k: f64,
    /// Fewer negative mentions in the window never make a spike.
    pub min_count: u64,
    /// A rise of the window's negative share over the baseline's by this much makes a spike.
    pub share_jump: f64,
    /// After a spike, the watchlist opens no new crisis for this long.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for SpikeSettings {
    fn default() -> Self {
        let rules = SpikeRules::default();
        let duration = |us: i64| Duration::from_micros(us.unsigned_abs());
        Self {
            bucket: duration(rules.bucket_us),
            window: duration(rules.window_us()),
            baseline_days: rules.baseline_days,
            k: rules.k,
            min_count: rules.min_count,
            share_jump: rules.share_jump,
            cooldown: duration(rules.cooldown_us),
        }
    }
}

impl SpikeSettings {
    pub fn rules(&self) -> Result<SpikeRules, SentimentError> {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let bucket_us = micros(self.bucket).max(1);
        let window_us = micros(self.window);
        if window_us % bucket_us != 0 {
            return Err(SentimentError::Config(
                "sentiment.spike.window must be a whole number of buckets".into(),
            ));
        }
        let rules = SpikeRules {
            bucket_us,
            window_buckets: u32::try_from(window_us / bucket_us).unwrap_or(u32::MAX),
            baseline_days: self.baseline_days,
            k: self.k,
            min_count: self.min_count,
            share_jump: self.share_jump,
            cooldown_us: micros(self.cooldown),
        };
        rules
            .validate()
            .map_err(|e| SentimentError::Config(format!("sentiment.{e}")))?;
        Ok(rules)
    }
}

/// What a tenant may set apart from the others.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// A user's comment or message unanswered for longer is in the unanswered queue.
    #[serde(with = "humantime_serde")]
    pub reply_target: Duration,
    /// The response clock: a crisis should be answered within this long of detection.
    #[serde(with = "humantime_serde")]
    pub response_time: Duration,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            reply_target: Duration::from_secs(2 * 3_600),
            response_time: Duration::from_secs(24 * 3_600),
        }
    }
}

impl TenantSettings {
    pub fn reply_target_us(&self) -> i64 {
        i64::try_from(self.reply_target.as_micros()).unwrap_or(i64::MAX)
    }

    pub fn response_time_us(&self) -> i64 {
        i64::try_from(self.response_time.as_micros()).unwrap_or(i64::MAX)
    }
}

/// The checked settings every part of the service reads.
#[derive(Debug, Clone)]
pub struct Rules {
    pub spike: SpikeRules,
    pub severity: SeverityRules,
    defaults: TenantSettings,
    tenants: BTreeMap<String, TenantSettings>,
}

impl Rules {
    pub fn from_config(config: &SentimentConfig) -> Result<Self, SentimentError> {
        config
            .severity
            .validate()
            .map_err(|e| SentimentError::Config(format!("sentiment.severity: {e}")))?;
        for (tenant, settings) in std::iter::once(("defaults", &config.defaults))
            .chain(config.tenants.iter().map(|(t, s)| (t.as_str(), s)))
        {
            if settings.response_time.is_zero() {
                return Err(SentimentError::Config(format!(
                    "sentiment tenant `{tenant}`: response_time must be positive"
                )));
            }
        }
        Ok(Self {
            spike: config.spike.rules()?,
            severity: config.severity.clone(),
            defaults: config.defaults,
            tenants: config.tenants.clone(),
        })
    }

    pub fn tenant(&self, tenant_id: &str) -> TenantSettings {
        self.tenants
            .get(tenant_id)
            .copied()
            .unwrap_or(self.defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_tenants_override() {
        let mut config = SentimentConfig::default();
        config.tenants.insert(
            "acme".into(),
            TenantSettings {
                reply_target: Duration::from_secs(600),
                ..TenantSettings::default()
            },
        );
        let rules = Rules::from_config(&config).unwrap();
        assert_eq!(rules.spike, SpikeRules::default());
        assert_eq!(rules.tenant("acme").reply_target_us(), 600_000_000);
        assert_eq!(rules.tenant("other").reply_target_us(), 7_200_000_000);
    }

    #[test]
    fn a_window_that_is_not_whole_buckets_is_refused() {
        let config = SentimentConfig {
            spike: SpikeSettings {
                window: Duration::from_secs(7 * 60),
                ..SpikeSettings::default()
            },
            ..SentimentConfig::default()
        };
        let error = Rules::from_config(&config).unwrap_err();
        assert!(
            error.to_string().contains("whole number of buckets"),
            "{error}"
        );
    }

    #[test]
    fn settings_parse_from_their_text_form() {
        let config: SentimentConfig = serde_json::from_str(
            r#"{"spike": {"bucket": "10m", "window": "1h", "min_count": 5},
                "tenants": {"acme": {"reply_target": "30m"}}}"#,
        )
        .unwrap();
        let rules = Rules::from_config(&config).unwrap();
        assert_eq!(rules.spike.window_buckets, 6);
        assert_eq!(rules.spike.min_count, 5);
        assert_eq!(rules.tenant("acme").response_time_us(), 86_400_000_000);
        assert!(serde_json::from_str::<SentimentConfig>(r#"{"spike": {"windw": "1h"}}"#).is_err());
    }
}
