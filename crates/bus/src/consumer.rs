//! At-least-once batch consumer: offsets are stored only once the handler said the batch is durable and
//! its dead letters are acknowledged by the broker; librdkafka's auto-commit then commits stored offsets.

mod context;
mod handler;
mod tail;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::config::KafkaConfig;
use crate::error::BusError;
use crate::headers;
use crate::message::ReceivedMessage;
use crate::producer::{Producer, Record};
pub(crate) use context::Context;
pub use handler::{BatchHandler, DeadLetter, HandlerError, lane_of};
use socialops_telemetry::set_parent_from_headers;
pub use tail::Tail;

pub struct ConsumerSettings {
    pub group_id: String,
    pub topics: Vec<String>,
    /// Most messages handed to one `handle` call, e.g. 1000.
    pub max_batch: usize,
    /// How long to linger after the first message to fill a batch, e.g. 20 ms.
    pub max_wait: Duration,
    pub dlq_topic: String,
    /// Budget for finishing the batch in hand and committing after shutdown; keep it below
    /// `session.timeout.ms` (45 s by default). Three quarters go to the batch, the rest to the commit.
    pub drain_timeout: Duration,
}

/// Runs until `shutdown`, then finishes the batch in hand, commits and leaves the group, all within
/// `settings.drain_timeout`. Returns an error only for what retrying cannot fix (bad configuration, a
/// fatal librdkafka error).
pub async fn run_consumer<H: BatchHandler>(
    config: &KafkaConfig,
    settings: ConsumerSettings,
    handler: Arc<H>,
    producer: Producer,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let context = Context {
        group: settings.group_id.clone(),
    };
    let consumer: Arc<StreamConsumer<Context>> = Arc::new(
        config
            .client_config(&[
                ("group.id", &settings.group_id),
                ("enable.auto.commit", "true"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("statistics.interval.ms", "5000"),
                // Kafka answers a fetch as soon as `fetch.min.bytes` (1) is there; tansu 0.6 holds
                // every fetch for the whole wait when it is under 250 ms, and half of it above, so
                // librdkafka's default of 500 ms adds 250 ms to every hop. 100 ms bounds that and
                // costs a real cluster ten empty fetches a second per idle consumer.
                ("fetch.wait.max.ms", "100"),
            ])
            .create_with_context(context)?,
    );
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    info!(group = %settings.group_id, topics = ?topics, "consumer started");

    let batcher = Batcher {
        handler,
        producer,
        settings: &settings,
    };
    // The next batch is fetched while the current one is handled, so the handler never waits for the
    // broker or the linger; batches are still handled one after another, in order.
    let fetch = |consumer: Arc<StreamConsumer<Context>>| {
        let (max_batch, max_wait) = (settings.max_batch, settings.max_wait);
        tokio::spawn(async move { next_batch(&consumer, max_batch, max_wait).await })
    };
    let mut fetching = fetch(consumer.clone());
    let result = loop {
        let batch = tokio::select! {
            biased;
            () = shutdown.cancelled() => break Ok(()),
            batch = &mut fetching => match batch {
                Ok(Ok(batch)) => batch,
                Ok(Err(e)) => break Err(e),
                Err(e) => break Err(BusError::Task(e)),
            },
        };
        fetching = fetch(consumer.clone());
        let drain_expired = async {
            shutdown.cancelled().await;
            tokio::time::sleep(settings.drain_timeout * 3 / 4).await;
        };
        let processed = tokio::select! {
            biased;
            () = batcher.process(&batch) => true,
            () = drain_expired => {
                warn!(group = %settings.group_id, "batch abandoned at drain timeout");
                false
            }
        };
        if processed {
            store_offsets(&consumer, &batch);
        }
        if shutdown.is_cancelled() {
            break Ok(());
        }
    };
    // A batch fetched but not handled is not acknowledged: it is delivered again after a restart.
    fetching.abort();
    close(consumer, settings.drain_timeout / 4).await;
    info!(group = %settings.group_id, "consumer stopped");
    result
}

/// Messages with a payload go to the handler; the others are dead-lettered without it.
pub(crate) struct Batch {
    pub(crate) messages: Vec<ReceivedMessage>,
    empty: Vec<ReceivedMessage>,
}

/// Waits for one message, then lingers up to `max_wait` to fill the batch.
pub(crate) async fn next_batch(
    consumer: &StreamConsumer<Context>,
    max_batch: usize,
    max_wait: Duration,
) -> Result<Batch, BusError> {
    let mut batch = Batch {
        messages: Vec::with_capacity(max_batch.min(1024)),
        empty: Vec::new(),
    };
    let mut add = |message: ReceivedMessage| match message.payload {
        Some(_) => batch.messages.push(message),
        None => batch.empty.push(message),
    };
    loop {
        match consumer.recv().await {
            Ok(message) => {
                add(ReceivedMessage::from_borrowed(&message));
                break;
            }
            Err(e) => poll_error(e)?,
        }
    }
    let linger_until = tokio::time::Instant::now() + max_wait;
    for _ in 1..max_batch {
        match tokio::time::timeout_at(linger_until, consumer.recv()).await {
            Err(_elapsed) => break,
            Ok(Ok(message)) => add(ReceivedMessage::from_borrowed(&message)),
            Ok(Err(e)) => poll_error(e)?,
        }
    }
    Ok(batch)
}

/// Errors from a consumer poll are mostly informational (a broker went away, a partition reached EOF);
/// librdkafka recovers by itself. Only fatal ones end the consumer.
fn poll_error(e: KafkaError) -> Result<(), BusError> {
    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
        error!(error = %e, "fatal consumer error");
        return Err(e.into());
    }
    warn!(error = %e, "consumer poll error");
    Ok(())
}

