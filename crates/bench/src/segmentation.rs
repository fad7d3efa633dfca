//! `socialops bench segmentation`, in one run against one broker:
//!
//! - the raw rdkafka consume rate of a canonical topic, then the rate at which the service folds the
//!   same topic into profiles on SQLite and PostgreSQL, with its ratio to the raw rate;
//! - on PostgreSQL, with a steady background of events flowing, the latency from publishing an
//!   event to receiving the segment enter or leave it caused on the profiles topic;
//! - on PostgreSQL, `PreviewSegment` and RFM quintile recomputation over a million profiles, the
//!   recomputation next to the same quintiles written as one `ntile` query ([`million`]).

mod million;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use secrecy::ExposeSecret;
use socialops_auth::{BearerToken, Role, TokenStore};
use socialops_bus::{KafkaConfig, OutgoingMessage, Producer, Topics};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{
    Comment, ContentClick, ContentImpression, Follow, Like, OrderPlaced, Platform, Referral,
    SocialEvent,
};
use socialops_proto::profiles::v1::ProfileChange;
use socialops_proto::profiles::v1::profile_change::Change;
use socialops_proto::segmentation::v1::CreateSegmentRequest;
use socialops_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use socialops_proto::timestamp;
use socialops_segmentation::{Dependencies, SegmentationConfig};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::consumed::Consumed;

type Client = SegmentationServiceClient<InterceptedService<Channel, BearerToken>>;

const TENANT: &str = "bench";

#[derive(Debug, Args)]
pub struct SegmentationArgs {
    /// A Kafka-protocol broker.
    #[arg(long, env = "SOCIALOPS_TEST_KAFKA")]
    pub kafka: String,
    /// A PostgreSQL server to create scratch databases on; the PostgreSQL rows, the latency and the
    /// million-profile measurements are skipped without it.
    #[arg(long, env = "SOCIALOPS_TEST_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Canonical events for the throughput measurement.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Distinct users those events are spread over.
    #[arg(long, default_value_t = 20_000)]
    pub users: usize,
    /// Canonical events per consumer batch (one transaction).
    #[arg(long, default_value_t = SegmentationConfig::default().consume_batch)]
    pub consume_batch: usize,
    /// Concurrent transactions per consumer batch on PostgreSQL.
    #[arg(long, default_value_t = SegmentationConfig::default().consume_lanes)]
    pub consume_lanes: usize,
    /// Background events per second while segment latency is measured.
    #[arg(long, default_value_t = 5_000)]
    pub background_rate: u32,
    /// Users who enter and then leave the measured segment (two latency samples each).
    #[arg(long, default_value_t = 200)]
    pub probes: usize,
    /// Profiles for PreviewSegment and RFM recomputation; 0 skips them.
    #[arg(long, default_value_t = 1_000_000)]
    pub profiles: usize,
    /// Skip the SQLite throughput row.
    #[arg(long)]
    pub skip_sqlite: bool,
    /// The service consumer's `fetch.wait.max.ms`. tansu holds every fetch response for at least half
    /// of it (Kafka answers as soon as data is there), so the librdkafka default of 500 ms alone puts
    /// 250 ms into every hop.
    #[arg(long, default_value_t = 100)]
    pub fetch_wait_ms: u32,
}

