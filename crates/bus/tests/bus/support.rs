use std::sync::{Arc, Mutex};
use std::time::Duration;

use socialops_bus::{
    BatchHandler, ConsumerSettings, DeadLetter, HandlerError, KafkaConfig, Producer,
    ReceivedMessage, ensure_topics, run_consumer,
};
use socialops_testkit::{PATIENCE, unique};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Creates the outbox tables as a service's migrations do.
pub async fn install_outbox(db: &socialops_storage::Db) {
    let ddl = match db.backend() {
        socialops_storage::Backend::Postgres => {
            include_str!("../../sql/outbox.postgres.sql")
        }
        socialops_storage::Backend::Sqlite => {
            include_str!("../../sql/outbox.sqlite.sql")
        }
    };
    for statement in ddl.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(db.pool())
            .await
            .expect("outbox tables");
    }
}

/// Creates `count` fresh topics with `partitions` partitions each.
pub async fn topics(config: &KafkaConfig, count: usize, partitions: i32) -> Vec<String> {
    let names: Vec<String> = (0..count)
        .map(|i| unique(&format!("bus-test-{i}")))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    ensure_topics(config, &refs, partitions)
        .await
        .expect("create topics");
    names
}

pub fn settings(group_id: &str, topic: &str, dlq_topic: &str) -> ConsumerSettings {
    ConsumerSettings {
        group_id: group_id.to_owned(),
        topics: vec![topic.to_owned()],
        max_batch: 100,
        max_wait: Duration::from_millis(20),
        dlq_topic: dlq_topic.to_owned(),
        drain_timeout: Duration::from_secs(10),
    }
}

/// What a handler does with a batch, decided per call.
pub type Behaviour =
    Box<dyn Fn(usize, &[ReceivedMessage]) -> Result<Vec<DeadLetter>, HandlerError> + Send + Sync>;

/// Records every batch it is called with and every batch it accepted.
pub struct Recorder {
    pub calls: Mutex<Vec<Vec<ReceivedMessage>>>,
    pub accepted: Mutex<Vec<ReceivedMessage>>,
    pub changed: Notify,
    behaviour: Behaviour,
}

impl Recorder {
    pub fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::default(),
            accepted: Mutex::default(),
            changed: Notify::new(),
            behaviour,
        })
    }

    pub fn accepting() -> Arc<Self> {
        Self::new(Box::new(|_, _| Ok(Vec::new())))
    }

    pub fn num_calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    pub fn accepted(&self) -> Vec<ReceivedMessage> {
        self.accepted.lock().unwrap().clone()
    }

    /// Waits until `done` holds, re-checking after every handler call.
    pub async fn wait_until(&self, done: impl Fn(&Self) -> bool) {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let changed = self.changed.notified();
                if done(self) {
                    return;
                }
                changed.await;
            }
        })
        .await
        .expect("handler did not see the expected messages in time");
    }
}

impl BatchHandler for Recorder {
    async fn handle(&self, batch: &[ReceivedMessage]) -> Result<Vec<DeadLetter>, HandlerError> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(batch.to_vec());
            calls.len() - 1
        };
        let result = (self.behaviour)(call, batch);
        if let Ok(letters) = &result {
            let mut accepted = self.accepted.lock().unwrap();
            accepted.extend(
                batch
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !letters.iter().any(|l| l.index == *i))
                    .map(|(_, m)| m.clone()),
            );
        }
        self.changed.notify_waiters();
        result
    }
}

pub struct Running {
    pub shutdown: CancellationToken,
    task: JoinHandle<Result<(), socialops_bus::BusError>>,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("consumer did not stop within its drain timeout")
            .expect("consumer task panicked")
            .expect("consumer failed");
    }
}

pub fn start<H: BatchHandler>(
    config: &KafkaConfig,
    settings: ConsumerSettings,
    handler: Arc<H>,
) -> Running {
    let shutdown = CancellationToken::new();
    let producer = Producer::new(config).expect("producer");
    let task = tokio::spawn({
        let config = config.clone();
        let shutdown = shutdown.clone();
        async move { run_consumer(&config, settings, handler, producer, shutdown).await }
    });
    Running { shutdown, task }
}

pub fn payloads(messages: &[ReceivedMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload.as_deref().unwrap_or_default()).into_owned())
        .collect()
}
