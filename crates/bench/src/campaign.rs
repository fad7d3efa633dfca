//! `socialops bench campaign`: against one broker and PostgreSQL, in one run,
//!
//! 1. the raw produce rate: `users` segment-enter profile changes produced onto the profiles topic
//!    (the baseline, and the load for what follows);
//! 2. the send decision rate: the campaign service starts on that backlog with one running campaign
//!    entered on the segment, and every change becomes a journey entry, a send decided through all
//!    the tenant's pressure rules (caps, quiet hours, ad ratio, control group) and a send record
//!    published on `socialops.campaigns.v1`, read back by a plain consumer; the rate runs from the
//!    first send read to the last, with its ratio to the raw produce rate.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Timelike;
use clap::Args;
use prost::Message as _;
use socialops_auth::TokenStore;
use socialops_bus::{KafkaConfig, OutgoingMessage, Producer, Topics, headers};
use socialops_campaign::domain::definition::{Format, parse};
use socialops_campaign::domain::tenant::TenantSettings;
use socialops_campaign::manage::Change;
use socialops_campaign::{CampaignConfig, Dependencies};
use socialops_proto::profiles::v1::profile_change::Change as ProfileChangeKind;
use socialops_proto::profiles::v1::{ProfileChange, SegmentEntered};
use socialops_storage::DatabaseConfig;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// A Kafka-protocol broker.
    #[arg(long, env = "SOCIALOPS_TEST_KAFKA")]
    pub kafka: String,
    /// A PostgreSQL server to create a scratch database on.
    #[arg(long, env = "SOCIALOPS_TEST_DATABASE_URL")]
    pub database_url: String,
    /// Users entering the segment, one send decision each.
    #[arg(long, default_value_t = 20_000)]
    pub users: usize,
    /// Profile changes per consumer batch (one transaction).
    #[arg(long, default_value_t = CampaignConfig::default().consume_batch)]
    pub consume_batch: usize,
}

const TENANT: &str = "bench-campaign";
const SEGMENT: &str = "bench-segment";

fn change(run_id: &str, i: usize) -> OutgoingMessage {
    let user = format!("u{i:07}");
    let change = ProfileChange {
        change_id: format!("{run_id}-{i}"),
        tenant_id: TENANT.into(),
        user_id: user.clone(),
        change: Some(ProfileChangeKind::SegmentEntered(SegmentEntered {
            segment_id: SEGMENT.into(),
            segment_name: SEGMENT.into(),
        })),
        ..ProfileChange::default()
    };
    OutgoingMessage::new("", Some(format!("{TENANT}:{user}")), change.encode_to_vec())
        .header(headers::CONTENT_TYPE, headers::CONTENT_TYPE_PROTOBUF)
}

/// Rules that every decision goes through and that let it pass: caps far above one message, the
/// quiet hours two hours from now (so the run never falls inside them), the ad ratio (the campaign
/// sends content), the control group off.
fn settings() -> anyhow::Result<TenantSettings> {
    let start = (chrono::Utc::now().hour() + 2) % 24;
    let rules = serde_json::json!({
        "caps": { "per_day": 5, "per_week": 20 },
        "quiet_hours": { "start": format!("{start:02}:00"), "end": format!("{:02}:00", (start + 1) % 24) },
        "time_zone": "UTC",
    });
    Ok(TenantSettings {
        pressure: serde_json::from_value(rules)?,
        ..TenantSettings::default()
    })
}

const DEFINITION: &str = r#"
name = "Bench welcome"
channel = "push"
kind = "content"
entry = { type = "segment_entered", segment_id = "bench-segment" }

[[variants]]
id = "a"

[[steps]]
type = "send"
id = "hello"
text = "欢迎加入会员，新人礼已到账。"
"#;

pub async fn run(args: CampaignArgs) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let kafka = KafkaConfig::new(args.kafka.clone());
    let topics = Topics::with_suffix(&format!("bench{run_id}"));
    socialops_bus::ensure_topics(
        &kafka,
        &[
            &topics.profiles,
            &topics.events,
            &topics.alerts,
            &topics.campaigns,
            &topics.privacy,
            &topics.dlq,
        ],
        6,
    )
    .await?;
    let database = DatabaseConfig {
        url: socialops_storage::create_scratch_postgres(&args.database_url, "socialops_bench")
            .await?,
        max_connections: 8,
    };
    let data_dir = tempfile::tempdir()?;
    let config = CampaignConfig {
        grpc_listen: "127.0.0.1:0".parse()?,
        database: Some(database),
        consumer_group: format!("bench-campaign-{run_id}"),
        consume_batch: args.consume_batch,
        ..CampaignConfig::default()
    };
    let deps = Dependencies {
        create_topics: false,
        ..Dependencies::new(
            kafka.clone(),
            topics.clone(),
            TokenStore::default(),
            data_dir.path().into(),
        )
    };

    // The campaign and the rules exist before the backlog is read: a first start on empty topics.
    let shutdown = CancellationToken::new();
    let running = socialops_campaign::start(&config, deps.clone(), shutdown.clone()).await?;
    let engine = running.engine.clone();
    engine.set_settings(TENANT, &settings()?).await?;
    let spec = parse(DEFINITION, Format::Toml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let campaign = engine
        .create_campaign(TENANT, format!("bench-{run_id}"), spec)
        .await?;
    engine
        .start(
            &Change {
                tenant_id: TENANT,
                campaign_id: &campaign.campaign_id,
                actor: "bench",
                reason: "bench",
            },
            &[],
        )
        .await?;
    shutdown.cancel();
    running.wait().await?;

    // 1. Raw produce.
    let producer = Producer::new(&kafka)?;
    let messages: Vec<OutgoingMessage> = (0..args.users)
        .map(|i| OutgoingMessage {
            topic: topics.profiles.clone(),
            ..change(&run_id, i)
        })
        .collect();
    let started = Instant::now();
    for chunk in messages.chunks(10_000) {
        producer.send_all(chunk).await?;
    }
    let produce_rate = args.users as f64 / started.elapsed().as_secs_f64();
    println!(
        "raw produce: {} profile changes at {produce_rate:.0}/s; broker {}",
        args.users, args.kafka
    );

    // 2. Decisions, published.
    let reader = crate::sentiment::consumer(&kafka, &topics.campaigns)?;
    let shutdown = CancellationToken::new();
    let running = socialops_campaign::start(&config, deps, shutdown.clone()).await?;
    let mut first: Option<Instant> = None;
    let mut read = 0;
    while read < args.users {
        tokio::time::timeout(Duration::from_secs(120), reader.recv())
            .await
            .with_context(|| format!("{read} sends read, then none for 120 s"))??;
        first.get_or_insert_with(Instant::now);
        read += 1;
    }
    let first = first.context("no send read")?;
    let decision_rate = (args.users - 1) as f64 / first.elapsed().as_secs_f64();
    println!(
        "send decisions, PostgreSQL: {} published at {decision_rate:.0}/s, {:.3} of raw produce",
        args.users,
        decision_rate / produce_rate
    );
    let counts = running.engine.counts(TENANT, &campaign.campaign_id).await?;
    anyhow::ensure!(
        counts.num_sent == args.users as u64,
        "the store counts {} sends for {} users",
        counts.num_sent,
        args.users
    );
    shutdown.cancel();
    running.wait().await?;
    Ok(())
}