struct Batcher<'s, H> {
    handler: Arc<H>,
    producer: Producer,
    settings: &'s ConsumerSettings,
}

struct Doomed<'b> {
    message: &'b ReceivedMessage,
    reason: String,
    tenant: Option<String>,
}

impl<H: BatchHandler> Batcher<'_, H> {
    /// Handles the batch and delivers its dead letters, retrying both until they succeed; once it returns
    /// the batch's offsets may be stored. The caller bounds it during a drain.
    async fn process(&self, batch: &Batch) {
        let started = Instant::now();
        let mut doomed: Vec<Doomed<'_>> = batch
            .empty
            .iter()
            .map(|message| Doomed {
                message,
                reason: "message has no payload".into(),
                tenant: None,
            })
            .collect();
        if !batch.messages.is_empty() {
            let letters = self.handle_with_retry(&batch.messages).await;
            let mut seen = BTreeSet::new();
            for letter in letters {
                match batch.messages.get(letter.index) {
                    Some(message) if seen.insert(letter.index) => {
                        doomed.push(Doomed {
                            message,
                            reason: letter.reason,
                            tenant: letter.tenant,
                        });
                    }
                    Some(_) => {}
                    None => error!(
                        index = letter.index,
                        size = batch.messages.len(),
                        "dead letter index out of range"
                    ),
                }
            }
        }
        if !doomed.is_empty() {
            self.dead_letter_with_retry(&doomed).await;
        }
        let group = self.settings.group_id.clone();
        metrics::histogram!("socialops_consumer_batch_seconds", "group" => group.clone())
            .record(started.elapsed().as_secs_f64());
        for (topic, count) in count_by_topic(batch) {
            metrics::counter!("socialops_consumer_messages_total", "topic" => topic.to_owned(), "group" => group.clone())
                .increment(count);
        }
    }

    /// Handles the batch, retrying transient failures. A permanent failure splits the range in
    /// halves, handled in order, until the message that causes it stands alone; that message is
    /// dead-lettered with the error as its reason and everything else takes effect.
    async fn handle_with_retry(&self, messages: &[ReceivedMessage]) -> Vec<DeadLetter> {
        let mut letters = Vec::new();
        // A stack of ranges still to handle, the next one on top, so the batch keeps its order.
        let mut pending = Vec::with_capacity(8);
        pending.push(0..messages.len());
        while let Some(range) = pending.pop() {
            let start = range.start;
            match self.handle_range(&messages[range.clone()]).await {
                Ok(range_letters) => letters.extend(range_letters.into_iter().map(|mut letter| {
                    letter.index += start;
                    letter
                })),
                Err(e) if range.len() == 1 => {
                    let message = &messages[start];
                    warn!(group = %self.settings.group_id, topic = %message.topic, partition = message.partition, offset = message.offset, error = %e, "message failed permanently");
                    letters.push(DeadLetter::new(
                        start,
                        format!("permanent failure: {e}"),
                        tenant_of(message),
                    ));
                }
                Err(e) => {
                    let middle = start + range.len() / 2;
                    debug!(group = %self.settings.group_id, size = range.len(), error = %e, "isolating a permanent failure");
                    pending.push(middle..range.end);
                    pending.push(start..middle);
                }
            }
        }
        letters
    }

    /// One handler call, retried while its failure is transient; a permanent failure is returned.
    async fn handle_range(
        &self,
        messages: &[ReceivedMessage],
    ) -> Result<Vec<DeadLetter>, HandlerError> {
        let span =
            info_span!("consume_batch", group = %self.settings.group_id, size = messages.len());
        if let Some(first) = messages.first() {
            set_parent_from_headers(&span, |name| first.header_str(name).map(str::to_owned));
        }
        let attempt = || self.handler.handle(messages).instrument(span.clone());
        attempt
            .retry(backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &HandlerError| !e.is_permanent())
            .notify(|e: &HandlerError, wait: Duration| {
                warn!(group = %self.settings.group_id, error = %e, retry_in_ms = wait.as_millis() as u64, "batch handler failed");
            })
            .await
    }

    async fn dead_letter_with_retry(&self, doomed: &[Doomed<'_>]) {
        let dlq_headers: Vec<Vec<(String, Vec<u8>)>> = doomed
            .iter()
            .map(|d| headers::for_dead_letter(d.message, &d.reason, d.tenant.as_deref()))
            .collect();
        let send = || {
            let records: Vec<Record<'_>> = doomed
                .iter()
                .zip(&dlq_headers)
                .map(|(d, headers)| Record {
                    topic: &self.settings.dlq_topic,
                    key: d.message.key.as_deref(),
                    payload: d.message.payload.as_deref(),
                    headers,
                })
                .collect();
            self.producer.send_records(records)
        };
        let retrying = send.retry(backoff()).sleep(tokio::time::sleep).notify(|e: &BusError, wait: Duration| {
            warn!(topic = %self.settings.dlq_topic, error = %e, retry_in_ms = wait.as_millis() as u64, "dead-letter delivery failed");
        });
        if retrying.await.is_err() {
            unreachable!("the backoff retries without limit");
        }
        for d in doomed {
            let m = d.message;
            warn!(topic = %m.topic, partition = m.partition, offset = m.offset, reason = %d.reason, "dead-lettered message");
            metrics::counter!("socialops_dead_letters_total", "topic" => m.topic.clone())
                .increment(1);
        }
    }
}

