use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use socialops_auth::{Role, TokenStore};
use socialops_bus::EmbeddedBroker;
use socialops_ingestion::{DEV_ALIAS_KEY, Dependencies};
use tokio_util::sync::CancellationToken;

use crate::commands::{cancel_on_signal, spawn_metrics};
use crate::config::Config;

const DEV_TENANT: &str = "demo";
const DEV_PARTITIONS: i32 = 3;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the SQLite files live; overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// The ingestion gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    grpc_listen: SocketAddr,
    /// The segmentation gRPC address.
    #[arg(long, default_value = "127.0.0.1:50052")]
    segmentation_listen: SocketAddr,
    /// The campaign gRPC address.
    #[arg(long, default_value = "127.0.0.1:50053")]
    campaign_listen: SocketAddr,
    /// The sentiment gRPC address.
    #[arg(long, default_value = "127.0.0.1:50054")]
    sentiment_listen: SocketAddr,
    /// The Prometheus metrics address.
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics_listen: SocketAddr,
}

pub async fn run(config_file: Option<&Path>, args: DevArgs) -> anyhow::Result<()> {
    let mut config = Config::load(config_file, None)?;
    let _telemetry = socialops_telemetry::init(&config.telemetry)?;
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;

    let broker = EmbeddedBroker::start(&config.topics.all(), DEV_PARTITIONS)?;
    let tokens = TokenStore::from_config(&config.auth)?;
    let admin = tokens.issue(DEV_TENANT, Role::Admin);

    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let metrics_addr = spawn_metrics(args.metrics_listen, shutdown.clone()).await?;

    let mut ingestion_config = config.ingestion.clone();
    ingestion_config.grpc_listen = args.grpc_listen;
    ingestion_config
        .alias_key
        .get_or_insert_with(|| SecretString::from(DEV_ALIAS_KEY));
    // The embedded broker's topics exist from the start.
    let deps = Dependencies {
        create_topics: false,
        ..Dependencies::new(
            broker.kafka_config(),
            config.topics.clone(),
            tokens,
            config.data_dir.clone(),
        )
    };
    let ingestion =
        socialops_ingestion::start(&ingestion_config, deps.clone(), shutdown.clone()).await?;

    let mut segmentation_config = config.segmentation.clone();
    segmentation_config.grpc_listen = args.segmentation_listen;
    let segmentation =
        socialops_segmentation::start(&segmentation_config, deps.clone(), shutdown.clone()).await?;

    let mut sentiment_config = config.sentiment.clone();
    sentiment_config.grpc_listen = args.sentiment_listen;
    let sentiment =
        socialops_sentiment::start(&sentiment_config, deps.clone(), shutdown.clone()).await?;

    let mut campaign_config = config.campaign.clone();
    campaign_config.grpc_listen = args.campaign_listen;
    campaign_config
        .segmentation_url
        .get_or_insert_with(|| format!("http://{}", segmentation.grpc_addr));
    let campaign = socialops_campaign::start(&campaign_config, deps, shutdown.clone()).await?;

    println!("socialops dev is running (development only: the broker keeps messages in memory)");
    println!("  ingestion gRPC     http://{}", ingestion.grpc_addr);
    println!("  segmentation gRPC  http://{}", segmentation.grpc_addr);
    println!("  campaign gRPC      http://{}", campaign.grpc_addr);
    println!("  sentiment gRPC     http://{}", sentiment.grpc_addr);
    println!("  Kafka bootstrap    {}", broker.bootstrap_servers());
    println!("  metrics            http://{metrics_addr}/metrics");
    println!("  data directory     {}", config.data_dir.display());
    println!(
        "  admin token for tenant `{DEV_TENANT}`: {}",
        admin.token.expose_secret()
    );
    println!("Press Ctrl-C to stop.");

    // A service that fails cancels the shared shutdown token, which stops the others too.
    let (ingested, segmented, monitored, campaigned) = tokio::join!(
        ingestion.wait(),
        segmentation.wait(),
        sentiment.wait(),
        campaign.wait()
    );
    ingested?;
    segmented?;
    monitored?;
    campaigned?;
    drop(broker);
    Ok(())
}
