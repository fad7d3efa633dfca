use socialops_bus::{EmbeddedBroker, OutgoingMessage, Producer};

use crate::support::{Recorder, payloads, settings, start};

#[tokio::test]
async fn embedded_broker_round_trip() {
    let broker = EmbeddedBroker::start(&["events", "events.dlq"], 2).unwrap();
    assert!(broker.bootstrap_servers().contains(':'));
    let config = broker.kafka_config();
    let producer = Producer::new(&config).unwrap();
    let messages: Vec<_> = (0..20)
        .map(|i| OutgoingMessage::new("events", Some(format!("k{}", i % 4)), format!("m{i}")))
        .collect();
    producer.send_all(&messages).await.unwrap();

    let recorder = Recorder::accepting();
    let running = start(
        &config,
        settings("embedded", "events", "events.dlq"),
        recorder.clone(),
    );
    recorder.wait_until(|r| r.accepted().len() >= 20).await;
    running.stop().await;
    let mut got = payloads(&recorder.accepted());
    got.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(got, expected);
    drop(broker);
}
