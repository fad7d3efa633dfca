use std::sync::Arc;

use prost::Message;
use socialops_bus::{BatchHandler, DeadLetter, HandlerError, ReceivedMessage};
use socialops_proto::events::v1::SocialEvent;

use crate::error::SentimentError;
use crate::monitor::Monitor;

/// `socialops.events.v1`: decodes the batch, dead-letters what is not a canonical event, and
/// monitors the rest in one transaction.
pub struct EventHandler {
    monitor: Arc<Monitor>,
}

impl EventHandler {
    pub fn new(monitor: Arc<Monitor>) -> Self {
        Self { monitor }
    }
}

/// Why a message on the canonical topic cannot be used; ingestion validated it, so this means a
/// producer other than ingestion wrote to the topic.
fn decode(message: &ReceivedMessage) -> Result<SocialEvent, String> {
    let payload = message.payload.as_deref().unwrap_or_default();
    let event = SocialEvent::decode(payload).map_err(|e| format!("not a SocialEvent: {e}"))?;
    if event.tenant_id.is_empty() || event.event_id.is_empty() {
        return Err("tenant_id and event_id are required".into());
    }
    Ok(event)
}

impl BatchHandler for EventHandler {
    async fn handle(&self, batch: &[ReceivedMessage]) -> Result<Vec<DeadLetter>, HandlerError> {
        let mut events = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        for (index, message) in batch.iter().enumerate() {
            match decode(message) {
                Ok(event) => events.push(event),
                Err(reason) => dead.push(DeadLetter::new(index, reason, None)),
            }
        }
        let outcome = self
            .monitor
            .handle_events(&events)
            .await
            .map_err(SentimentError::into_handler_error)?;
        tracing::debug!(
            events = events.len(),
            new = outcome.new_events,
            mentions = outcome.mentions,
            alerts = outcome.alerts,
            "events monitored"
        );
        Ok(dead)
    }
}
