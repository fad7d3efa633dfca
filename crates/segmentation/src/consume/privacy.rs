//! `socialops.privacy.v1`: each erasure request removes the user's profile, aliases, orders, tags and
//! memberships, and keeps the user's events from before the request from bringing them back.

use socialops_bus::HandlerError;
use socialops_proto::privacy::v1::ErasureRequest;
use socialops_service::Erase;

use crate::domain::state::micros;
use crate::error::SegmentationError;
use crate::update::Updater;

impl Erase for Updater {
    async fn erase(&self, request: &ErasureRequest) -> Result<u64, HandlerError> {
        let requested_at_us = request
            .requested_at
            .as_ref()
            .map_or_else(|| self.now_us(), |t| micros(Some(t)));
        let erased = Updater::erase(self, &request.tenant_id, &request.user_id, requested_at_us)
            .await
            .map_err(SegmentationError::into_handler_error)?;
        Ok(u64::from(erased))
    }
}
