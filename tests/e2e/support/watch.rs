//! Waiting for what the services do asynchronously: polling a read until it shows a condition, and
//! reading a topic from its start in the background.

use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use socialops_bus::KafkaConfig;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::PATIENCE;

const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `attempt` until it returns `Ok`, for up to [`PATIENCE`]; then fails with `what` and the last
/// `Err`, which describes what was seen instead.
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("{what}: not within {PATIENCE:?}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// A record read from a topic: its key and its decoded value.
#[derive(Debug, Clone)]
pub struct Record<T> {
    pub key: Option<String>,
    pub value: T,
}

/// Every record of one topic, read from its start by a consumer group of its own, as an operator's
/// tool (or the campaign service) would read it.
pub struct TopicLog<T> {
    seen: Arc<Mutex<Vec<Record<T>>>>,
    stop: CancellationToken,
}

impl<T> TopicLog<T>
where
    T: prost::Message + Default + Clone + Debug + Send + 'static,
{
    pub fn follow(kafka: &KafkaConfig, topic: &str) -> Self {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &kafka.bootstrap_servers)
            .set("group.id", format!("e2e-reader-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false");
        for (key, value) in &kafka.properties {
            config.set(key, value);
        }
        let consumer: StreamConsumer = config.create().unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let log = Self {
            seen: Arc::default(),
            stop: CancellationToken::new(),
        };
        let (seen, stop, topic) = (log.seen.clone(), log.stop.clone(), topic.to_owned());
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => return,
                    message = consumer.recv() => message,
                };
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%topic, %error, "e2e topic reader");
                        continue;
                    }
                };
                let value = T::decode(message.payload().unwrap_or_default())
                    .unwrap_or_else(|e| panic!("{topic} carries only its one message type: {e}"));
                let key = message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned());
                seen.lock().unwrap().push(Record { key, value });
            }
        });
        log
    }

    pub fn records(&self) -> Vec<Record<T>> {
        self.seen.lock().unwrap().clone()
    }

    /// The first record `check` accepts, waiting for it for up to [`PATIENCE`].
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Record<T>) -> bool) -> Record<T> {
        eventually(what, || {
            let records = self.records();
            let found = records.iter().find(|r| check(r)).cloned();
            async move { found.ok_or_else(|| format!("{records:#?}")) }
        })
        .await
    }
}

impl<T> Drop for TopicLog<T> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
