//! Topics read back from their start, each by a consumer group of its own, as an operator's tool
//! would read them.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use rdkafka::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use socialops_bus::{KafkaConfig, ReceivedMessage, Topics};
use tokio_util::sync::CancellationToken;

use crate::{PATIENCE, eventually, unique};

/// A consumer in a fresh group that reads from the start of a topic and commits nothing.
pub fn consumer(kafka: &KafkaConfig) -> StreamConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("group.id", unique("test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    config.create().expect("topic reader")
}

/// A message as read from a topic, undecoded: its key, payload and headers as text.
#[derive(Debug, Clone)]
pub struct Received {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Received {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }

    /// The header called `name`, or `""`.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn decode<M: prost::Message + Default>(&self) -> M {
        M::decode(self.payload.as_slice()).expect("a payload of the topic's message type")
    }
}

/// The first `count` messages of `topic`, failing after [`PATIENCE`].
pub async fn read_topic(kafka: &KafkaConfig, topic: &str, count: usize) -> Vec<ReceivedMessage> {
    let consumer = consumer(kafka);
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while out.len() < count {
            let m = consumer.recv().await.expect("recv");
            out.push(ReceivedMessage {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp_ms: m.timestamp().to_millis(),
            });
        }
    })
    .await
    .unwrap_or_else(|_| panic!("read only {} of {count} messages from {topic}", out.len()));
    out
}

/// The first `count` messages on the dead-letter topic, with their headers (`dlq-reason` and the
/// rest), failing after [`PATIENCE`].
pub async fn dead_letters(kafka: &KafkaConfig, topics: &Topics, count: usize) -> Vec<Received> {
    let consumer = consumer(kafka);
    consumer
        .subscribe(&[topics.dlq.as_str()])
        .expect("subscribe");
    let mut letters = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while letters.len() < count {
            let message = consumer.recv().await.expect("dead-letter topic");
            letters.push(Received::from_message(&message));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} dead letters in 60 s", letters.len()));
    letters
}

/// A record read from a topic: its key, its decoded value and its headers.
#[derive(Debug, Clone)]
pub struct Record<M> {
    pub key: Option<String>,
    pub value: M,
    pub headers: HashMap<String, String>,
}

/// Every record of one topic, read from its start in the background for as long as it lives.
pub struct TopicReader<M> {
    seen: Arc<Mutex<Vec<Record<M>>>>,
    stop: CancellationToken,
}

impl<M> TopicReader<M>
where
    M: prost::Message + Default + Clone + Debug + Send + 'static,
{
    pub fn follow(kafka: &KafkaConfig, topic: &str) -> Self {
        let consumer = consumer(kafka);
        consumer.subscribe(&[topic]).expect("subscribe");
        let reader = Self {
            seen: Arc::default(),
            stop: CancellationToken::new(),
        };
        let (seen, stop, topic) = (reader.seen.clone(), reader.stop.clone(), topic.to_owned());
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => return,
                    message = consumer.recv() => message,
                };
                let message = match message {
                    Ok(message) => Received::from_message(&message),
                    Err(error) => {
                        tracing::warn!(%topic, %error, "topic reader");
                        continue;
                    }
                };
                let value = M::decode(message.payload.as_slice())
                    .unwrap_or_else(|e| panic!("{topic} carries only its one message type: {e}"));
                seen.lock().unwrap().push(Record {
                    key: message.key,
                    value,
                    headers: message.headers,
                });
            }
        });
        reader
    }

    pub fn records(&self) -> Vec<Record<M>> {
        self.seen.lock().unwrap().clone()
    }

    pub fn all(&self) -> Vec<M> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.value.clone())
            .collect()
    }

    pub fn keys(&self) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.key.clone())
            .collect()
    }

    /// Every record so far once there are at least `count`, failing after [`PATIENCE`].
    pub async fn wait_for(&self, count: usize) -> Vec<Record<M>> {
        eventually(&format!("{count} records"), || {
            let records = self.records();
            async move {
                if records.len() >= count {
                    Ok(records)
                } else {
                    Err(format!("{records:#?}"))
                }
            }
        })
        .await
    }

    /// The first record `check` accepts, waiting for it for up to [`PATIENCE`].
    pub async fn wait_until(&self, what: &str, check: impl Fn(&Record<M>) -> bool) -> Record<M> {
        eventually(what, || {
            let records = self.records();
            let found = records.iter().find(|r| check(r)).cloned();
            async move { found.ok_or_else(|| format!("{records:#?}")) }
        })
        .await
    }
}

impl<M> Drop for TopicReader<M> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
