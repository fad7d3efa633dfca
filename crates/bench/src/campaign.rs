//! `socialops bench campaign`: against one broker and PostgreSQL, in one run,
//!
//! 1. the raw produce rate: `users` segment-enter profile changes produced onto the profiles topic
//!    (the baseline, and the load for what follows);
//! 2. the send decision rate: the campaign service starts on that backlog with one running campaign
//!    entered on the segment, and every change becomes a journey entry, a send decided through all
//!    the tenant's pressure rules (caps, quiet hours, ad ratio, control group) and a send record
//!    published on `socialops.campaigns.v1`, read back by a plain consumer; the rate runs from the
//!    first send read to the last, with its ratio to the raw produce rate;
//! 3. latency under background traffic: while comments from other tenants arrive on the events
//!    topic at `background_rate`, probes alternate a segment-enter change for a new user (until its
//!    send is read from `socialops.campaigns.v1`) and a direct message that matches a FAQ entry
//!    (until its reply is read there);
//! 4. a one-shot launch: a campaign whose entry is a launch starts with `launch_members` members
//!    (as the segmentation service would list them), and the clock runs from the start call until
//!    every member's send is read back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Timelike;
use clap::Args;
use prost::Message as _;
use rdkafka::Message as _;
use socialops_auth::TokenStore;
use socialops_bus::{KafkaConfig, OutgoingMessage, Producer, Topics, headers};
use socialops_campaign::domain::definition::{Format, parse};
use socialops_campaign::domain::faq::FaqEntry;
use socialops_campaign::domain::tenant::TenantSettings;
use socialops_campaign::manage::Change;
use socialops_campaign::{CampaignConfig, Dependencies};
use socialops_proto::campaigns::v1::{CampaignOutcome, campaign_outcome};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{DirectMessage, Platform, SocialEvent};
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
    /// Background events per second during the latency probes.
    #[arg(long, default_value_t = 5_000)]
    pub background_rate: u64,
    /// Latency probes, half segment entries and half FAQ questions, one every 20 ms.
    #[arg(long, default_value_t = 400)]
    pub probes: usize,
    /// Members of the one-shot launch (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub launch_members: usize,
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

const LAUNCH: &str = r#"
name = "Bench launch"
channel = "push"
kind = "content"
entry = { type = "launch", segment_id = "bench-launch" }

[[variants]]
id = "a"

[[steps]]
type = "send"
id = "hello"
text = "新品上市，会员先享。"
"#;

/// Fresh topics for a run of the campaign service, created with `partitions` each.
pub(crate) async fn campaign_topics(
    kafka: &KafkaConfig,
    run_id: &str,
    partitions: i32,
) -> anyhow::Result<Topics> {
    let topics = Topics::with_suffix(&format!("bench{run_id}"));
    socialops_bus::ensure_topics(
        kafka,
        &[
            &topics.profiles,
            &topics.events,
            &topics.alerts,
            &topics.campaigns,
            &topics.privacy,
            &topics.dlq,
        ],
        partitions,
    )
    .await?;
    Ok(topics)
}