/// The tenant of a message keyed `tenant:user`, for the dead letter's headers.
fn tenant_of(message: &ReceivedMessage) -> Option<String> {
    let key = std::str::from_utf8(message.key.as_deref()?).ok()?;
    let (tenant, _) = key.split_once(':')?;
    (!tenant.is_empty()).then(|| tenant.to_owned())
}

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
}

fn count_by_topic(batch: &Batch) -> BTreeMap<&str, u64> {
    let mut counts = BTreeMap::new();
    for m in batch.messages.iter().chain(&batch.empty) {
        *counts.entry(m.topic.as_str()).or_insert(0) += 1;
    }
    counts
}

/// The highest offset per partition of the batch.
fn last_offsets<'b>(
    messages: impl IntoIterator<Item = &'b ReceivedMessage>,
) -> BTreeMap<(&'b str, i32), i64> {
    let mut last = BTreeMap::new();
    for m in messages {
        let entry = last
            .entry((m.topic.as_str(), m.partition))
            .or_insert(m.offset);
        *entry = (*entry).max(m.offset);
    }
    last
}

fn store_offsets(consumer: &StreamConsumer<Context>, batch: &Batch) {
    for ((topic, partition), offset) in last_offsets(batch.messages.iter().chain(&batch.empty)) {
        // Takes the offset of the last processed message: librdkafka stores and commits offset + 1.
        match consumer.store_offset(topic, partition, offset) {
            Ok(()) => {}
            // The partition was revoked while the batch was handled; its new owner starts from the last
            // commit and sees these messages again.
            Err(KafkaError::StoreOffset(
                RDKafkaErrorCode::State | RDKafkaErrorCode::UnknownPartition,
            )) => {
                debug!(
                    topic,
                    partition, offset, "offset not stored for revoked partition"
                );
            }
            Err(e) => warn!(topic, partition, offset, error = %e, "storing offset failed"),
        }
    }
}

