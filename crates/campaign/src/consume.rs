//! Bus handlers: profile changes, canonical events and crisis alerts are decoded here and handed to
//! the engine, one batch per transaction; what cannot be decoded is dead-lettered with the reason.
//! Erasure requests go through the shared [`socialops_service::ErasureHandler`].

use std::sync::Arc;

use prost::Message;
use socialops_bus::{BatchHandler, DeadLetter, HandlerError, ReceivedMessage};
use socialops_proto::alerts::v1::CrisisAlert;
use socialops_proto::events::v1::SocialEvent;
use socialops_proto::privacy::v1::ErasureRequest;
use socialops_proto::profiles::v1::ProfileChange;
use socialops_service::Erase;

use crate::engine::Engine;
use crate::error::CampaignError;

/// Which topic a handler reads.
#[derive(Debug, Clone, Copy)]
pub enum Feed {
    Profiles,
    Events,
    Alerts,
}

pub struct Handler {
    engine: Arc<Engine>,
    feed: Feed,
}

impl Handler {
    pub fn new(engine: Arc<Engine>, feed: Feed) -> Self {
        Self { engine, feed }
    }
}

fn decode<M: Message + Default>(
    message: &ReceivedMessage,
    what: &str,
    ok: impl Fn(&M) -> bool,
) -> Result<M, String> {
    let payload = message.payload.as_deref().unwrap_or_default();
    let decoded = M::decode(payload).map_err(|e| format!("not a {what}: {e}"))?;
    if !ok(&decoded) {
        return Err(format!("{what} without its tenant, user or id"));
    }
    Ok(decoded)
}

fn decode_all<M: Message + Default>(
    batch: &[ReceivedMessage],
    what: &str,
    ok: impl Fn(&M) -> bool,
) -> (Vec<M>, Vec<DeadLetter>) {
    let mut decoded = Vec::with_capacity(batch.len());
    let mut dead = Vec::new();
    for (index, message) in batch.iter().enumerate() {
        match decode(message, what, &ok) {
            Ok(m) => decoded.push(m),
            Err(reason) => dead.push(DeadLetter::new(index, reason, None)),
        }
    }
    (decoded, dead)
}

impl BatchHandler for Handler {
    async fn handle(&self, batch: &[ReceivedMessage]) -> Result<Vec<DeadLetter>, HandlerError> {
        let (outcome, dead) = match self.feed {
            Feed::Profiles => {
                let (changes, dead) = decode_all(batch, "ProfileChange", |c: &ProfileChange| {
                    !c.tenant_id.is_empty() && !c.user_id.is_empty() && !c.change_id.is_empty()
                });
                (self.engine.handle_profile_changes(&changes).await, dead)
            }
            Feed::Events => {
                let (events, dead) = decode_all(batch, "SocialEvent", |e: &SocialEvent| {
                    !e.tenant_id.is_empty() && !e.event_id.is_empty()
                });
                (self.engine.handle_events(&events).await, dead)
            }
            Feed::Alerts => {
                let (alerts, dead) = decode_all(batch, "CrisisAlert", |a: &CrisisAlert| {
                    !a.tenant_id.is_empty() && !a.crisis_id.is_empty() && !a.alert_id.is_empty()
                });
                (self.engine.handle_alerts(&alerts).await, dead)
            }
        };
        let outcome = outcome.map_err(CampaignError::into_handler_error)?;
        tracing::debug!(
            feed = ?self.feed,
            messages = batch.len(),
            entered = outcome.entered,
            sent = outcome.sent,
            delayed = outcome.delayed,
            dropped = outcome.dropped,
            held = outcome.held,
            "campaign batch handled"
        );
        Ok(dead)
    }
}

impl Erase for Engine {
    async fn erase(&self, request: &ErasureRequest) -> Result<u64, HandlerError> {
        Engine::erase(self, &request.tenant_id, &request.user_id)
            .await
            .map_err(CampaignError::into_handler_error)
    }
}
