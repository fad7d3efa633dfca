//! The raw topic's handler: decode each message, ingest the batch, dead-letter what can never be
//! ingested.

use std::sync::Arc;

use socialops_bus::{BatchHandler, DeadLetter, HandlerError, ReceivedMessage, headers};

use crate::domain::{Outcome, decode_raw};
use crate::error::IngestionError;
use crate::ingest::{Candidate, Ingestor, Source};

pub struct RawEventHandler {
    ingestor: Arc<Ingestor>,
}

impl RawEventHandler {
    pub fn new(ingestor: Arc<Ingestor>) -> Self {
        Self { ingestor }
    }
}

impl BatchHandler for RawEventHandler {
    async fn handle(&self, batch: &[ReceivedMessage]) -> Result<Vec<DeadLetter>, HandlerError> {
        let mut tenants = Vec::with_capacity(batch.len());
        let candidates: Vec<Candidate> = batch
            .iter()
            .map(|message| {
                let payload = message.payload.as_deref().unwrap_or_default();
                let decoded = decode_raw(payload, message.header(headers::CONTENT_TYPE))
                    .map_err(|e| e.to_string());
                tenants.push(
                    decoded
                        .as_ref()
                        .ok()
                        .map(|e| e.tenant_id.clone())
                        .filter(|t| !t.is_empty()),
                );
                decoded
            })
            .collect();
        let outcomes = self
            .ingestor
            .ingest(candidates, Source::Kafka)
            .await
            .map_err(IngestionError::into_handler_error)?;
        Ok(outcomes
            .into_iter()
            .zip(tenants)
            .enumerate()
            .filter_map(|(index, (outcome, tenant))| match outcome {
                Outcome::Rejected(reason) => Some(DeadLetter {
                    index,
                    reason,
                    tenant,
                }),
                Outcome::Accepted | Outcome::Duplicate => None,
            })
            .collect())
    }
}