/// Final synchronous commit and group leave. Both block in librdkafka, so they run off the runtime.
async fn close(consumer: Arc<StreamConsumer<Context>>, budget: Duration) {
    let closing = tokio::task::spawn_blocking(move || {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => warn!(error = %e, "final commit failed"),
        }
        consumer.unsubscribe();
        drop(consumer);
    });
    if tokio::time::timeout(budget, closing).await.is_err() {
        warn!("consumer close exceeded the drain timeout");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, partition: i32, offset: i64) -> ReceivedMessage {
        ReceivedMessage {
            topic: topic.into(),
            partition,
            offset,
            key: Some(b"k".to_vec()),
            payload: Some(b"p".to_vec()),
            headers: vec![
                ("traceparent".into(), b"tp".to_vec()),
                (headers::DLQ_REASON.into(), b"older reason".to_vec()),
            ],
            timestamp_ms: None,
        }
    }

    #[test]
    fn last_offsets_take_the_highest_per_partition() {
        let batch = [
            message("a", 0, 5),
            message("a", 1, 9),
            message("a", 0, 7),
            message("b", 0, 1),
        ];
        let last = last_offsets(&batch);
        assert_eq!(last.get(&("a", 0)), Some(&7));
        assert_eq!(last.get(&("a", 1)), Some(&9));
        assert_eq!(last.get(&("b", 0)), Some(&1));
        assert_eq!(last.len(), 3);
    }

    #[test]
    fn a_user_keeps_one_lane_and_users_spread_over_all() {
        assert_eq!(lane_of("acme", "ann", 1), 0);
        assert_eq!(lane_of("acme", "ann", 0), 0);
        let lane = lane_of("acme", "ann", 4);
        assert!(lane < 4);
        assert_eq!(lane_of("acme", "ann", 4), lane);
        let mut used = [0_usize; 4];
        for i in 0..1_000 {
            used[lane_of("acme", &format!("user-{i}"), 4)] += 1;
        }
        assert!(used.iter().all(|&n| n > 150), "uneven lanes: {used:?}");
    }

    #[test]
    fn handler_error_wraps_any_error() {
        fn fails() -> Result<(), HandlerError> {
            "x".parse::<i32>()?;
            Ok(())
        }
        assert!(fails().unwrap_err().to_string().contains("invalid digit"));
        assert_eq!(HandlerError::msg("store down").to_string(), "store down");
    }
}
