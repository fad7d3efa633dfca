use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tracing::Instrument;

use socialops_bus::headers::{self, CONTENT_TYPE, CONTENT_TYPE_JSON, TRACEPARENT};
use socialops_bus::{DeadLetter, HandlerError, OutgoingMessage, Producer};
use socialops_testkit::{PATIENCE, kafka, read_topic, unique};

use crate::support::{Recorder, payloads, settings, start, topics};

const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn round_trip_keeps_key_payload_headers_and_traceparent() {
    let Some(config) = kafka() else { return };
    let t = topics(&config, 2, 3).await;
    let producer = Producer::new(&config).unwrap();
    let messages: Vec<OutgoingMessage> = (0..30)
        .map(|i| {
            OutgoingMessage::new(
                &t[0],
                Some(format!("tenant:user-{}", i % 5)),
                format!("m{i}"),
            )
            .header(CONTENT_TYPE, CONTENT_TYPE_JSON)
            .header(TRACEPARENT, TRACE)
        })
        .collect();
    producer.send_all(&messages).await.unwrap();
    let (partition, offset) = producer
        .send(&OutgoingMessage::new(&t[0], None, "last"))
        .await
        .unwrap();
    assert!((0..3).contains(&partition) && offset >= 0);

    let recorder = Recorder::accepting();
    let running = start(
        &config,
        settings(&unique("g"), &t[0], &t[1]),
        recorder.clone(),
    );
    recorder.wait_until(|r| r.accepted().len() >= 31).await;
    running.stop().await;

    let received = recorder.accepted();
    assert_eq!(received.len(), 31, "no duplicates in a clean run");
    for i in 0..30 {
        let m = received
            .iter()
            .find(|m| m.payload.as_deref() == Some(format!("m{i}").as_bytes()))
            .unwrap();
        assert_eq!(
            m.key.as_deref(),
            Some(format!("tenant:user-{}", i % 5).as_bytes())
        );
        assert_eq!(m.header(CONTENT_TYPE), Some(CONTENT_TYPE_JSON.as_bytes()));
        assert_eq!(m.header_str(TRACEPARENT), Some(TRACE));
        assert_eq!(
            m.headers.iter().filter(|(k, _)| k == TRACEPARENT).count(),
            1,
            "traceparent not duplicated"
        );
        assert!(m.timestamp_ms.is_some());
    }
    // Per key (so per partition) the messages arrive in the order they were sent.
    for user in 0..5 {
        let key = format!("tenant:user-{user}");
        let order: Vec<String> = payloads(
            &received
                .iter()
                .filter(|m| m.key.as_deref() == Some(key.as_bytes()))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let expected: Vec<String> = (0..30)
            .filter(|i| i % 5 == user)
            .map(|i| format!("m{i}"))
            .collect();
        assert_eq!(order, expected);
    }
}

#[tokio::test]
async fn trace_context_flows_from_the_producing_span_to_the_handler_span() {
    let Some(config) = kafka() else { return };
    let t = topics(&config, 2, 1).await;
    let producer = Producer::new(&config).unwrap();
    let span = tracing::info_span!("publish");
    let expected = span.in_scope(socialops_telemetry::current_trace_headers);
    let trace_id = |traceparent: &str| traceparent.split('-').nth(1).map(str::to_owned);
    let expected_trace = trace_id(
        &expected
            .iter()
            .find(|(k, _)| k == TRACEPARENT)
            .expect("test subscriber traces")
            .1,
    );
    let messages: Vec<_> = (0..3)
        .map(|i| OutgoingMessage::new(&t[0], None, format!("m{i}")))
        .collect();
    producer.send_all(&messages).instrument(span).await.unwrap();

    let seen_in_handler = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder::new(Box::new({
        let seen = seen_in_handler.clone();
        move |_, _| {
            seen.lock()
                .unwrap()
                .push(socialops_telemetry::current_trace_headers());
            Ok(Vec::new())
        }
    }));
    let running = start(
        &config,
        settings(&unique("g"), &t[0], &t[1]),
        recorder.clone(),
    );
    recorder.wait_until(|r| r.accepted().len() >= 3).await;
    running.stop().await;

    for m in recorder.accepted() {
        assert_eq!(
            m.header_str(TRACEPARENT).and_then(trace_id),
            expected_trace,
            "producer injected the span"
        );
    }
    let handler_headers = seen_in_handler.lock().unwrap()[0].clone();
    let handler_parent = handler_headers
        .iter()
        .find(|(k, _)| k == TRACEPARENT)
        .map(|(_, v)| v.as_str());
    assert_eq!(
        handler_parent.and_then(trace_id),
        expected_trace,
        "handler span continues the producer's trace"
    );
}

#[tokio::test]
async fn failed_batches_are_retried_until_they_succeed_without_loss() {
    let Some(config) = kafka() else { return };
    let t = topics(&config, 2, 1).await;
    let producer = Producer::new(&config).unwrap();
    let messages: Vec<_> = (0..10)
        .map(|i| OutgoingMessage::new(&t[0], None, format!("m{i}")))
        .collect();
    producer.send_all(&messages).await.unwrap();

    let failures = AtomicUsize::new(0);
    let recorder = Recorder::new(Box::new(move |_, _| {
        if failures.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(HandlerError::msg("store unavailable"))
        } else {
            Ok(Vec::new())
        }
    }));
    let running = start(
        &config,
        settings(&unique("g"), &t[0], &t[1]),
        recorder.clone(),
    );
    recorder.wait_until(|r| r.accepted().len() >= 10).await;
    running.stop().await;

    let calls = recorder.calls.lock().unwrap().clone();
    assert!(
        calls.len() >= 3,
        "two failures then success, got {} calls",
        calls.len()
    );
    assert_eq!(
        payloads(&calls[0]),
        payloads(&calls[1]),
        "the same batch is retried"
    );
    assert_eq!(
        payloads(&calls[1])[..],
        payloads(&calls[2])[..payloads(&calls[1]).len()]
    );
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads(&recorder.accepted()), expected);
}

