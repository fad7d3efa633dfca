use std::sync::Arc;

use prost::Message;
use socialops_bus::{BatchHandler, DeadLetter, HandlerError, ReceivedMessage};
use socialops_proto::events::v1::SocialEvent;

use crate::update::Updater;

/// `socialops.events.v1`: decodes the batch, dead-letters what is not a canonical event, and folds
/// the rest into profiles in one transaction.
pub struct EventHandler {
    updater: Arc<Updater>,
}

impl EventHandler {
    pub fn new(updater: Arc<Updater>) -> Self {
        Self { updater }
    }
}

/// Why a message on the canonical topic cannot be used; ingestion validated it, so this means a
/// producer other than ingestion wrote to the topic.
fn decode(message: &ReceivedMessage) -> Result<SocialEvent, (String, Option<String>)> {
    let payload = message.payload.as_deref().unwrap_or_default();
    let event =
        SocialEvent::decode(payload).map_err(|e| (format!("not a SocialEvent: {e}"), None))?;
    if event.tenant_id.is_empty() || event.user_id.is_empty() || event.event_id.is_empty() {
        let tenant = Some(event.tenant_id).filter(|t| !t.is_empty());
        return Err((
            "tenant_id, user_id and event_id are required".into(),
            tenant,
        ));
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
                Err((reason, tenant)) => dead.push(DeadLetter::new(index, reason, tenant)),
            }
        }
        self.updater.apply_events(&events).await?;
        Ok(dead)
    }
}
