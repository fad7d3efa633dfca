//! The ingestion service killed with SIGKILL in the middle of a stream and restarted: every accepted
//! event reaches `socialops.events.v1`, nothing is stored twice, and only events whose delivery was not
//! yet confirmed can be published again.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use socialops_bus::{KafkaConfig, Topics};
use socialops_proto::Timestamp;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, Platform, SocialEvent};
use socialops_storage::testing::required_env;
use socialops_storage::{DatabaseConfig, Db, Row};

const NUM_EVENTS: usize = 30_000;
const RELAY_BATCH: usize = 500;

fn serve(kafka: &str, topics: &Topics, database_url: &str, group: &str) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_socialops"));
    command
        .args(["serve", "ingestion"])
        .env("SOCIALOPS_KAFKA__BOOTSTRAP_SERVERS", kafka)
        .env("DATABASE_URL", database_url)
        .env("SOCIALOPS_INGESTION__ALIAS_KEY", "crash-test")
        .env("SOCIALOPS_INGESTION__GRPC_LISTEN", "127.0.0.1:0")
        .env("SOCIALOPS_INGESTION__CONSUMER_GROUP", group)
        .env("SOCIALOPS_INGESTION__CONSUME_BATCH", "250")
        .env("SOCIALOPS_INGESTION__RELAY_BATCH", RELAY_BATCH.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    for (name, topic) in [
        ("RAW", &topics.raw),
        ("EVENTS", &topics.events),
        ("DLQ", &topics.dlq),
        ("PROFILES", &topics.profiles),
        ("CAMPAIGNS", &topics.campaigns),
        ("ALERTS", &topics.alerts),
        ("PRIVACY", &topics.privacy),
    ] {
        command.env(format!("SOCIALOPS_TOPICS__{name}"), topic);
    }
    command.spawn().expect("socialops binary starts")
}

fn event(i: usize) -> SocialEvent {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    SocialEvent {
        event_id: format!("crash-{i}"),
        tenant_id: "crash".into(),
        platform: Platform::Douyin as i32,
        user_id: format!("u-{}", i % 500),
        occurred_at: Some(Timestamp {
            seconds: now.as_secs() as i64 - 10,
            nanos: 0,
        }),
        payload: Some(Payload::Comment(Comment {
            comment_id: format!("c-{i}"),
            text: "物流很快，包装完好".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Every message on the topic, as (event id → times seen), updated live.
fn watch(kafka: &str, topic: &str) -> Arc<Mutex<HashMap<String, usize>>> {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", format!("crash-watch-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let sink = seen.clone();
    tokio::spawn(async move {
        loop {
            let message = match consumer.recv().await {
                Ok(message) => message,
                Err(error) => {
                    eprintln!("watch consumer: {error}");
                    continue;
                }
            };
            let event = SocialEvent::decode(message.payload().unwrap_or_default())
                .expect("canonical event");
            *sink.lock().unwrap().entry(event.event_id).or_insert(0) += 1;
        }
    });
    seen
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_stores_nothing_twice() {
    let (Some(kafka), Some(admin_url)) = (
        required_env("SOCIALOPS_TEST_KAFKA"),
        required_env("SOCIALOPS_TEST_DATABASE_URL"),
    ) else {
        return;
    };
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topics = Topics::with_suffix(&suffix);
    socialops_bus::ensure_topics(&KafkaConfig::new(kafka.clone()), &topics.all(), 3)
        .await
        .unwrap();
    let database_url = socialops_storage::create_scratch_postgres(&admin_url, "crash_test")
        .await
        .unwrap();
    let group = format!("crash-{suffix}");
    let published = watch(&kafka, &topics.events);

    // One record per produce batch: tansu 0.6 serves no fetch that starts inside a multi-record batch,
    // so a group whose committed offset fell inside one would stall after the restart.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let mut deliveries = Vec::with_capacity(NUM_EVENTS);
    for i in 0..NUM_EVENTS {
        let payload = serde_json::to_vec(&event(i)).unwrap();
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        let record = FutureRecord::to(&topics.raw)
            .key("k")
            .payload(&payload)
            .headers(headers);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }

    let mut first = serve(&kafka, &topics, &database_url, &group);
    wait_until(
        "the first published events",
        Duration::from_secs(120),
        || published.lock().unwrap().len() >= 3_000,
    )
    .await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let at_kill = published.lock().unwrap().len();
    assert!(
        at_kill < NUM_EVENTS,
        "the service finished before it was killed; raise NUM_EVENTS"
    );

    let mut second = serve(&kafka, &topics, &database_url, &group);
    wait_until("every event published", Duration::from_secs(180), || {
        published.lock().unwrap().len() == NUM_EVENTS
    })
    .await;
    // Give any republish of the same events time to show up before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.kill().unwrap();
    second.wait().unwrap();

    let published = published.lock().unwrap().clone();
    let republished: Vec<&String> = published
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    println!(
        "killed after {at_kill} of {NUM_EVENTS} events were published; {} republished after the restart",
        republished.len()
    );
    assert!(
        published.values().all(|&n| n <= 2),
        "an event was published more than twice"
    );
    assert!(
        republished.len() <= RELAY_BATCH,
        "{} republished, more than one unconfirmed relay batch ({RELAY_BATCH})",
        republished.len()
    );

    let db = Db::connect(&DatabaseConfig {
        url: database_url,
        max_connections: 1,
    })
    .await
    .unwrap();
    let row = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let (stored, distinct): (i64, i64) = (row.try_get(0).unwrap(), row.try_get(1).unwrap());
    assert_eq!(
        (stored, distinct),
        (NUM_EVENTS as i64, NUM_EVENTS as i64),
        "every event stored exactly once"
    );
    let pending: i64 = sqlx::query("SELECT COUNT(*) FROM outbox")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(pending, 0, "the outbox drained");
}
