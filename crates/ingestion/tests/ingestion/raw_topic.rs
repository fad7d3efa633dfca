use std::time::Duration;

use prost::Message;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use socialops_proto::events::v1::SocialEvent;
use socialops_proto::ingestion::v1::{
    GetEventRequest, IngestEventsRequest, ReplayDeadLettersRequest,
};

use crate::support::{Backend, TestApp, comment, order, spawn_app};

async fn produce(app: &TestApp, messages: &[(Option<&str>, Vec<u8>)]) {
    let producer: FutureProducer = app.producer_config().create().unwrap();
    for (content_type, payload) in messages {
        let mut record = FutureRecord::<str, [u8]>::to(&app.topics.raw)
            .payload(payload.as_slice())
            .key("k");
        if let Some(content_type) = content_type {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "content-type",
                value: Some(*content_type),
            }));
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

fn json(event: &SocialEvent) -> Vec<u8> {
    serde_json::to_vec(event).unwrap()
}

async fn poison_is_dead_lettered_and_consumption_goes_on(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    produce(
        &app,
        &[
            (
                Some("application/json"),
                json(&comment(&t, "e-1", "u-1", "第一条")),
            ),
            (Some("application/json"), b"{\"event_id\": ".to_vec()),
            (
                Some("application/x-protobuf"),
                order(&t, "e-2", "u-2", -100).encode_to_vec(),
            ),
            (Some("text/plain"), b"hello".to_vec()),
            (None, order(&t, "e-3", "u-3", 100).encode_to_vec()),
            (None, json(&comment(&t, "e-4", "u-1", "最后一条"))),
        ],
    )
    .await;

    let published = app
        .read_topic(
            &app.topics.events,
            3,
            Duration::from_secs(2),
            Duration::from_secs(60),
        )
        .await;
    let mut ids: Vec<String> = published
        .iter()
        .map(|m| m.decode::<SocialEvent>().event_id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["e-1", "e-3", "e-4"]);

    let dead = app
        .read_topic(
            &app.topics.dlq,
            3,
            Duration::from_secs(2),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(dead.len(), 3, "{dead:?}");
    let reasons: Vec<&str> = dead
        .iter()
        .map(|m| m.headers["dlq-reason"].as_str())
        .collect();
    assert!(reasons[0].starts_with("invalid JSON event"), "{reasons:?}");
    assert_eq!(
        reasons[1],
        "order_placed.amount_cents: must not be negative, got -100"
    );
    assert!(
        reasons[2].starts_with("unsupported content-type `text/plain`"),
        "{reasons:?}"
    );
    for message in &dead {
        assert_eq!(message.headers["dlq-source-topic"], app.topics.raw);
        assert!(message.headers.contains_key("dlq-offset"));
    }
    assert_eq!(
        dead[1].headers.get("dlq-tenant"),
        Some(&t),
        "a decodable event names its tenant"
    );
    assert_eq!(dead[2].payload, b"hello", "the original bytes are kept");
    app.stop().await;
}

#[tokio::test]
async fn poison_is_dead_lettered_and_consumption_goes_on_sqlite() {
    poison_is_dead_lettered_and_consumption_goes_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn poison_is_dead_lettered_and_consumption_goes_on_postgres() {
    poison_is_dead_lettered_and_consumption_goes_on(Backend::Postgres).await;
}

#[tokio::test]
async fn an_event_is_deduplicated_across_kafka_and_grpc() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let t = app.tenant.clone();
    produce(
        &app,
        &[(
            Some("application/json"),
            json(&comment(&t, "e-1", "u-1", "from kafka")),
        )],
    )
    .await;
    let mut client = app.writer().await;
    let found = wait_for_event(&mut client, "e-1").await;
    assert_eq!(found, "from kafka");

    let via_grpc = IngestEventsRequest {
        events: vec![comment(&t, "e-1", "u-1", "from grpc")],
    };
    assert_eq!(
        client
            .ingest_events(via_grpc)
            .await
            .unwrap()
            .into_inner()
            .duplicate,
        1
    );
    let via_grpc = IngestEventsRequest {
        events: vec![comment(&t, "e-2", "u-1", "grpc first")],
    };
    assert_eq!(
        client
            .ingest_events(via_grpc)
            .await
            .unwrap()
            .into_inner()
            .accepted,
        1
    );
    produce(
        &app,
        &[(
            Some("application/json"),
            json(&comment(&t, "e-2", "u-1", "kafka second")),
        )],
    )
    .await;

    let published = app
        .read_topic(
            &app.topics.events,
            2,
            Duration::from_secs(3),
            Duration::from_secs(60),
        )
        .await;
    let texts: Vec<String> = published
        .iter()
        .map(|m| comment_text(&m.decode::<SocialEvent>()))
        .collect();
    assert_eq!(published.len(), 2, "{texts:?}");
    assert!(
        texts.contains(&"from kafka".to_owned()) && texts.contains(&"grpc first".to_owned()),
        "{texts:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn dead_letters_replay_onto_the_raw_topic_per_tenant() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let t = app.tenant.clone();
    let other = format!("{t}-other");
    produce(
        &app,
        &[
            (None, order(&t, "e-1", "u-1", -1).encode_to_vec()),
            (None, order(&other, "e-2", "u-1", -1).encode_to_vec()),
        ],
    )
    .await;
    let dead = app
        .read_topic(
            &app.topics.dlq,
            2,
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(dead.len(), 2);

    let mut admin = app.writer().await;
    let replayed = admin
        .replay_dead_letters(ReplayDeadLettersRequest { max_messages: 10 })
        .await
        .unwrap();
    assert_eq!(
        replayed.into_inner().replayed,
        1,
        "only the caller's tenant's dead letters move"
    );
    let raw = app
        .read_topic(
            &app.topics.raw,
            3,
            Duration::from_secs(1),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(raw.len(), 3);
    assert!(
        !raw[2].headers.keys().any(|k| k.starts_with("dlq-")),
        "{:?}",
        raw[2].headers
    );
    // Still invalid, so it is dead-lettered again; a second replay of the same group starts after it.
    let again = app
        .read_topic(
            &app.topics.dlq,
            3,
            Duration::from_secs(1),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(again.len(), 3);

    let mut reader = app.client_for(&t, socialops_auth::Role::Writer).await;
    let denied = reader
        .replay_dead_letters(ReplayDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    app.stop().await;
}

async fn wait_for_event(client: &mut crate::support::Client, event_id: &str) -> String {
    for _ in 0..300 {
        let found = client
            .get_event(GetEventRequest {
                tenant_id: String::new(),
                event_id: event_id.into(),
            })
            .await;
        if let Ok(found) = found {
            return comment_text(&found.into_inner().event.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("event {event_id} never arrived");
}

fn comment_text(event: &SocialEvent) -> String {
    match &event.payload {
        Some(socialops_proto::events::v1::social_event::Payload::Comment(c)) => c.text.clone(),
        other => panic!("not a comment: {other:?}"),
    }
}