#[tokio::test]
async fn dead_letters_reach_the_dlq_with_their_headers_and_later_messages_still_flow() {
    let Some(config) = kafka() else { return };
    let t = topics(&config, 2, 1).await;
    let (source, dlq) = (&t[0], &t[1]);
    let producer = Producer::new(&config).unwrap();
    let message = |p: &str| {
        OutgoingMessage::new(source, Some(format!("brand:{p}")), p).header("schema", "s.v1")
    };
    producer
        .send_all(&["ok-1", "bad-1", "ok-2", "bad-2"].map(message))
        .await
        .unwrap();
    send_tombstone(&config, source, "brand:empty").await;
    producer.send(&message("ok-3")).await.unwrap();

    let recorder = Recorder::new(Box::new(|_, batch| {
        Ok(batch
            .iter()
            .enumerate()
            .filter(|(_, m)| m.payload.as_deref().is_some_and(|p| p.starts_with(b"bad")))
            .map(|(i, _)| DeadLetter::new(i, "unparseable event", Some("brand".into())))
            .collect())
    }));
    let running = start(
        &config,
        settings(&unique("g"), source, dlq),
        recorder.clone(),
    );
    recorder.wait_until(|r| r.accepted().len() >= 3).await;
    producer.send(&message("ok-later")).await.unwrap();
    recorder
        .wait_until(|r| payloads(&r.accepted()).contains(&"ok-later".to_owned()))
        .await;
    running.stop().await;

    assert_eq!(
        payloads(&recorder.accepted()),
        ["ok-1", "ok-2", "ok-3", "ok-later"]
    );
    assert!(
        recorder
            .calls
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .all(|m| m.payload.is_some())
    );
    let mut dead = read_topic(&config, dlq, 3).await;
    dead.sort_by_key(|m| {
        m.header_str(headers::DLQ_OFFSET)
            .unwrap()
            .parse::<i64>()
            .unwrap()
    });
    let expected = [
        ("bad-1", 1, "unparseable event"),
        ("bad-2", 3, "unparseable event"),
    ];
    for (m, (payload, source_offset, reason)) in dead.iter().zip(expected) {
        assert_eq!(m.payload.as_deref(), Some(payload.as_bytes()));
        assert_eq!(
            m.key.as_deref(),
            Some(format!("brand:{payload}").as_bytes())
        );
        assert_eq!(m.header_str(headers::SCHEMA), Some("s.v1"));
        assert_eq!(m.header_str(headers::DLQ_REASON), Some(reason));
        assert_eq!(
            m.header_str(headers::DLQ_SOURCE_TOPIC),
            Some(source.as_str())
        );
        assert_eq!(m.header_str(headers::DLQ_PARTITION), Some("0"));
        assert_eq!(
            m.header_str(headers::DLQ_OFFSET),
            Some(source_offset.to_string().as_str())
        );
        assert_eq!(m.header_str(headers::DLQ_TENANT), Some("brand"));
    }
    let empty = &dead[2];
    assert_eq!(empty.payload, None);
    assert_eq!(empty.key.as_deref(), Some(&b"brand:empty"[..]));
    assert_eq!(empty.header_str(headers::DLQ_OFFSET), Some("4"));
    assert_eq!(
        empty.header_str(headers::DLQ_REASON),
        Some("message has no payload")
    );
    assert_eq!(empty.header(headers::DLQ_TENANT), None);
}

