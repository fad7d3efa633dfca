//! The one path every event takes, whichever door it came in by: validate, deduplicate, store with its
//! outbox message, wake the relay.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use socialops_bus::OutgoingMessage;
use socialops_proto::events::v1::SocialEvent;
use tokio::sync::Notify;

use crate::domain::{Outcome, Validator, user_key};
use crate::error::IngestionError;
use crate::store::{EventStore, NewEvent};

/// Which door an event came in by, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Kafka,
    Grpc,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Kafka => "kafka",
            Source::Grpc => "grpc",
        }
    }
}

/// One event offered for ingestion: decoded, or already refused with a reason.
pub type Candidate = Result<SocialEvent, String>;

#[derive(Debug)]
pub struct Ingestor {
    store: EventStore,
    validator: Validator,
    events_topic: String,
    relay: Arc<Notify>,
}

impl Ingestor {
    pub fn new(
        store: EventStore,
        validator: Validator,
        events_topic: String,
        relay: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            validator,
            events_topic,
            relay,
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Tells the outbox relay there is something to send, after a write outside [`Ingestor::ingest`].
    pub fn wake_relay(&self) {
        self.relay.notify_one();
    }

    /// Decides every candidate's outcome. An error means nothing was stored and the whole batch may be
    /// retried: outcomes are only returned once the accepted events and their outbox rows are durable.
    pub async fn ingest(
        &self,
        candidates: Vec<Candidate>,
        source: Source,
    ) -> Result<Vec<Outcome>, IngestionError> {
        let started = Instant::now();
        let now = SystemTime::now();
        let num_candidates = candidates.len();
        let mut outcomes = vec![Outcome::Duplicate; num_candidates];
        let mut to_store = Vec::with_capacity(num_candidates);
        let mut positions = Vec::with_capacity(num_candidates);
        let mut seen = HashSet::with_capacity(num_candidates);
        for (index, candidate) in candidates.into_iter().enumerate() {
            match candidate.and_then(|event| {
                self.validator
                    .canonicalise(event, now)
                    .map_err(|e| e.to_string())
            }) {
                Err(reason) => outcomes[index] = Outcome::Rejected(reason),
                Ok(event) => {
                    if seen.insert((event.tenant_id.clone(), event.event_id.clone())) {
                        to_store.push(NewEvent::new(event));
                        positions.push(index);
                    }
                }
            }
        }

        let trace_headers = socialops_telemetry::current_trace_headers();
        let inserted = self
            .store
            .insert_new(&to_store, |new| self.publication(new, &trace_headers))
            .await?;
        let mut any_new = false;
        for (index, new) in positions.into_iter().zip(inserted) {
            if new {
                outcomes[index] = Outcome::Accepted;
                any_new = true;
            }
        }
        if any_new {
            self.relay.notify_one();
        }
        record(&outcomes, source, started);
        Ok(outcomes)
    }

    fn publication(&self, new: &NewEvent, trace_headers: &[(String, String)]) -> OutgoingMessage {
        let event = &new.event;
        let mut message = OutgoingMessage::protobuf::<SocialEvent>(
            &self.events_topic,
            Some(user_key(&event.tenant_id, &event.user_id)),
            new.encoded.clone(),
        );
        for (name, value) in trace_headers {
            message = message.header(name, value.as_bytes());
        }
        message
    }
}

fn record(outcomes: &[Outcome], source: Source, started: Instant) {
    let (mut accepted, mut duplicate, mut rejected) = (0u64, 0u64, 0u64);
    for outcome in outcomes {
        match outcome {
            Outcome::Accepted => accepted += 1,
            Outcome::Duplicate => duplicate += 1,
            Outcome::Rejected(_) => rejected += 1,
        }
    }
    let source = source.label();
    metrics::counter!("socialops_events_received_total", "source" => source)
        .increment(outcomes.len() as u64);
    metrics::counter!("socialops_events_accepted_total", "source" => source).increment(accepted);
    metrics::counter!("socialops_events_duplicate_total", "source" => source).increment(duplicate);
    metrics::counter!("socialops_events_rejected_total", "source" => source).increment(rejected);
    metrics::histogram!("socialops_ingest_batch_seconds", "source" => source)
        .record(started.elapsed().as_secs_f64());
}
