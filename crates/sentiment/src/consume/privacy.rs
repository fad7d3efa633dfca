//! `socialops.privacy.v1`: each erasure request removes the user's mentions and messages.

use socialops_bus::HandlerError;
use socialops_proto::privacy::v1::ErasureRequest;
use socialops_service::Erase;

use crate::error::SentimentError;
use crate::monitor::Monitor;

impl Erase for Monitor {
    async fn erase(&self, request: &ErasureRequest) -> Result<u64, HandlerError> {
        Monitor::erase(self, &request.tenant_id, &request.user_id)
            .await
            .map_err(SentimentError::into_handler_error)
    }
}