#[tokio::test]
async fn offsets_are_committed_only_after_the_handler_succeeded() {
    let Some(config) = kafka() else { return };
    let t = topics(&config, 2, 2).await;
    let group = unique("g");
    let producer = Producer::new(&config).unwrap();
    let messages: Vec<_> = (0..8)
        .map(|i| OutgoingMessage::new(&t[0], Some(format!("k{i}")), format!("m{i}")))
        .collect();
    producer.send_all(&messages).await.unwrap();

    let failing = Recorder::new(Box::new(|_, _| Err(HandlerError::msg("never durable"))));
    let running = start(&config, settings(&group, &t[0], &t[1]), failing.clone());
    failing.wait_until(|r| r.num_calls() >= 2).await;
    running.stop().await;

    let succeeding = Recorder::accepting();
    let running = start(&config, settings(&group, &t[0], &t[1]), succeeding.clone());
    succeeding.wait_until(|r| r.accepted().len() >= 8).await;
    running.stop().await;
    let mut got = payloads(&succeeding.accepted());
    got.sort();
    assert_eq!(got, (0..8).map(|i| format!("m{i}")).collect::<Vec<_>>());

    // The successful run committed: a third consumer in the group sees only what came after.
    producer
        .send(&OutgoingMessage::new(&t[0], Some("k0".into()), "after"))
        .await
        .unwrap();
    let third = Recorder::accepting();
    let running = start(&config, settings(&group, &t[0], &t[1]), third.clone());
    third.wait_until(|r| !r.accepted().is_empty()).await;
    running.stop().await;
    assert_eq!(payloads(&third.accepted()), ["after"]);
}

async fn send_tombstone(config: &socialops_bus::KafkaConfig, topic: &str, key: &str) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::<str, [u8]>::to(topic).key(key),
            std::time::Duration::from_secs(30),
        )
        .await
        .expect("tombstone delivered");
}

