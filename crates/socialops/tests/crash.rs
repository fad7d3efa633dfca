//! The ingestion service killed with SIGKILL in the middle of a stream and restarted: every accepted
//! event reaches `socialops.events.v1`, nothing is stored twice, and only events whose delivery was not
//! yet confirmed can be published again.

mod support;

use std::process::Child;
use std::time::Duration;

use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use socialops_bus::{KafkaConfig, Topics};
use socialops_proto::Timestamp;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, Platform, SocialEvent};
use socialops_storage::testing::required_env;
use socialops_storage::{DatabaseConfig, Db, Row};
use support::{wait_until, watch};

const NUM_EVENTS: usize = 30_000;
const RELAY_BATCH: usize = 500;

fn serve(kafka: &str, topics: &Topics, database_url: &str, group: &str) -> Child {
    support::serve(
        "ingestion",
        kafka,
        topics,
        database_url,
        &[
            ("ALIAS_KEY", "crash-test".into()),
            ("CONSUMER_GROUP", group.into()),
            ("CONSUME_BATCH", "250".into()),
            ("RELAY_BATCH", RELAY_BATCH.to_string()),
        ],
    )
}

fn event_id(payload: &[u8]) -> Option<String> {
    Some(
        SocialEvent::decode(payload)
            .expect("canonical event")
            .event_id,
    )
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
    let published = watch(&kafka, &topics.events, event_id);

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
