use std::sync::Arc;

use socialops_bus::{BatchHandler, DeadLetter, HandlerError, ReceivedMessage};
use socialops_proto::privacy::v1::ErasureRequest;

use crate::monitor::Monitor;

/// `socialops.privacy.v1`: each erasure request removes the user's mentions and messages. Erasing
/// what is already gone is a no-op, so redelivery is harmless.
pub struct ErasureHandler {
    monitor: Arc<Monitor>,
}

impl ErasureHandler {
    pub fn new(monitor: Arc<Monitor>) -> Self {
        Self { monitor }
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
            let erased = self
                .monitor
                .erase(&request.tenant_id, &request.user_id)
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
