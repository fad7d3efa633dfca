use std::sync::Arc;

use prost::Message;
use socialops_bus::{BatchHandler, DeadLetter, HandlerError, ReceivedMessage, lane_of};
use socialops_proto::events::v1::SocialEvent;
use tokio::task::JoinSet;

use crate::error::SegmentationError;
use crate::update::Updater;

/// `socialops.events.v1`: decodes the batch, dead-letters what is not a canonical event, and folds
/// the rest into profiles: split by user into `lanes` transactions that run at the same time (one
/// transaction when `lanes` is 1), so that the database works on one while the service prepares
/// another.
pub struct EventHandler {
    updater: Arc<Updater>,
    lanes: usize,
}

impl EventHandler {
    pub fn new(updater: Arc<Updater>, lanes: usize) -> Self {
        Self {
            updater,
            lanes: lanes.max(1),
        }
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
        let mut lanes: Vec<Vec<SocialEvent>> = vec![Vec::new(); self.lanes];
        let mut dead = Vec::new();
        for (index, message) in batch.iter().enumerate() {
            match decode(message) {
                Ok(event) => {
                    lanes[lane_of(&event.tenant_id, &event.user_id, self.lanes)].push(event);
                }
                Err((reason, tenant)) => dead.push(DeadLetter::new(index, reason, tenant)),
            }
        }
        if let [events] = lanes.as_slice() {
            self.updater
                .apply_events(events)
                .await
                .map_err(SegmentationError::into_handler_error)?;
            return Ok(dead);
        }
        let mut running = JoinSet::new();
        for events in lanes.into_iter().filter(|events| !events.is_empty()) {
            let updater = self.updater.clone();
            running.spawn(async move { updater.apply_events(&events).await });
        }
        // Every lane runs to its end even when another fails: what committed is kept, and the retry
        // of the whole batch finds those events already processed.
        let mut outcome = Ok(());
        while let Some(done) = running.join_next().await {
            let done = done.map_err(|e| SegmentationError::Runtime(format!("lane task: {e}")));
            if outcome.is_ok() {
                outcome = done.and_then(|applied| applied);
            }
        }
        outcome.map_err(SegmentationError::into_handler_error)?;
        Ok(dead)
    }
}
