//! Reading a topic from its end without a consumer group, for viewers such as live streams.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::context::Context;
use super::next_batch;
use crate::config::KafkaConfig;
use crate::error::BusError;
use crate::message::ReceivedMessage;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A reader of every partition of one topic, from where the topic ended when it was opened. It joins
/// no consumer group and commits nothing, so every process sees every message produced while it runs
/// and leaves nothing behind on the broker; what was produced while no process ran is not seen.
pub struct Tail {
    consumer: Arc<StreamConsumer<Context>>,
    topic: String,
}

impl Tail {
    /// Assigns every partition of `topic` at its current end (its high watermark, asked of the broker
    /// before this returns, so that every message produced afterwards is read).
    pub async fn open(config: &KafkaConfig, topic: &str) -> Result<Self, BusError> {
        let context = Context {
            group: format!("tail:{topic}"),
        };
        // librdkafka wants a group id even for a consumer that only assigns; one that never subscribes
        // or commits joins nothing and leaves nothing under it on the broker.
        let group_id = format!("socialops-tail-{}", uuid::Uuid::new_v4().simple());
        let consumer: Arc<StreamConsumer<Context>> = Arc::new(
            config
                .client_config(&[
                    ("group.id", &group_id),
                    ("enable.auto.commit", "false"),
                    ("enable.auto.offset.store", "false"),
                    ("fetch.wait.max.ms", "100"),
                ])
                .create_with_context(context)?,
        );
        let assigned = consumer.clone();
        let name = topic.to_owned();
        tokio::task::spawn_blocking(move || assign_at_end(&assigned, &name)).await??;
        info!(topic, "tail started");
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
        })
    }

    /// Hands every batch (at most `max_batch` messages, lingering 20 ms to fill one) to `deliver` until
    /// `shutdown`, each message once. Returns an error only for a fatal librdkafka error.
    ///
    /// A message at or below an offset already delivered from its partition is dropped: tansu 0.6
    /// answers a fetch that starts inside a multi-record batch (as one from an under-reported high
    /// watermark does) with the following batch twice.
    pub async fn run(
        self,
        max_batch: usize,
        mut deliver: impl FnMut(&[ReceivedMessage]) + Send,
        shutdown: CancellationToken,
    ) -> Result<(), BusError> {
        let mut next_offsets: HashMap<i32, i64> = HashMap::new();
        let result = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Ok(()),
                batch = next_batch(&self.consumer, max_batch, Duration::from_millis(20)) => match batch {
                    Ok(batch) => {
                        let fresh: Vec<ReceivedMessage> = batch
                            .messages
                            .into_iter()
                            .filter(|m| {
                                let next = next_offsets.entry(m.partition).or_insert(0);
                                let fresh = m.offset >= *next;
                                *next = (*next).max(m.offset + 1);
                                fresh
                            })
                            .collect();
                        if !fresh.is_empty() {
                            deliver(&fresh);
                        }
                    }
                    Err(e) => break Err(e),
                },
            }
        };
        let consumer = self.consumer;
        // Closing the client blocks in librdkafka.
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        info!(topic = %self.topic, "tail stopped");
        result
    }
}

fn assign_at_end(consumer: &StreamConsumer<Context>, topic: &str) -> Result<(), BusError> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
    {
        let (_, high) = consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
        debug!(topic, partition, high, "tail starts at the high watermark");
        assignment.add_partition_offset(topic, partition, Offset::Offset(high))?;
    }
    consumer.assign(&assignment)?;
    Ok(())
}
