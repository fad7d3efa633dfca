//! What the crash tests share: the binary started as one service on the test's topics, a live count
//! of what reaches a topic, and waiting for a condition.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use socialops_bus::Topics;

/// `socialops serve <service>` on the test's broker, database and topics, with the service's own
/// settings (`SOCIALOPS_<SERVICE>__<NAME>`) and its gRPC port chosen by the system.
pub fn serve(
    service: &str,
    kafka: &str,
    topics: &Topics,
    database_url: &str,
    settings: &[(&str, String)],
) -> Child {
    let prefix = format!("SOCIALOPS_{}__", service.to_uppercase());
    let mut command = Command::new(env!("CARGO_BIN_EXE_socialops"));
    command
        .args(["serve", service])
        .env("SOCIALOPS_KAFKA__BOOTSTRAP_SERVERS", kafka)
        .env("DATABASE_URL", database_url)
        .env(format!("{prefix}GRPC_LISTEN"), "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    for (name, value) in settings {
        command.env(format!("{prefix}{name}"), value);
    }
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

/// Every message on the topic, counted by the key `key_of` reads from its payload (messages it
/// gives none for are skipped), updated live.
pub fn watch(
    kafka: &str,
    topic: &str,
    key_of: fn(&[u8]) -> Option<String>,
) -> Arc<Mutex<HashMap<String, usize>>> {
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
            if let Some(key) = key_of(message.payload().unwrap_or_default()) {
                *sink.lock().unwrap().entry(key).or_insert(0) += 1;
            }
        }
    });
    seen
}

pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