pub async fn run(args: CampaignArgs) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let kafka = KafkaConfig::new(args.kafka.clone());
    let topics = campaign_topics(&kafka, &run_id, 6).await?;
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
    engine
        .put_faq(
            TENANT,
            &FaqEntry {
                id: "delivery".into(),
                patterns: vec![vec!["发货".into()]],
                answer: "下单后 48 小时内发货。".into(),
            },
        )
        .await?;
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

    // 3. Latency under background traffic.
    let stop = Arc::new(AtomicBool::new(false));
    let background = tokio::spawn(crate::sentiment::produce_background(
        producer.clone(),
        topics.events.clone(),
        run_id.clone(),
        args.background_rate,
        0,
        stop.clone(),
        Arc::new(AtomicU64::new(0)),
    ));
    let probes = probe(&producer, &topics, &run_id, &reader, args.probes).await;
    stop.store(true, Ordering::SeqCst);
    let (background_sent, background_for) = background.await??;
    let (mut entries, mut replies) = probes?;
    println!(
        "background traffic: {} events/s requested, {:.0} events/s produced",
        args.background_rate,
        background_sent as f64 / background_for.as_secs_f64()
    );
    for (what, latencies) in [
        ("segment enter → send read", &mut entries),
        ("FAQ question → reply read", &mut replies),
    ] {
        latencies.sort();
        let quantile = |q: f64| {
            crate::sentiment::ms(latencies[((latencies.len() - 1) as f64 * q).round() as usize])
        };
        println!(
            "{what}: {} probes, p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
            latencies.len(),
            quantile(0.5),
            quantile(0.99),
            quantile(1.0)
        );
    }

    // 4. A one-shot launch.
    if args.launch_members > 0 {
        let spec = parse(LAUNCH, Format::Toml).map_err(|e| anyhow::anyhow!("{e}"))?;
        let launch = running
            .engine
            .create_campaign(TENANT, format!("launch-{run_id}"), spec)
            .await?;
        let members: Vec<String> = (0..args.launch_members)
            .map(|i| format!("l{i:07}"))
            .collect();
        let started = Instant::now();
        running
            .engine
            .start(
                &Change {
                    tenant_id: TENANT,
                    campaign_id: &launch.campaign_id,
                    actor: "bench",
                    reason: "bench",
                },
                &members,
            )
            .await?;
        let queued = started.elapsed();
        let mut read = 0;
        while read < args.launch_members {
            let received = tokio::time::timeout(Duration::from_secs(120), reader.recv())
                .await
                .with_context(|| format!("{read} launch sends read, then none for 120 s"))??;
            let outcome = CampaignOutcome::decode(received.payload().unwrap_or_default())?;
            if let Some(campaign_outcome::Outcome::Send(send)) = outcome.outcome
                && send.campaign_id == launch.campaign_id
            {
                read += 1;
            }
        }
        let took = started.elapsed();
        println!(
            "launch to {} members: start call {:.1} s, every send read after {:.1} s ({:.0} decisions/s)",
            args.launch_members,
            queued.as_secs_f64(),
            took.as_secs_f64(),
            args.launch_members as f64 / took.as_secs_f64()
        );
    }

    let counts = running.engine.counts(TENANT, &campaign.campaign_id).await?;
    anyhow::ensure!(
        counts.num_sent == (args.users + args.probes.div_ceil(2)) as u64,
        "the store counts {} sends for {} users",
        counts.num_sent,
        args.users + args.probes.div_ceil(2)
    );
    shutdown.cancel();
    running.wait().await?;
    Ok(())
}

fn question(run_id: &str, i: usize) -> OutgoingMessage {
    let user = format!("q{i:07}");
    let event = SocialEvent {
        event_id: format!("{run_id}-q{i}"),
        tenant_id: TENANT.into(),
        platform: Platform::Wechat as i32,
        user_id: user.clone(),
        payload: Some(Payload::DirectMessage(DirectMessage {
            message_id: format!("{run_id}-m{i}"),
            conversation_id: user.clone(),
            text: "请问什么时候发货？".into(),
            ..DirectMessage::default()
        })),
        ..SocialEvent::default()
    };
    OutgoingMessage::new("", Some(format!("{TENANT}:{user}")), event.encode_to_vec())
        .header(headers::CONTENT_TYPE, headers::CONTENT_TYPE_PROTOBUF)
}

/// Sends `probes` probes, one every 20 ms, alternating a segment entry of a new user and a FAQ
/// question of another, and reads the sends they cause; returns the latencies of each kind.
async fn probe(
    producer: &Producer,
    topics: &Topics,
    run_id: &str,
    reader: &rdkafka::consumer::StreamConsumer,
    probes: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut sent_at: HashMap<String, (bool, Instant)> = HashMap::new();
    let mut entries = Vec::new();
    let mut replies = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut next = 0;
    let deadline = Duration::from_secs(120);
    let started = Instant::now();
    while entries.len() + replies.len() < probes {
        anyhow::ensure!(
            started.elapsed() < deadline,
            "{} of {probes} probes answered in {} s",
            entries.len() + replies.len(),
            deadline.as_secs()
        );
        tokio::select! {
            _ = ticker.tick(), if next < probes => {
                let (user, message) = if next % 2 == 0 {
                    let user = format!("u{:07}", 9_000_000 + next);
                    let change = OutgoingMessage {
                        topic: topics.profiles.clone(),
                        ..change(run_id, 9_000_000 + next)
                    };
                    (user, change)
                } else {
                    let question = OutgoingMessage {
                        topic: topics.events.clone(),
                        ..question(run_id, next)
                    };
                    (format!("q{next:07}"), question)
                };
                sent_at.insert(user, (next % 2 == 0, Instant::now()));
                producer.send_all(std::slice::from_ref(&message)).await?;
                next += 1;
            }
            received = tokio::time::timeout(Duration::from_secs(1), reader.recv()) => {
                let Ok(received) = received else { continue };
                let received = received?;
                let outcome = CampaignOutcome::decode(received.payload().unwrap_or_default())?;
                if !matches!(outcome.outcome, Some(campaign_outcome::Outcome::Send(_))) {
                    continue;
                }
                if let Some((entry, at)) = sent_at.remove(&outcome.user_id) {
                    if entry { entries.push(at.elapsed()) } else { replies.push(at.elapsed()) }
                }
            }
        }
    }
    Ok((entries, replies))
}
