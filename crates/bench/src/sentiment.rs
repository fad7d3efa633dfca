//! `socialops bench sentiment`: against one broker and PostgreSQL, in one run,
//!
//! 1. the consume rate: canonical events pre-loaded on a topic, read by plain rdkafka (the baseline)
//!    and then handled by the sentiment service (score, match, count, store, offsets), each rate with
//!    its ratio to the baseline;
//! 2. alert latency: with background traffic produced at a steady rate, each trial publishes the
//!    mentions just short of a spike, waits until they are handled, then publishes the mention that
//!    crosses the threshold and times it until its crisis alert is read back from the alerts topic.
//!
//! The watchlists are created through the gRPC API by a first run of the service on the still empty
//! topic, so that they exist before the measured run reads its first event; progress is the
//! service's consumer counter ([`Consumed`]) and, within a trial, the watchlist's sentiment timeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use secrecy::ExposeSecret;
use socialops_auth::{BearerToken, Role, TokenStore};
use socialops_bus::{KafkaConfig, OutgoingMessage, Producer, Topics, headers};
use socialops_proto::Timestamp;
use socialops_proto::alerts::v1::{AlertKind, CrisisAlert};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, Platform, SocialEvent};
use socialops_proto::sentiment::v1::sentiment_service_client::SentimentServiceClient;
use socialops_proto::sentiment::v1::{
    CreateWatchlistRequest, GetSentimentTimelineRequest, Label, ScoreTextsRequest,
};
use socialops_sentiment::{Dependencies, SentimentConfig};
use socialops_storage::DatabaseConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::consumed::Consumed;

type Client = SentimentServiceClient<InterceptedService<Channel, BearerToken>>;