#[tokio::test]
async fn a_permanent_failure_dead_letters_only_the_message_that_causes_it() {
    let Some(config) = kafka() else { return };
    let t = topics(&config, 2, 1).await;
    let (source, dlq) = (&t[0], &t[1]);
    let producer = Producer::new(&config).unwrap();
    let names: Vec<String> = (0..40)
        .map(|i| match i {
            7 | 23 => format!("poison-{i}"),
            _ => format!("ok-{i}"),
        })
        .collect();
    let messages: Vec<_> = names
        .iter()
        .map(|name| OutgoingMessage::new(source, Some(format!("brand:{name}")), name.as_str()))
        .collect();
    producer.send_all(&messages).await.unwrap();

    // Like a store that refuses a batch holding a value it cannot keep: nothing of it is kept.
    let recorder = Recorder::new(Box::new(|_, batch| {
        match batch.iter().any(|m| {
            m.payload
                .as_deref()
                .is_some_and(|p| p.starts_with(b"poison"))
        }) {
            true => Err(HandlerError::permanent("text holds a NUL character")),
            false => Ok(Vec::new()),
        }
    }));
    let running = start(
        &config,
        settings(&unique("g"), source, dlq),
        recorder.clone(),
    );
    recorder.wait_until(|r| r.accepted().len() >= 38).await;
    producer
        .send(&OutgoingMessage::new(source, None, "ok-later"))
        .await
        .unwrap();
    recorder
        .wait_until(|r| payloads(&r.accepted()).contains(&"ok-later".to_owned()))
        .await;
    running.stop().await;

    let mut expected: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with("ok"))
        .cloned()
        .collect();
    expected.push("ok-later".into());
    assert_eq!(
        payloads(&recorder.accepted()),
        expected,
        "every good message takes effect once, in order"
    );
    let mut dead = read_topic(&config, dlq, 2).await;
    dead.sort_by_key(|m| m.offset);
    assert_eq!(payloads(&dead), ["poison-7", "poison-23"]);
    for (m, offset) in dead.iter().zip(["7", "23"]) {
        assert_eq!(m.header_str(headers::DLQ_OFFSET), Some(offset));
        assert_eq!(
            m.header_str(headers::DLQ_REASON),
            Some("permanent failure: text holds a NUL character")
        );
        assert_eq!(m.header_str(headers::DLQ_TENANT), Some("brand"));
    }
}

#[test]
fn errors_are_classified_by_their_source() {
    // Field 1, length-delimited, announcing 5 bytes that are not there.
    let decode = <String as prost::Message>::decode(&[0x0a, 0x05, b'x'][..]).unwrap_err();
    assert!(HandlerError::from(decode).is_permanent());
    assert!(!HandlerError::from(sqlx::Error::PoolTimedOut).is_permanent());
    assert!(!HandlerError::msg("store unavailable").is_permanent());
    assert!(HandlerError::permanent("unknown campaign").is_permanent());
}

/// A tail sees what is produced after it opened, on every partition, each message once, and nothing
/// from before.
#[tokio::test]
async fn a_tail_reads_from_where_the_topic_ended_when_it_opened() {
    let Some(config) = kafka() else { return };
    let t = topics(&config, 1, 3).await;
    let producer = Producer::new(&config).unwrap();
    let message = |p: String| OutgoingMessage::new(&t[0], Some(format!("acme:{p}")), p);
    let before: Vec<_> = (0..30).map(|i| message(format!("before-{i}"))).collect();
    producer.send_all(&before).await.unwrap();

    let tail = socialops_bus::Tail::open(&config, &t[0]).await.unwrap();
    let after: Vec<_> = (0..30).map(|i| message(format!("after-{i}"))).collect();
    producer.send_all(&after).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let reading = tokio::spawn({
        let (seen, shutdown) = (seen.clone(), shutdown.clone());
        tail.run(
            100,
            move |batch| seen.lock().unwrap().extend(payloads(batch)),
            shutdown,
        )
    });
    let deadline = std::time::Instant::now() + PATIENCE;
    while seen.lock().unwrap().len() < 30 {
        assert!(std::time::Instant::now() < deadline, "the tail fell silent");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    reading.await.unwrap().unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("after-{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
}