pub async fn run(args: SegmentationArgs) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let kafka = KafkaConfig::new(args.kafka.clone());
    let events_topic = format!("socialops.events.v1.bench{run_id}");
    socialops_bus::ensure_topics(&kafka, &[&events_topic], 6).await?;
    let now_us = socialops_storage::now_micros();
    let records: Vec<(String, Vec<u8>)> = (0..args.events)
        .map(|i| {
            let at_us = now_us - (args.events - i) as i64 * 1_000;
            let event = mixed_event(i, args.users, at_us);
            (format!("{TENANT}:{}", event.user_id), event.encode_to_vec())
        })
        .collect();
    let mean_bytes = records.iter().map(|(_, p)| p.len()).sum::<usize>() / records.len().max(1);
    produce(&kafka, &events_topic, &records).await?;
    println!(
        "{} canonical events ({mean_bytes} bytes on average, protobuf) over {} users on {events_topic}; broker {}",
        args.events, args.users, args.kafka
    );

    let raw = consume_raw(&kafka, &events_topic, args.events).await?;
    let raw_rate = args.events as f64 / raw.as_secs_f64();
    println!(
        "raw rdkafka consume: {:.0} events/s ({:.2} s from first to last message)",
        raw_rate,
        raw.as_secs_f64()
    );

    let data_dir = tempfile::tempdir()?;
    let backends = crate::backends(
        !args.skip_sqlite,
        args.database_url.as_deref(),
        "segmentation_bench",
        data_dir.path(),
    )
    .await?;
    let mut rows = Vec::new();
    for (name, database) in backends {
        let suffix = format!("bench{run_id}{}", name.to_ascii_lowercase());
        let topics = Topics {
            events: events_topic.clone(),
            ..Topics::with_suffix(&suffix)
        };
        let tokens = TokenStore::default();
        let config = SegmentationConfig {
            grpc_listen: "127.0.0.1:0".parse()?,
            database: Some(database.clone()),
            consumer_group: format!("bench-{suffix}"),
            consume_batch: args.consume_batch,
            consume_lanes: args.consume_lanes,
            ..SegmentationConfig::default()
        };
        let mut service_kafka = kafka.clone();
        service_kafka
            .properties
            .insert("fetch.wait.max.ms".into(), args.fetch_wait_ms.to_string());
        let deps = Dependencies::new(
            service_kafka,
            topics.clone(),
            tokens.clone(),
            data_dir.path().into(),
        );
        let consumed = Consumed::new(&config.consumer_group, &events_topic);
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let running = socialops_segmentation::start(&config, deps, shutdown.clone()).await?;
        let progress = wait_consumed(&consumed, args.events).await?;
        let span = progress.last - progress.first;
        let counted = args.events - progress.done_at_first;
        let rate = counted as f64 / span.as_secs_f64();
        println!(
            "profile updates, {name}: {rate:.0} events/s, {:.3} of raw ({counted} events in {:.2} s, from the first committed batch, whose {} events are not counted, to the last; {:.2} s from start-up)",
            rate / raw_rate,
            span.as_secs_f64(),
            progress.done_at_first,
            (progress.last - started).as_secs_f64()
        );
        rows.push((format!("profile updates, {name}"), rate));

        if name == "PostgreSQL" {
            let token = tokens.issue(TENANT, Role::Writer);
            let client = connect(running.grpc_addr, token.token.expose_secret()).await?;
            latency(&kafka, &topics, client, &args).await?;
            if args.profiles > 0 {
                let token = tokens.issue(million::TENANT, Role::Writer);
                let client = connect(running.grpc_addr, token.token.expose_secret()).await?;
                million::run(&database, client, args.profiles, &config).await?;
            }
        }
        shutdown.cancel();
        running.wait().await?;
    }

    println!("\n{:<34} {:>12} {:>8}", "measurement", "events/s", "ratio");
    println!(
        "{:<34} {:>12.0} {:>8.3}",
        "raw rdkafka consume", raw_rate, 1.0
    );
    for (name, rate) in rows {
        println!("{name:<34} {rate:>12.0} {:>8.3}", rate / raw_rate);
    }
    Ok(())
}

async fn connect(addr: std::net::SocketAddr, token: &str) -> anyhow::Result<Client> {
    let channel = socialops_grpc::connect(&format!("http://{addr}")).await?;
    Ok(SegmentationServiceClient::with_interceptor(
        channel,
        BearerToken::new(token)?,
    ))
}

/// The `i`-th event of a stream: comments, likes, impressions, clicks, follows and orders in the
/// proportions 8:5:3:2:1:1, from `users` users.
fn mixed_event(i: usize, users: usize, at_us: i64) -> SocialEvent {
    let user = format!("user-{:07}", (i * 7_919) % users.max(1));
    let payload = match i % 20 {
        0..=7 => Payload::Comment(Comment {
            comment_id: format!("c-{i}"),
            post_id: format!("post-{}", i % 50),
            text: "这款面霜用了两周，敏感肌也没有泛红，会回购".to_owned(),
            ..Default::default()
        }),
        8..=12 => Payload::Like(Like {
            post_id: format!("post-{}", i % 50),
        }),
        13..=15 => Payload::ContentImpression(ContentImpression {
            content_id: format!("post-{}", i % 50),
            category: "skincare".to_owned(),
        }),
        16..=17 => Payload::ContentClick(ContentClick {
            content_id: format!("post-{}", i % 50),
            category: "skincare".to_owned(),
            ..Default::default()
        }),
        18 => Payload::Follow(Follow {
            account_id: "brand".to_owned(),
        }),
        _ => Payload::OrderPlaced(OrderPlaced {
            order_id: format!("o-{i}"),
            amount_cents: 1_000 + (i as i64 * 37) % 50_000,
            currency: "CNY".to_owned(),
            ..Default::default()
        }),
    };
    SocialEvent {
        event_id: format!("ev-{i}"),
        tenant_id: TENANT.to_owned(),
        platform: Platform::Douyin as i32,
        user_id: user,
        occurred_at: Some(timestamp(at_us)),
        payload: Some(payload),
        ..Default::default()
    }
}

