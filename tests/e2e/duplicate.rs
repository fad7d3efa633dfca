//! At least once in, exactly once in effect, across doors: an event already taken over gRPC arrives
//! again through the raw Kafka topic, as a connector that retried on the other path would send it.

use crate::story::{COMPLAINT, TENANT, USER, play, story_counts};
use crate::support::{Backend, Stack, ago, comment, eventually, total};

/// A question, scored neutral: it tells the duplicate's effect (a second negative) from its own.
const QUESTION: &str = "积雪草精华多少毫升";

async fn a_duplicate_through_kafka_changes_nothing_downstream(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let story = play(&stack).await;
    let clients = &story.clients;
    let before = clients.profile(USER).await.unwrap();
    assert_eq!(total(&clients.timeline("").await.unwrap()), (1, 0, 1));
    let complaint_id = &story.complaint().event_id;
    let first_received = clients.event(complaint_id).await.unwrap().received_at;
    assert!(first_received.is_some());

    // The duplicate and then a new event, in one JSON batch under one key, so one partition keeps
    // them in that order through ingestion and on to the canonical topic: once the new event shows
    // downstream, the duplicate has been through every service before it.
    let question = comment(TENANT, "xhs-cmt-3", USER, ago(1), QUESTION);
    stack
        .produce_raw_json(
            &format!("{TENANT}:{USER}"),
            &[
                serde_json::to_value(story.complaint()).unwrap(),
                serde_json::to_value(&question).unwrap(),
            ],
        )
        .await;

    eventually("ingestion takes the new event from Kafka", || async {
        clients
            .event(&question.event_id)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    let mut stored: Vec<String> = clients
        .events_of(USER)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    stored.sort();
    let mut expected = story.event_ids();
    expected.push(question.event_id.clone());
    expected.sort();
    assert_eq!(stored, expected, "ingestion stores the complaint once");
    let kept = clients.event(complaint_id).await.unwrap();
    assert_eq!(
        kept.received_at, first_received,
        "the duplicate did not replace the stored event"
    );

    let after = eventually("segmentation folds in the new event", || async {
        match clients.profile(USER).await {
            Ok(p) if p.last_seen_at == question.occurred_at => Ok(p),
            other => Err(format!("{other:#?}")),
        }
    })
    .await;
    assert_eq!(after.counts, story_counts(3), "the complaint counted once");
    assert_eq!(
        (after.orders_count, after.orders_total_cents, &after.tags),
        (before.orders_count, before.orders_total_cents, &before.tags)
    );

    let scored = eventually("sentiment scores the new event", || async {
        let hours = clients.timeline("").await.map_err(|e| e.to_string())?;
        let sums = total(&hours);
        match sums.0 + sums.1 + sums.2 {
            3.. => Ok(sums),
            _ => Err(format!("{hours:#?}")),
        }
    })
    .await;
    assert_eq!(scored, (1, 1, 1), "one negative: the complaint, once");
    let complaints = clients
        .unanswered()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.text == COMPLAINT)
        .count();
    assert_eq!(complaints, 1, "the complaint waits for one reply, not two");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_through_kafka_changes_nothing_downstream_postgres() {
    a_duplicate_through_kafka_changes_nothing_downstream(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_through_kafka_changes_nothing_downstream_sqlite() {
    a_duplicate_through_kafka_changes_nothing_downstream(Backend::Sqlite).await;
}
