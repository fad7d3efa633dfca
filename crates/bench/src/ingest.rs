//! `socialops bench ingest`: rates measured in one run against one broker, each printed with its
//! ratio to the raw rdkafka produce rate measured first.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use secrecy::{ExposeSecret, SecretString};
use socialops_auth::{BearerToken, Role, TokenStore};
use socialops_bus::{KafkaConfig, Topics};
use socialops_ingestion::{Dependencies, IngestionConfig};
use socialops_proto::Timestamp;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, Platform, SocialEvent};
use socialops_proto::ingestion::v1::IngestEventsRequest;
use socialops_proto::ingestion::v1::ingestion_service_client::IngestionServiceClient;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// A Kafka-protocol broker.
    #[arg(long, env = "SOCIALOPS_TEST_KAFKA")]
    pub kafka: String,
    /// A PostgreSQL server to create a scratch database on; the PostgreSQL rows are skipped without it.
    #[arg(long, env = "SOCIALOPS_TEST_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Events per measurement.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    #[arg(long, default_value_t = 500)]
    pub grpc_batch: usize,
    /// Raw messages per consumer batch (one transaction).
    #[arg(long, default_value_t = IngestionConfig::default().consume_batch)]
    pub consume_batch: usize,
    /// Outbox rows per relay pass.
    #[arg(long, default_value_t = IngestionConfig::default().relay_batch)]
    pub relay_batch: usize,
    /// Skip the SQLite rows.
    #[arg(long)]
    pub skip_sqlite: bool,
}

struct Row {
    name: String,
    events: usize,
    elapsed: Duration,
}

impl Row {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let kafka = KafkaConfig::new(args.kafka.clone());
    let tenant = "bench";
    let raw_topic = format!("socialops.events.raw.bench{run_id}");
    socialops_bus::ensure_topics(&kafka, &[&raw_topic], 6).await?;

    let payloads: Vec<Vec<u8>> = (0..args.events)
        .map(|i| serde_json::to_vec(&event(tenant, &format!("k-{run_id}-{i}"), i)))
        .collect::<Result<_, _>>()?;
    let mean_bytes = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len().max(1);
    println!(
        "{} JSON events of {mean_bytes} bytes on average; broker {}",
        args.events, args.kafka
    );

    let mut rows = Vec::new();
    rows.push(produce_raw(&kafka, &raw_topic, &payloads).await?);

    let data_dir = tempfile::tempdir()?;
    let backends = crate::backends(
        !args.skip_sqlite,
        args.database_url.as_deref(),
        "socialops_bench",
        data_dir.path(),
    )
    .await?;
    for (name, database) in backends {
        let suffix = format!("bench{run_id}{}", name.to_ascii_lowercase());
        let topics = Topics {
            raw: raw_topic.clone(),
            ..Topics::with_suffix(&suffix)
        };
        socialops_bus::ensure_topics(&kafka, &[&topics.events, &topics.dlq, &topics.privacy], 6)
            .await?;
        let tokens = TokenStore::default();
        let token = tokens.issue(tenant, Role::Writer);
        let config = IngestionConfig {
            grpc_listen: "127.0.0.1:0".parse()?,
            database: Some(database),
            consumer_group: format!("bench-{suffix}"),
            alias_key: Some(SecretString::from("bench")),
            consume_batch: args.consume_batch,
            relay_batch: args.relay_batch,
            ..IngestionConfig::default()
        };
        let deps = Dependencies {
            create_topics: false,
            ..Dependencies::new(
                kafka.clone(),
                topics.clone(),
                tokens,
                data_dir.path().into(),
            )
        };

        let counter = count_messages(&kafka, &topics.events, args.events).await?;
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let running = socialops_ingestion::start(&config, deps, shutdown.clone()).await?;
        let (first, last) = counter.await??;
        rows.push(Row {
            name: format!("end-to-end, {name}"),
            events: args.events,
            elapsed: last - started,
        });
        rows.push(Row {
            name: format!("  steady, {name}"),
            events: args.events - 1,
            elapsed: last - first,
        });

        let channel = socialops_grpc::connect(&format!("http://{}", running.grpc_addr)).await?;
        let mut client = IngestionServiceClient::with_interceptor(
            channel,
            BearerToken::new(token.token.expose_secret())?,
        );
        let batches: Vec<IngestEventsRequest> = (0..args.events)
            .collect::<Vec<_>>()
            .chunks(args.grpc_batch)
            .map(|chunk| IngestEventsRequest {
                events: chunk
                    .iter()
                    .map(|&i| event(tenant, &format!("g-{run_id}-{i}"), i))
                    .collect(),
            })
            .collect();
        let started = Instant::now();
        let response = client
            .ingest_event_stream(futures::stream::iter(batches))
            .await?
            .into_inner();
        let elapsed = started.elapsed();
        anyhow::ensure!(
            response.accepted as usize == args.events,
            "gRPC stream accepted {}",
            response.accepted
        );
        rows.push(Row {
            name: format!("gRPC stream, {name}"),
            events: args.events,
            elapsed,
        });

        shutdown.cancel();
        running.wait().await?;
    }