async fn produce(
    kafka: &KafkaConfig,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut deliveries = Vec::with_capacity(records.len());
    for (key, payload) in records {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    for delivery in deliveries {
        delivery
            .await
            .context("delivery cancelled")?
            .map_err(|(e, _)| e)
            .context("produce")?;
    }
    Ok(())
}

/// The baseline: a plain rdkafka consumer reading `want` messages, timed from the first message to
/// the last (the group join before the first is not part of a rate).
async fn consume_raw(kafka: &KafkaConfig, topic: &str, want: usize) -> anyhow::Result<Duration> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("group.id", format!("bench-raw-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut first = None;
    let mut bytes = 0;
    for _ in 0..want {
        let message = tokio::time::timeout(Duration::from_secs(120), consumer.recv())
            .await
            .context("no message for 120 s")??;
        first.get_or_insert_with(Instant::now);
        bytes += message.payload().map_or(0, <[u8]>::len);
    }
    anyhow::ensure!(bytes > 0, "empty messages");
    Ok(first.map_or(Duration::ZERO, |f| f.elapsed()))
}

/// When the service's consumer was first seen to have handled a batch, how many events it had
/// handled by then, and when it had handled the last.
struct Progress {
    first: Instant,
    done_at_first: usize,
    last: Instant,
}

/// Reads the consumer's counter every 10 ms until `want` events are handled.
async fn wait_consumed(consumed: &Consumed, want: usize) -> anyhow::Result<Progress> {
    let started = Instant::now();
    let mut first = None;
    loop {
        let done = usize::try_from(consumed.count())?;
        let now = Instant::now();
        if done > 0 && first.is_none() {
            // What the first committed batch (or batches) held: handled before the clock started.
            first = Some((now, done));
        }
        if let Some((first, done_at_first)) = first
            && done >= want
        {
            return Ok(Progress {
                first,
                done_at_first,
                last: now,
            });
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "events not processed after 900 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the latency probe waits for: the user's entering or leaving.
type Arrivals = Arc<Mutex<HashMap<(String, bool), Instant>>>;

/// Publishes pairs of referrals for fresh users (the first puts them in a `count.referral = 1`
/// segment, the second takes them out) while `background_rate` other events per second flow, and
/// reports the time from publishing each referral to receiving its enter or leave.
async fn latency(
    kafka: &KafkaConfig,
    topics: &Topics,
    mut client: Client,
    args: &SegmentationArgs,
) -> anyhow::Result<()> {
    let segment = client
        .create_segment(CreateSegmentRequest {
            name: "referred once".into(),
            rule: "count.referral = 1".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let arrivals: Arrivals = Arc::default();
    let stop = CancellationToken::new();
    let watcher = {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.bootstrap_servers)
            .set(
                "group.id",
                format!("bench-latency-{}", uuid::Uuid::new_v4()),
            )
            // From the start: tansu's end offset can point inside a batch, where it serves nothing.
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", args.fetch_wait_ms.to_string())
            .create()?;
        consumer.subscribe(&[&topics.profiles])?;
        let consumer = Arc::new(consumer);
        // Join the group and read what is already on the topic, until a second passes with nothing.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            anyhow::ensure!(
                Instant::now() < deadline,
                "profiles topic not caught up in 120 s"
            );
            let quiet = tokio::time::timeout(Duration::from_secs(1), consumer.recv())
                .await
                .is_err();
            if quiet && consumer.assignment()?.count() > 0 {
                break;
            }
        }
        let (arrivals, stop, segment_id) = (arrivals.clone(), stop.clone(), segment.segment_id);
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => return,
                    message = consumer.recv() => message,
                };
                let Ok(message) = message else { continue };
                let at = Instant::now();
                let Ok(change) = ProfileChange::decode(message.payload().unwrap_or_default())
                else {
                    continue;
                };
                let entered = match &change.change {
                    Some(Change::SegmentEntered(s)) if s.segment_id == segment_id => true,
                    Some(Change::SegmentLeft(s)) if s.segment_id == segment_id => false,
                    _ => continue,
                };
                arrivals
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert((change.user_id, entered), at);
            }
        })
    };

    let producer = Producer::new(kafka)?;
    let background = {
        let (producer, topic, stop) = (producer.clone(), topics.events.clone(), stop.clone());
        let (rate, users) = (args.background_rate as usize, args.users);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            let mut sent = 0usize;
            let started = Instant::now();
            while !stop.is_cancelled() {
                ticker.tick().await;
                let due = (started.elapsed().as_secs_f64() * rate as f64) as usize;
                let now_us = socialops_storage::now_micros();
                let messages: Vec<OutgoingMessage> = (sent..due)
                    .map(|i| {
                        let mut event = mixed_event(i, users, now_us);
                        event.event_id = format!("bg-{i}");
                        message(&topic, &event)
                    })
                    .collect();
                sent = due;
                if let Err(e) = producer.send_all(&messages).await {
                    tracing::warn!(error = %e, "background produce failed");
                }
            }
            sent as f64 / started.elapsed().as_secs_f64()
        })
    };

    let hop = raw_hop_latency(kafka, args.probes * 2, args.fetch_wait_ms).await?;

    // Every probe user's first referral, then every second one, so that no two of one user share a
    // consumer batch (a batch that both adds and removes a member announces neither). Sends are not
    // awaited one by one: each is timed from the moment it is handed to the producer.
    let mut sent_at: Vec<((String, bool), Instant)> = Vec::with_capacity(args.probes * 2);
    let mut sends = Vec::with_capacity(args.probes * 2);
    let probe_run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    for (n, entered) in [(1, true), (2, false)] {
        for k in 0..args.probes {
            ticker.tick().await;
            let user = format!("probe-{probe_run}-{k}");
            let now_us = socialops_storage::now_micros();
            let event = SocialEvent {
                event_id: format!("{user}-ref-{n}"),
                tenant_id: TENANT.to_owned(),
                platform: Platform::Wechat as i32,
                user_id: user.clone(),
                occurred_at: Some(timestamp(now_us)),
                payload: Some(Payload::Referral(Referral {
                    inviter_user_id: user.clone(),
                    invitee_user_id: format!("{user}-friend-{n}"),
                    ..Default::default()
                })),
                ..Default::default()
            };
            let outgoing = message(&topics.events, &event);
            let producer = producer.clone();
            sent_at.push(((user, entered), Instant::now()));
            sends.push(tokio::spawn(
                async move { producer.send_all(&[outgoing]).await },
            ));
        }
    }
    for send in sends {
        send.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let arrived = arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        if arrived >= sent_at.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let background_rate = background.await?;
    watcher.await?;

    let arrivals = arrivals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut missing = 0;
    for (key, at) in &sent_at {
        match arrivals.get(key) {
            Some(arrived) => histogram.record(arrived.duration_since(*at).as_micros() as u64)?,
            None => missing += 1,
        }
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
    let hop_ms = |q: f64| hop.value_at_quantile(q) as f64 / 1_000.0;
    println!(
        "raw rdkafka hop (produce, then consume with fetch.wait.max.ms={}) beside the same traffic: \
         p50 {:.1} ms, p99 {:.1} ms over {} samples",
        args.fetch_wait_ms,
        hop_ms(0.5),
        hop_ms(0.99),
        hop.len()
    );
    println!(
        "segment enter/leave published after the causing event, PostgreSQL, {background_rate:.0} background events/s: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} samples ({missing} never arrived)",
        ms(0.5),
        ms(0.99),
        histogram.max() as f64 / 1_000.0,
        histogram.len()
    );
    Ok(())
}

/// The baseline for latency: one message at a time through the broker, from handing it to the bus
/// producer to a plain consumer receiving it. The service's path is two such hops (the event in, the
/// change out) plus the work in between.
async fn raw_hop_latency(
    kafka: &KafkaConfig,
    samples: usize,
    fetch_wait_ms: u32,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let topic = format!("bench-hop-{}", uuid::Uuid::new_v4().simple());
    socialops_bus::ensure_topics(kafka, &[&topic], 6).await?;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("group.id", format!("bench-hop-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()?;
    consumer.subscribe(&[&topic])?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while consumer.assignment()?.count() == 0 {
        anyhow::ensure!(Instant::now() < deadline, "no partitions assigned in 120 s");
        let _ = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await;
    }
    let producer = Producer::new(kafka)?;
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let sender = {
        let (sent, topic) = (sent.clone(), topic.clone());
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(50));
            let mut sends = Vec::with_capacity(samples);
            for i in 0..samples {
                ticker.tick().await;
                let message = OutgoingMessage::new(&topic, Some(format!("k{i}")), i.to_string());
                let producer = producer.clone();
                sent.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(Instant::now());
                sends.push(tokio::spawn(
                    async move { producer.send_all(&[message]).await },
                ));
            }
            for send in sends {
                send.await??;
            }
            anyhow::Ok(())
        })
    };
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let deadline =
        Instant::now() + Duration::from_secs(120) + Duration::from_millis(50) * samples as u32;
    while (histogram.len() as usize) < samples && Instant::now() < deadline {
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await
        else {
            continue;
        };
        let at = Instant::now();
        let index: usize = std::str::from_utf8(message.payload().unwrap_or_default())?.parse()?;
        let sent_at = sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[index];
        histogram.record(at.duration_since(sent_at).as_micros() as u64)?;
    }
    sender.await??;
    Ok(histogram)
}

fn message(topic: &str, event: &SocialEvent) -> OutgoingMessage {
    OutgoingMessage::new(
        topic,
        Some(format!("{}:{}", event.tenant_id, event.user_id)),
        event.encode_to_vec(),
    )
}