#[derive(Debug, Args)]
pub struct SentimentArgs {
    /// A Kafka-protocol broker.
    #[arg(long, env = "SOCIALOPS_TEST_KAFKA")]
    pub kafka: String,
    /// A PostgreSQL server to create a scratch database on.
    #[arg(long, env = "SOCIALOPS_TEST_DATABASE_URL")]
    pub database_url: String,
    /// Events pre-loaded for the consume-rate measurement.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Background events per second during the latency trials.
    #[arg(long, default_value_t = 5_000)]
    pub background_rate: u64,
    /// Latency trials: each opens one crisis.
    #[arg(long, default_value_t = 200)]
    pub trials: usize,
    /// Extra librdkafka settings for every client of the run, `KEY=VALUE`, repeatable (e.g.
    /// `fetch.wait.max.ms=10`).
    #[arg(long = "kafka-property", value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    /// Canonical events per consumer batch (one transaction).
    #[arg(long, default_value_t = SentimentConfig::default().consume_batch)]
    pub consume_batch: usize,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

const BACKGROUND_TENANTS: usize = 20;
const TRIAL_TENANT: &str = "bench-alerts";
/// Mentions that match a background watchlist, all positive, so that background traffic opens no
/// crisis; the rest match nothing and carry every label.
const MATCHING: &[&str] = &[
    "积雪草精华很好用，敏感肌也不泛红，会回购",
    "积雪草精华吸收快，效果不错，推荐",
    "积雪草精华太好用了，皮肤状态超级好，爱了",
];
const OTHER: &[&str] = &[
    "这款面霜用了两周，保湿效果很好，会回购",
    "物流太慢了，等了一个星期才到",
    "请问什么时候补货",
    "包装很精致，送朋友很合适",
    "客服态度很差，问了半天没人理",
];

fn now_ts() -> Timestamp {
    let now = socialops_storage::now_micros();
    Timestamp {
        seconds: now / 1_000_000,
        nanos: 0,
    }
}

fn comment(tenant: &str, event_id: String, user: String, text: &str, reach: u64) -> SocialEvent {
    SocialEvent {
        event_id: event_id.clone(),
        tenant_id: tenant.to_owned(),
        platform: Platform::Weibo as i32,
        user_id: user,
        occurred_at: Some(now_ts()),
        payload: Some(Payload::Comment(Comment {
            comment_id: event_id,
            post_id: "post-1".into(),
            text: text.to_owned(),
            author_follower_count: reach,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn background_event(run_id: &str, i: u64) -> SocialEvent {
    let tenant = format!("bench-bg-{}", i % BACKGROUND_TENANTS as u64);
    let text = if i.is_multiple_of(5) {
        MATCHING[(i / 5) as usize % MATCHING.len()]
    } else {
        OTHER[i as usize % OTHER.len()]
    };
    comment(
        &tenant,
        format!("bg-{run_id}-{i}"),
        format!("u-{}", i % 50_000),
        text,
        i % 3_000,
    )
}

pub(crate) fn message(topic: &str, event: &SocialEvent) -> OutgoingMessage {
    OutgoingMessage::new(
        topic,
        Some(format!("{}:{}", event.tenant_id, event.user_id)),
        event.encode_to_vec(),
    )
    .header(headers::CONTENT_TYPE, headers::CONTENT_TYPE_PROTOBUF)
}

/// A plain consumer of `topic` from its start, under a group of its own.
pub(crate) fn consumer(kafka: &KafkaConfig, topic: &str) -> anyhow::Result<StreamConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("group.id", format!("bench-reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    let consumer: StreamConsumer = config.create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

pub async fn run(args: SentimentArgs) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let mut kafka = KafkaConfig::new(args.kafka.clone());
    kafka
        .properties
        .extend(args.kafka_properties.iter().cloned());
    let topics = Topics::with_suffix(&format!("bench{run_id}"));
    socialops_bus::ensure_topics(
        &kafka,
        &[&topics.events, &topics.alerts, &topics.privacy, &topics.dlq],
        6,
    )
    .await?;
    let producer = Producer::new(&kafka)?;
    let trial_text = |i: usize| format!("SKU{i:04}用了三天就过敏，脸又红又痒，太差了");

    let database = DatabaseConfig {
        url: socialops_storage::create_scratch_postgres(&args.database_url, "socialops_bench")
            .await?,
        max_connections: 8,
    };
    let data_dir = tempfile::tempdir()?;
    let tokens = TokenStore::default();
    let config = SentimentConfig {
        grpc_listen: "127.0.0.1:0".parse()?,
        database: Some(database),
        consumer_group: format!("bench-sentiment-{run_id}"),
        consume_batch: args.consume_batch,
        ..SentimentConfig::default()
    };
    let deps = Dependencies {
        create_topics: false,
        ..Dependencies::new(
            kafka.clone(),
            topics.clone(),
            tokens.clone(),
            data_dir.path().into(),
        )
    };
    let trial_watchlists = set_up(&config, deps.clone(), &tokens, args.trials, &trial_text).await?;

    // 1. Consume rate.
    let preload: Vec<OutgoingMessage> = (0..args.events as u64)
        .map(|i| message(&topics.events, &background_event(&run_id, i)))
        .collect();
    for chunk in preload.chunks(10_000) {
        producer.send_all(chunk).await?;
    }
    println!(
        "{} canonical comment events pre-loaded; broker {}",
        args.events, args.kafka
    );
    let raw = consumer(&kafka, &topics.events)?;
    let mut read = 0;
    let started = Instant::now();
    while read < args.events {
        tokio::time::timeout(Duration::from_secs(60), raw.recv())
            .await
            .context("raw consume made no progress for 60 s")??;
        read += 1;
    }
    let raw_rate = args.events as f64 / started.elapsed().as_secs_f64();
    drop(raw);

    let consumed = Consumed::new(&config.consumer_group, &topics.events);
    let shutdown = CancellationToken::new();
    let running = socialops_sentiment::start(&config, deps, shutdown.clone()).await?;
    let total_processed = || usize::try_from(consumed.count());
    let mut first: Option<(Instant, usize)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = total_processed()?;
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done));
        }
        if done >= args.events {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "service consumed {done} in 600 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (since, already) = first.context("nothing consumed")?;
    let service_rate = (args.events - already) as f64 / since.elapsed().as_secs_f64();

    // 2. Alert latency under background traffic.
    let trial_client = connect(running.grpc_addr, &tokens, TRIAL_TENANT, Role::Reader).await?;
    let alerts = read_alerts(&kafka, &topics.alerts)?;
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicU64::new(0));
    let background = tokio::spawn(produce_background(
        producer.clone(),
        topics.events.clone(),
        run_id.clone(),
        args.background_rate,
        args.events as u64,
        stop.clone(),
        produced.clone(),
    ));
    let trials = run_trials(
        &producer,
        &topics.events,
        trial_client,
        &trial_watchlists,
        alerts,
        &trial_text,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let background_stats = background.await??;
    let latencies = trials?;
    let published = args.events as u64 + background_stats.0 + latencies.len() as u64 * 10;
    let unhandled = published.saturating_sub(total_processed()? as u64);
    shutdown.cancel();
    running.wait().await?;

    let mut totals: Vec<Duration> = latencies.iter().map(|t| t.total).collect();
    let mut detections: Vec<Duration> = latencies.iter().map(|t| t.to_detection).collect();
    totals.sort();
    detections.sort();
    let quantile =
        |sorted: &[Duration], q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!("\n{:<44} {:>12} {:>8}", "consume", "events/s", "ratio");
    println!(
        "{:<44} {:>12.0} {:>8.3}",
        "raw rdkafka consume", raw_rate, 1.0
    );
    println!(
        "{:<44} {:>12.0} {:>8.3}",
        "sentiment service (PostgreSQL)",
        service_rate,
        service_rate / raw_rate
    );
    println!(
        "\nalert latency over {} crises, threshold-crossing mention produced → alert read back",
        latencies.len()
    );
    println!(
        "background traffic: {} events/s requested, {:.0} events/s produced ({} in {:.1} s); \
         not yet handled when the trials ended: {unhandled}",
        args.background_rate,
        background_stats.0 as f64 / background_stats.1.as_secs_f64(),
        background_stats.0,
        background_stats.1.as_secs_f64(),
    );
    println!(
        "until the alert is read back: p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        ms(quantile(&totals, 0.5)),
        ms(quantile(&totals, 0.99)),
        ms(*totals.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "until the service detects the crisis: p50 {:.1} ms   p99 {:.1} ms",
        ms(quantile(&detections, 0.5)),
        ms(quantile(&detections, 0.99)),
    );
    Ok(())
}

/// Runs the service once on the empty topic, under a consumer group of its own, to check that the
/// trial text scores negative and to create the watchlists: one per background tenant, matching the
/// positive mentions of the background traffic, and one per trial. Returns the trials' watchlist ids
/// in trial order.
async fn set_up(
    config: &SentimentConfig,
    deps: Dependencies,
    tokens: &TokenStore,
    trials: usize,
    trial_text: &impl Fn(usize) -> String,
) -> anyhow::Result<Vec<String>> {
    let config = SentimentConfig {
        consumer_group: format!("{}-setup", config.consumer_group),
        ..config.clone()
    };
    let shutdown = CancellationToken::new();
    let running = socialops_sentiment::start(&config, deps, shutdown.clone()).await?;

    let mut client = connect(running.grpc_addr, tokens, TRIAL_TENANT, Role::Writer).await?;
    let scores = client
        .score_texts(ScoreTextsRequest {
            texts: vec![trial_text(0)],
        })
        .await?
        .into_inner()
        .scores;
    anyhow::ensure!(
        scores.first().map(|s| s.label) == Some(Label::Negative as i32),
        "the trial text no longer scores negative"
    );
    for t in 0..BACKGROUND_TENANTS {
        let tenant = format!("bench-bg-{t}");
        let mut client = connect(running.grpc_addr, tokens, &tenant, Role::Writer).await?;
        create_watchlist(&mut client, "积雪草精华", "积雪草精华").await?;
    }
    let mut watchlist_ids = Vec::with_capacity(trials);
    for i in 0..trials {
        let sku = format!("SKU{i:04}");
        watchlist_ids.push(create_watchlist(&mut client, &sku, &sku).await?);
    }

    shutdown.cancel();
    running.wait().await?;
    Ok(watchlist_ids)
}

async fn connect(
    addr: std::net::SocketAddr,
    tokens: &TokenStore,
    tenant: &str,
    role: Role,
) -> anyhow::Result<Client> {
    let token = tokens.issue(tenant, role);
    let channel = socialops_grpc::connect(&format!("http://{addr}")).await?;
    Ok(SentimentServiceClient::with_interceptor(
        channel,
        BearerToken::new(token.token.expose_secret())?,
    ))
}

/// Creates a watchlist of one product in the client's tenant; returns its id.
async fn create_watchlist(
    client: &mut Client,
    name: &str,
    product: &str,
) -> anyhow::Result<String> {
    let watchlist = client
        .create_watchlist(CreateWatchlistRequest {
            name: name.to_owned(),
            products: vec![product.to_owned()],
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(watchlist.watchlist_id)
}

/// The watchlist's mentions the service has handled, from its sentiment timeline.
async fn mentions_handled(client: &mut Client, watchlist_id: &str) -> anyhow::Result<u64> {
    let hours = client
        .get_sentiment_timeline(GetSentimentTimelineRequest {
            watchlist_id: watchlist_id.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .hours;
    Ok(hours
        .iter()
        .map(|h| h.negative + h.neutral + h.positive)
        .sum())
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Produces background events at `rate` per second in 10 ms steps until `stop`; returns how many it
/// produced and for how long.
pub(crate) async fn produce_background(
    producer: Producer,
    topic: String,
    run_id: String,
    rate: u64,
    first: u64,
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicU64>,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut next = first;
    while !stop.load(Ordering::SeqCst) {
        ticker.tick().await;
        let due = first + rate * started.elapsed().as_millis() as u64 / 1_000;
        let batch: Vec<OutgoingMessage> = (next..due)
            .map(|i| message(&topic, &background_event(&run_id, i)))
            .collect();
        next = due;
        // Sent without waiting for the acknowledgements, so a slow delivery does not pause the rate.
        let producer = producer.clone();
        let produced = produced.clone();
        tokio::spawn(async move {
            if producer.send_all(&batch).await.is_ok() {
                produced.fetch_add(batch.len() as u64, Ordering::SeqCst);
            }
        });
    }
    Ok((next - first, started.elapsed()))
}

/// An alert read back: its watchlist, kind, when the service detected the crisis (wall clock, µs) and
/// when it was read.
type ReadAlert = (String, i32, i64, Instant);

/// Alerts read from the topic as they arrive.
fn read_alerts(
    kafka: &KafkaConfig,
    topic: &str,
) -> anyhow::Result<mpsc::UnboundedReceiver<ReadAlert>> {
    let consumer = consumer(kafka, topic)?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(message) = consumer.recv().await {
            let read_at = Instant::now();
            if let Ok(alert) = CrisisAlert::decode(message.payload().unwrap_or_default()) {
                let detected_at_us =
                    socialops_proto::micros_of(alert.detected_at.as_ref()).unwrap_or(0);
                if tx
                    .send((alert.watchlist_id, alert.kind, detected_at_us, read_at))
                    .is_err()
                {
                    break;
                }
            }
        }
    });
    Ok(rx)
}

/// One trial's latency, and the part of it until the service detected the crisis (the rest is the
/// commit, the outbox relay, the broker and the reader).
struct Trial {
    total: Duration,
    to_detection: Duration,
}

async fn run_trials(
    producer: &Producer,
    topic: &str,
    mut client: Client,
    watchlist_ids: &[String],
    mut alerts: mpsc::UnboundedReceiver<ReadAlert>,
    text: &impl Fn(usize) -> String,
) -> anyhow::Result<Vec<Trial>> {
    let mut latencies = Vec::with_capacity(watchlist_ids.len());
    for (trial, watchlist_id) in watchlist_ids.iter().enumerate() {
        let mention = |n: usize| {
            comment(
                TRIAL_TENANT,
                format!("trial-{trial}-{n}"),
                format!("t-{trial}-{n}"),
                &text(trial),
                100,
            )
        };
        let short: Vec<OutgoingMessage> = (0..9).map(|n| message(topic, &mention(n))).collect();
        let before = mentions_handled(&mut client, watchlist_id).await?;
        producer.send_all(&short).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while mentions_handled(&mut client, watchlist_id).await? < before + 9 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "trial {trial}: mentions not handled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let crossing = message(topic, &mention(9));
        let sent_at = Instant::now();
        let sent_at_us = socialops_storage::now_micros();
        producer.send(&crossing).await?;
        let (detected_at_us, read_at) = loop {
            let (watchlist, kind, detected_at_us, read_at) =
                tokio::time::timeout(Duration::from_secs(60), alerts.recv())
                    .await
                    .with_context(|| format!("trial {trial}: no alert in 60 s"))?
                    .context("alert reader stopped")?;
            if &watchlist == watchlist_id && kind == AlertKind::Opened as i32 {
                break (detected_at_us, read_at);
            }
        };
        latencies.push(Trial {
            total: read_at - sent_at,
            to_detection: Duration::from_micros(
                u64::try_from(detected_at_us - sent_at_us).unwrap_or(0),
            ),
        });
    }
    Ok(latencies)
}