    let raw_rate = rows[0].rate();
    println!(
        "\n{:<28} {:>9} {:>9} {:>12} {:>8}",
        "measurement", "events", "seconds", "events/s", "ratio"
    );
    for row in &rows {
        println!(
            "{:<28} {:>9} {:>9.2} {:>12.0} {:>8.3}",
            row.name,
            row.events,
            row.elapsed.as_secs_f64(),
            row.rate(),
            row.rate() / raw_rate
        );
    }
    Ok(())
}

fn event(tenant: &str, event_id: &str, i: usize) -> SocialEvent {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    SocialEvent {
        event_id: event_id.to_owned(),
        tenant_id: tenant.to_owned(),
        platform: Platform::Weibo as i32,
        user_id: format!("user-{}", i % 10_000),
        occurred_at: Some(Timestamp {
            seconds: now.as_secs() as i64 - 60,
            nanos: 0,
        }),
        payload: Some(Payload::Comment(Comment {
            comment_id: format!("c-{i}"),
            post_id: format!("post-{}", i % 100),
            text: "这款面霜用了两周，敏感肌也没有泛红，保湿效果很好，会回购".to_owned(),
            author_follower_count: (i % 5_000) as u64,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The baseline: plain rdkafka, idempotent like the bus producer, every delivery awaited.
async fn produce_raw(
    kafka: &KafkaConfig,
    topic: &str,
    payloads: &[Vec<u8>],
) -> anyhow::Result<Row> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(payloads.len());
    for (i, payload) in payloads.iter().enumerate() {
        let key = format!("bench:user-{}", i % 10_000);
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        let record = FutureRecord::to(topic)
            .key(&key)
            .payload(payload)
            .headers(headers);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    for delivery in deliveries {
        delivery
            .await
            .context("delivery cancelled")?
            .map_err(|(e, _)| e)
            .context("raw produce")?;
    }
    Ok(Row {
        name: "raw rdkafka produce".into(),
        events: payloads.len(),
        elapsed: started.elapsed(),
    })
}

/// Returns once a consumer of the (empty) `topic` has its partitions assigned; the task then
/// resolves when `want` messages have been read, with the times the first and the last arrived.
async fn count_messages(
    kafka: &KafkaConfig,
    topic: &str,
    want: usize,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<(Instant, Instant)>>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set(
            "group.id",
            format!("bench-counter-{}", uuid::Uuid::new_v4()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let assigned_by = Instant::now() + Duration::from_secs(60);
    while consumer.assignment()?.count() == 0 {
        anyhow::ensure!(Instant::now() < assigned_by, "no assignment within 60 s");
        if let Ok(message) = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await
        {
            message?;
            anyhow::bail!("{topic} is not empty");
        }
    }
    Ok(tokio::spawn(async move {
        let mut first = None;
        for _ in 0..want {
            tokio::time::timeout(Duration::from_secs(120), consumer.recv())
                .await
                .context("no progress for 120 s")??;
            first.get_or_insert_with(Instant::now);
        }
        let last = Instant::now();
        Ok((first.unwrap_or(last), last))
    }))
}
