//! The process configuration: defaults < TOML file < `SOCIALOPS_*` environment (`__` between levels).

use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use socialops_auth::AuthConfig;
use socialops_bus::{KafkaConfig, Topics};
use socialops_campaign::CampaignConfig;
use socialops_ingestion::IngestionConfig;
use socialops_segmentation::SegmentationConfig;
use socialops_sentiment::SentimentConfig;
use socialops_telemetry::TelemetryConfig;

/// Top-level sections; environment variables naming anything else under `SOCIALOPS_` (such as the
/// test suite's `SOCIALOPS_TEST_*`) are not configuration and are left alone.
const SECTIONS: &[&str] = &[
    "data_dir",
    "kafka",
    "topics",
    "telemetry",
    "auth",
    "segmentation",
    "ingestion",
    "sentiment",
    "campaign",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub kafka: Option<KafkaConfig>,
    pub topics: Topics,
    pub telemetry: TelemetryConfig,
    pub segmentation: SegmentationConfig,
    pub auth: AuthConfig,
    pub ingestion: IngestionConfig,
    pub sentiment: SentimentConfig,
    pub campaign: CampaignConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            kafka: None,
            topics: Topics::default(),
            segmentation: SegmentationConfig::default(),
            telemetry: TelemetryConfig::default(),
            auth: AuthConfig::default(),
            ingestion: IngestionConfig::default(),
            sentiment: SentimentConfig::default(),
            campaign: CampaignConfig::default(),
        }
    }
}

impl Config {
    /// Loads the file if given, then the environment. `database_url_for` maps the conventional
    /// `DATABASE_URL` onto that service's database when a single service is served.
    pub fn load(file: Option<&Path>, database_url_for: Option<&str>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        if let Some(service) = database_url_for {
            let key = format!("{service}.database.url");
            figment = figment.merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(move |_| key.clone().into()),
            );
        }
        // The filter sees keys split into levels but not yet lower-cased.
        figment = figment.merge(Env::prefixed("SOCIALOPS_").split("__").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            SECTIONS.iter().any(|s| {
                key == *s
                    || key
                        .strip_prefix(s)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
        }));
        figment.extract().context("invalid configuration")
    }
}

#[cfg(test)]
// figment::Jail fixes the closures' error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_with_database_url() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "socialops.toml",
                r#"
                [kafka]
                bootstrap_servers = "file:9092"
                [ingestion]
                max_clock_skew = "10m"
                "#,
            )?;
            jail.set_env("SOCIALOPS_KAFKA__BOOTSTRAP_SERVERS", "env:9092");
            jail.set_env("SOCIALOPS_INGESTION__MAX_BATCH_EVENTS", "50");
            jail.set_env("SOCIALOPS_TEST_KAFKA", "ignored:1");
            jail.set_env("DATABASE_URL", "postgres://db/ingestion");
            let config =
                Config::load(Some(Path::new("socialops.toml")), Some("ingestion")).unwrap();
            assert_eq!(config.kafka.unwrap().bootstrap_servers, "env:9092");
            assert_eq!(config.ingestion.max_clock_skew.as_secs(), 600);
            assert_eq!(config.ingestion.max_batch_events, 50);
            assert_eq!(
                config.ingestion.database.unwrap().url,
                "postgres://db/ingestion"
            );
            Ok(())
        });
    }

    #[test]
    fn sentiment_section_from_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "socialops.toml",
                r#"
                [sentiment.spike]
                min_count = 20
                [sentiment.tenants.acme]
                reply_target = "30m"
                "#,
            )?;
            jail.set_env("SOCIALOPS_SENTIMENT__SPIKE__WINDOW", "1h");
            jail.set_env("DATABASE_URL", "postgres://db/sentiment");
            let config =
                Config::load(Some(Path::new("socialops.toml")), Some("sentiment")).unwrap();
            assert_eq!(config.sentiment.spike.min_count, 20);
            assert_eq!(config.sentiment.spike.window.as_secs(), 3_600);
            assert_eq!(
                config.sentiment.tenants["acme"].reply_target.as_secs(),
                1_800
            );
            assert_eq!(
                config.sentiment.database.unwrap().url,
                "postgres://db/sentiment"
            );
            Ok(())
        });
    }

    #[test]
    fn segmentation_section_from_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "socialops.toml",
                r#"
                [segmentation]
                sweep_interval = "30s"
                [segmentation.tenants.acme]
                churn_after_days = 60
                time_zone = "Europe/Berlin"
                "#,
            )?;
            jail.set_env("SOCIALOPS_SEGMENTATION__CONSUME_BATCH", "500");
            jail.set_env("DATABASE_URL", "postgres://db/segmentation");
            let config =
                Config::load(Some(Path::new("socialops.toml")), Some("segmentation")).unwrap();
            let segmentation = config.segmentation;
            assert_eq!(segmentation.sweep_interval.as_secs(), 30);
            assert_eq!(segmentation.consume_batch, 500);
            assert_eq!(segmentation.tenants["acme"].churn_after_days, 60);
            assert_eq!(segmentation.tenants["acme"].time_zone, "Europe/Berlin");
            assert_eq!(
                segmentation.database.unwrap().url,
                "postgres://db/segmentation"
            );
            assert!(config.ingestion.database.is_none());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[ingestion]\nmax_clok_skew = \"1m\"\n")?;
            let err = Config::load(Some(Path::new("bad.toml")), None).unwrap_err();
            assert!(format!("{err:#}").contains("max_clok_skew"), "{err:#}");
            Ok(())
        });
    }
}
