use std::sync::Arc;

use socialops_bus::{BatchHandler, DeadLetter, HandlerError, ReceivedMessage};
use socialops_proto::privacy::v1::ErasureRequest;

use crate::domain::state::micros;
use crate::update::Updater;

/// `socialops.privacy.v1`: each erasure request removes the user's profile, aliases, orders, tags and
/// memberships, and keeps the user's events from before the request from bringing them back.
/// Erasing what is already gone changes nothing, so redelivery is harmless.
pub struct ErasureHandler {
    updater: Arc<Updater>,
}

impl ErasureHandler {
    pub fn new(updater: Arc<Updater>) -> Self {
        Self { updater }
    }
}

impl BatchHandler for ErasureHandler {
    async fn handle(&self, batch: &[ReceivedMessage]) -> Result<Vec<DeadLetter>, HandlerError> {
        let mut dead = Vec::new();
        for (index, message) in batch.iter().enumerate() {
            let payload = message.payload.as_deref().unwrap_or_default();
            let request = match ErasureRequest::decode_required(payload) {
                Ok(request) => request,
                Err(reason) => {
                    dead.push(DeadLetter::new(index, reason, None));
                    continue;
                }
            };
            let requested_at_us = request
                .requested_at
                .as_ref()
                .map_or_else(|| self.updater.now_us(), |t| micros(Some(t)));
            let erased = self
                .updater
                .erase(&request.tenant_id, &request.user_id, requested_at_us)
                .await?;
            tracing::info!(
                tenant = %request.tenant_id,
                request_id = %request.request_id,
                erased,
                "erasure request handled"
            );
        }
        Ok(dead)
    }
}
