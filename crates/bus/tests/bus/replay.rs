use socialops_bus::headers::{
    self, DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_SOURCE_TOPIC, DLQ_TENANT,
};
use socialops_bus::{OutgoingMessage, Producer, replay_dead_letters};
use socialops_testkit::{kafka, read_topic, unique};

use crate::support::{payloads, topics};

fn dead_letter(dlq: &str, source: &str, tenant: &str, payload: &str) -> OutgoingMessage {
    OutgoingMessage::new(dlq, Some(format!("{tenant}:user")), payload)
        .header("schema", "s.v1")
        .header(DLQ_REASON, "store rejected")
        .header(DLQ_SOURCE_TOPIC, source)
        .header(DLQ_PARTITION, "0")
        .header(DLQ_OFFSET, "7")
        .header(DLQ_TENANT, tenant)
}

#[tokio::test]
async fn replay_moves_dead_letters_back_filtered_by_source_and_tenant() {
    let Some(config) = kafka() else { return };
    let t = topics(&config, 3, 2).await;
    let (dlq, source, other) = (&t[0], &t[1], &t[2]);
    let producer = Producer::new(&config).unwrap();
    // One send each: tansu cannot fetch from an offset inside a multi-record batch, and `max = 1` below
    // commits such an offset.
    for message in [
        dead_letter(dlq, source, "a", "a-1"),
        dead_letter(dlq, source, "b", "b-1"),
        dead_letter(dlq, other, "a", "other-a"),
        dead_letter(dlq, source, "a", "a-2"),
    ] {
        producer.send(&message).await.unwrap();
    }

    let group_a = unique("replay-a");
    let replayed = replay_dead_letters(&config, &producer, dlq, source, Some("a"), &group_a, 100)
        .await
        .unwrap();
    assert_eq!(replayed, 2);
    let mut back = read_topic(&config, source, 2).await;
    back.sort_by(|x, y| x.payload.cmp(&y.payload));
    assert_eq!(payloads(&back), ["a-1", "a-2"]);
    for m in &back {
        assert_eq!(m.key.as_deref(), Some(&b"a:user"[..]));
        assert_eq!(m.header_str("schema"), Some("s.v1"));
        assert!(
            m.headers
                .iter()
                .all(|(k, _)| !headers::is_dead_letter_header(k)),
            "dlq headers stripped: {:?}",
            m.headers
        );
    }

    // The group's position was committed: nothing is replayed twice.
    assert_eq!(
        replay_dead_letters(&config, &producer, dlq, source, Some("a"), &group_a, 100)
            .await
            .unwrap(),
        0
    );

    // Another group without a tenant filter takes every dead letter of the source topic, up to `max`.
    let group_all = unique("replay-all");
    let first = replay_dead_letters(&config, &producer, dlq, source, None, &group_all, 1)
        .await
        .unwrap();
    let rest = replay_dead_letters(&config, &producer, dlq, source, None, &group_all, 100)
        .await
        .unwrap();
    assert!(first <= 1);
    assert_eq!(first + rest, 3);
    let mut all = payloads(&read_topic(&config, source, 5).await);
    all.sort();
    assert_eq!(all, ["a-1", "a-1", "a-2", "a-2", "b-1"]);
}
