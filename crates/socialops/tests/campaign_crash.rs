//! The campaign service killed with SIGKILL while journeys wait on their timers, and restarted: every
//! due send is published, none is decided twice, and only sends whose publication was not yet
//! confirmed can appear on the topic again (with the same send key).

mod support;

use std::process::Child;
use std::time::Duration;

use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use socialops_auth::TokenStore;
use socialops_bus::{KafkaConfig, Topics};
use socialops_campaign::domain::definition::{Format, parse};
use socialops_campaign::manage::Change;
use socialops_campaign::{CampaignConfig, Dependencies};
use socialops_proto::campaigns::v1::CampaignOutcome;
use socialops_proto::campaigns::v1::campaign_outcome::Outcome;
use socialops_proto::profiles::v1::profile_change::Change as ProfileChangeKind;
use socialops_proto::profiles::v1::{ProfileChange, SegmentEntered};
use socialops_storage::testing::required_env;
use socialops_storage::{DatabaseConfig, Db, Row};
use support::{wait_until, watch};
use tokio_util::sync::CancellationToken;

const NUM_USERS: usize = 3_000;
const RELAY_BATCH: usize = 200;
const TENANT: &str = "crash";

/// Two seconds after entering, each user gets one message: the kill comes while timers are due.
const DEFINITION: &str = r#"
name = "Crash welcome"
channel = "push"
kind = "content"
entry = { type = "segment_entered", segment_id = "crash" }

[[variants]]
id = "a"

[[steps]]
type = "wait"
id = "settle"
duration = "2s"

[[steps]]
type = "send"
id = "hello"
text = "欢迎加入会员"
"#;

fn serve(kafka: &str, topics: &Topics, database_url: &str, group: &str) -> Child {
    support::serve(
        "campaign",
        kafka,
        topics,
        database_url,
        &[
            ("CONSUMER_GROUP", group.into()),
            ("CONSUME_BATCH", "100".into()),
            ("SWEEP_BATCH", "100".into()),
            ("RELAY_BATCH", RELAY_BATCH.to_string()),
        ],
    )
}

/// The send key of a send on the campaigns topic.
fn send_key(payload: &[u8]) -> Option<String> {
    match CampaignOutcome::decode(payload)
        .expect("campaign outcome")
        .outcome
    {
        Some(Outcome::Send(send)) => Some(send.send_key),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_schedule_sends_each_due_message_once() {
    let (Some(kafka), Some(admin_url)) = (
        required_env("SOCIALOPS_TEST_KAFKA"),
        required_env("SOCIALOPS_TEST_DATABASE_URL"),
    ) else {
        return;
    };
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topics = Topics::with_suffix(&suffix);
    let kafka_config = KafkaConfig::new(kafka.clone());
    socialops_bus::ensure_topics(&kafka_config, &topics.all(), 3)
        .await
        .unwrap();
    let database_url = socialops_storage::create_scratch_postgres(&admin_url, "campaign_crash")
        .await
        .unwrap();
    let group = format!("crash-{suffix}");

    // The campaign, started in this process on the store the binary will use.
    let data_dir = tempfile::tempdir().unwrap();
    let config = CampaignConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(DatabaseConfig {
            url: database_url.clone(),
            max_connections: 2,
        }),
        consumer_group: format!("setup-{suffix}"),
        ..CampaignConfig::default()
    };
    let deps = Dependencies {
        create_topics: false,
        ..Dependencies::new(
            kafka_config,
            topics.clone(),
            TokenStore::default(),
            data_dir.path().into(),
        )
    };
    let shutdown = CancellationToken::new();
    let setup = socialops_campaign::start(&config, deps, shutdown.clone())
        .await
        .unwrap();
    let engine = setup.engine.clone();
    let mut settings = engine.settings(TENANT).await.unwrap();
    settings.pressure.quiet_hours = None;
    engine.set_settings(TENANT, &settings).await.unwrap();
    let campaign = engine
        .create_campaign(
            TENANT,
            "crash".into(),
            parse(DEFINITION, Format::Toml).unwrap(),
        )
        .await
        .unwrap();
    engine
        .start(
            &Change {
                tenant_id: TENANT,
                campaign_id: &campaign.campaign_id,
                actor: "test",
                reason: "test",
            },
            &[],
        )
        .await
        .unwrap();
    shutdown.cancel();
    setup.wait().await.unwrap();

    // One record per produce batch: tansu 0.6 serves no fetch that starts inside a multi-record batch.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let mut deliveries = Vec::with_capacity(NUM_USERS);
    for i in 0..NUM_USERS {
        let user = format!("u{i:05}");
        let change = ProfileChange {
            change_id: format!("enter-{i}"),
            tenant_id: TENANT.into(),
            user_id: user.clone(),
            change: Some(ProfileChangeKind::SegmentEntered(SegmentEntered {
                segment_id: "crash".into(),
                segment_name: "crash".into(),
            })),
            ..ProfileChange::default()
        };
        let payload = change.encode_to_vec();
        let key = format!("{TENANT}:{user}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/x-protobuf"),
        });
        let record = FutureRecord::to(&topics.profiles)
            .key(&key)
            .payload(&payload)
            .headers(headers);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }

    let published = watch(&kafka, &topics.campaigns, send_key);
    let mut first = serve(&kafka, &topics, &database_url, &group);
    wait_until("the first sends", Duration::from_secs(180), || {
        published.lock().unwrap().len() >= 300
    })
    .await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let at_kill = published.lock().unwrap().len();
    assert!(
        at_kill < NUM_USERS,
        "the service finished before it was killed; raise NUM_USERS"
    );

    let mut second = serve(&kafka, &topics, &database_url, &group);
    wait_until("every send published", Duration::from_secs(300), || {
        published.lock().unwrap().len() == NUM_USERS
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.kill().unwrap();
    second.wait().unwrap();

    let published = published.lock().unwrap().clone();
    let again = published.values().filter(|n| **n > 1).count();
    println!(
        "killed after {at_kill} of {NUM_USERS} sends; {again} published again after the restart"
    );
    assert!(
        published.values().all(|&n| n <= 2),
        "a send key published more than twice"
    );
    assert!(
        again <= RELAY_BATCH,
        "{again} published again, more than one unconfirmed relay batch ({RELAY_BATCH})"
    );

    let db = Db::connect(&DatabaseConfig {
        url: database_url,
        max_connections: 1,
    })
    .await
    .unwrap();
    let row = sqlx::query(
        "SELECT COUNT(*), COUNT(DISTINCT user_id), SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) \
         FROM sends",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    let (stored, users, sent): (i64, i64, i64) = (
        row.try_get(0).unwrap(),
        row.try_get(1).unwrap(),
        row.try_get(2).unwrap(),
    );
    assert_eq!(
        (stored, users, sent),
        (NUM_USERS as i64, NUM_USERS as i64, NUM_USERS as i64),
        "one send per user, each sent"
    );
    let decided: i64 = sqlx::query("SELECT COUNT(*) FROM decisions WHERE outcome = 'sent'")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(decided, NUM_USERS as i64, "each send decided once");
}
