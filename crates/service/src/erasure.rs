use std::future::Future;
use std::sync::Arc;

use socialops_bus::{BatchHandler, DeadLetter, HandlerError, ReceivedMessage};
use socialops_proto::privacy::v1::ErasureRequest;

/// A service that keeps something about users and removes it when asked.
pub trait Erase: Send + Sync + 'static {
    /// Removes what the service holds of `request`'s user and returns how many records went. Erasing
    /// what is already gone removes nothing and succeeds, so redelivery is harmless.
    fn erase(
        &self,
        request: &ErasureRequest,
    ) -> impl Future<Output = Result<u64, HandlerError>> + Send;
}

/// `socialops.privacy.v1`: hands each erasure request to the service; a message that is not an
/// erasure request naming a tenant and a user is dead-lettered with the reason.
pub struct ErasureHandler<T> {
    service: Arc<T>,
}

impl<T> ErasureHandler<T> {
    pub fn new(service: Arc<T>) -> Self {
        Self { service }
    }
}

impl<T: Erase> BatchHandler for ErasureHandler<T> {
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
            let erased = self.service.erase(&request).await?;
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
