use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::TopicPartitionList;
use tracing::{debug, info, warn};

use crate::config::KafkaConfig;
use crate::consumer::Context;
use crate::error::BusError;
use crate::headers;
use crate::message::ReceivedMessage;
use crate::producer::{Producer, Record};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Guards against a broker that never reports the end of a partition.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const CHUNK: usize = 500;

/// Reads the DLQ topic with consumer group `group_id` from its committed position up to the high
/// watermarks taken at call time (at most `max` messages), re-produces each message whose
/// `dlq-source-topic` equals `source_topic` and (when `tenant` is Some) whose `dlq-tenant` equals it, to
/// the source topic with its original key, payload and headers minus the dlq-* ones, awaits delivery,
/// commits, returns the count replayed.
///
/// The group is the replay cursor: messages read but filtered out are committed past as well, so use one
/// group per filter. A partition ends at its end of log, or at the first message past the call-time high
/// watermark that was also written after the call started, so replayed messages that fail again and
/// return to the DLQ are not chased. (Some brokers, tansu among them, under-report the high watermark,
/// which is why it alone does not end a partition.)
pub async fn replay_dead_letters(
    config: &KafkaConfig,
    producer: &Producer,
    dlq_topic: &str,
    source_topic: &str,
    tenant: Option<&str>,
    group_id: &str,
    max: usize,
) -> Result<u64, BusError> {
    let started_ms = now_ms();
    let context = Context {
        group: group_id.to_owned(),
    };
    let consumer: Arc<StreamConsumer<Context>> = Arc::new(
        config
            .client_config(&[
                ("group.id", group_id),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "true"),
                ("auto.offset.reset", "earliest"),
            ])
            .create_with_context(context)?,
    );
    let mut remaining = {
        let consumer = consumer.clone();
        let topic = dlq_topic.to_owned();
        blocking(move || assign_from_committed(&consumer, &topic)).await?
    };
    let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let mut chunk: Vec<ReceivedMessage> = Vec::new();
    let mut num_read = 0usize;
    let mut num_replayed = 0u64;

    while !remaining.is_empty() && num_read < max {
        let message = match tokio::time::timeout(IDLE_TIMEOUT, consumer.recv()).await {
            Err(_) => {
                warn!(topic = dlq_topic, partitions = ?remaining.keys().collect::<Vec<_>>(), "replay stopped at idle timeout");
                break;
            }
            Ok(Err(KafkaError::PartitionEOF(partition))) => {
                remaining.remove(&partition);
                continue;
            }
            Ok(Err(e)) => {
                warn!(topic = dlq_topic, error = %e, "replay poll error");
                continue;
            }
            Ok(Ok(message)) => ReceivedMessage::from_borrowed(&message),
        };
        let Some(&high) = remaining.get(&message.partition) else {
            continue;
        };
        if message.offset >= high && message.timestamp_ms.is_none_or(|ms| ms > started_ms) {
            remaining.remove(&message.partition);
            continue;
        }
        num_read += 1;
        next_offsets.insert(message.partition, message.offset + 1);
        if matches(&message, source_topic, tenant) {
            chunk.push(message);
        }
        if chunk.len() >= CHUNK {
            num_replayed += replay_chunk(
                producer,
                &consumer,
                dlq_topic,
                source_topic,
                &mut chunk,
                &next_offsets,
            )
            .await?;
        }
    }
    num_replayed += replay_chunk(
        producer,
        &consumer,
        dlq_topic,
        source_topic,
        &mut chunk,
        &next_offsets,
    )
    .await?;
    info!(
        topic = dlq_topic,
        source_topic,
        read = num_read,
        replayed = num_replayed,
        "dead letters replayed"
    );
    blocking(move || {
        drop(consumer);
        Ok(())
    })
    .await?;
    Ok(num_replayed)
}

fn now_ms() -> i64 {
    socialops_storage::now_micros() / 1000
}

fn matches(message: &ReceivedMessage, source_topic: &str, tenant: Option<&str>) -> bool {
    message.header_str(headers::DLQ_SOURCE_TOPIC) == Some(source_topic)
        && tenant.is_none_or(|tenant| message.header_str(headers::DLQ_TENANT) == Some(tenant))
}

/// Assigns every partition of `topic` from the group's committed offset and returns each partition's
/// high watermark as of now.
fn assign_from_committed(
    consumer: &StreamConsumer<Context>,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, BusError> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut query = TopicPartitionList::new();
    for &partition in &partitions {
        query.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(query, METADATA_TIMEOUT)?;
    let mut assignment = TopicPartitionList::new();
    let mut highs = BTreeMap::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
        let start = match committed
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(offset)) => offset.max(low),
            _ => low,
        };
        debug!(topic, partition, low, high, start, "replay partition range");
        assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
        highs.insert(partition, high);
    }
    consumer.assign(&assignment)?;
    Ok(highs)
}

/// Sends the chunk, then commits everything read so far: a crash in between replays the chunk again.
async fn replay_chunk(
    producer: &Producer,
    consumer: &Arc<StreamConsumer<Context>>,
    dlq_topic: &str,
    source_topic: &str,
    chunk: &mut Vec<ReceivedMessage>,
    next_offsets: &BTreeMap<i32, i64>,
) -> Result<u64, BusError> {
    let original_headers: Vec<Vec<(String, Vec<u8>)>> = chunk
        .iter()
        .map(|m| headers::without_dead_letter_headers(&m.headers))
        .collect();
    let records: Vec<Record<'_>> = chunk
        .iter()
        .zip(&original_headers)
        .map(|(m, headers)| Record {
            topic: source_topic,
            key: m.key.as_deref(),
            payload: m.payload.as_deref(),
            headers,
        })
        .collect();
    producer.send_records(records).await?;
    let num_sent = chunk.len() as u64;
    chunk.clear();
    if !next_offsets.is_empty() {
        let mut offsets = TopicPartitionList::new();
        for (&partition, &offset) in next_offsets {
            offsets.add_partition_offset(dlq_topic, partition, Offset::Offset(offset))?;
        }
        let consumer = consumer.clone();
        blocking(move || Ok(consumer.commit(&offsets, CommitMode::Sync)?)).await?;
    }
    Ok(num_sent)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BusError> + Send + 'static,
) -> Result<T, BusError> {
    tokio::task::spawn_blocking(f).await?
}
