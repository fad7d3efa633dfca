use std::path::Path;

use anyhow::Context;
use clap::{Args, ValueEnum};
use socialops_auth::TokenStore;
use socialops_ingestion::Dependencies;
use tokio_util::sync::CancellationToken;

use crate::commands::{cancel_on_signal, spawn_metrics};
use crate::config::Config;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Service {
    Ingestion,
    Segmentation,
    Campaign,
    Sentiment,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    service: Service,
}

pub async fn run(config_file: Option<&Path>, args: ServeArgs) -> anyhow::Result<()> {
    let service_name = match args.service {
        Service::Segmentation => "segmentation",
        Service::Ingestion => "ingestion",
        Service::Campaign => "campaign",
        Service::Sentiment => "sentiment",
    };
    let config = Config::load(config_file, Some(service_name))?;
    let _telemetry = socialops_telemetry::init(&config.telemetry)?;
    let kafka = config
        .kafka
        .clone()
        .context("kafka.bootstrap_servers is required (SOCIALOPS_KAFKA__BOOTSTRAP_SERVERS)")?;
    let tokens = TokenStore::from_config(&config.auth)?;

    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    if let Some(addr) = config.telemetry.metrics_listen {
        let bound = spawn_metrics(addr, shutdown.clone()).await?;
        tracing::info!(%bound, "metrics endpoint listening");
    }

    match args.service {
        Service::Ingestion => {
            anyhow::ensure!(
                config.ingestion.database.is_some(),
                "ingestion needs a database: set DATABASE_URL or ingestion.database.url"
            );
            let deps = Dependencies::new(
                kafka,
                config.topics.clone(),
                tokens,
                config.data_dir.clone(),
            );
            let running = socialops_ingestion::start(&config.ingestion, deps, shutdown).await?;
            running.wait().await?;
        }
        Service::Sentiment => {
            anyhow::ensure!(
                config.sentiment.database.is_some(),
                "sentiment needs a database: set DATABASE_URL or sentiment.database.url"
            );
            let deps = socialops_sentiment::Dependencies::new(
                kafka,
                config.topics.clone(),
                tokens,
                config.data_dir.clone(),
            );
            let running = socialops_sentiment::start(&config.sentiment, deps, shutdown).await?;
            running.wait().await?;
        }
        Service::Campaign => {
            anyhow::ensure!(
                config.campaign.database.is_some(),
                "campaign needs a database: set DATABASE_URL or campaign.database.url"
            );
            let deps = socialops_campaign::Dependencies::new(
                kafka,
                config.topics.clone(),
                tokens,
                config.data_dir.clone(),
            );
            let running = socialops_campaign::start(&config.campaign, deps, shutdown).await?;
            running.wait().await?;
        }
        Service::Segmentation => {
            anyhow::ensure!(
                config.segmentation.database.is_some(),
                "segmentation needs a database: set DATABASE_URL or segmentation.database.url"
            );
            let deps = socialops_segmentation::Dependencies::new(
                kafka,
                config.topics.clone(),
                tokens,
                config.data_dir.clone(),
            );
            let running =
                socialops_segmentation::start(&config.segmentation, deps, shutdown).await?;
            running.wait().await?;
        }
    }
    Ok(())
}
