//! What the clock changes without any event: reminders at half of the response time and when it runs
//! out, for crises nobody has acknowledged or responded to; and the processed-event keys older than
//! the deduplication window, which are deleted.

use std::sync::Arc;
use std::time::Duration;

use socialops_storage::processed;

use crate::error::SentimentError;
use crate::monitor::{Monitor, remind};

/// One pass of the sweep; the service skeleton runs it every `sweep_interval`.
pub struct Sweeper {
    pub monitor: Arc<Monitor>,
    pub dedup_window: Duration,
}

impl Sweeper {
    /// One pass: reminders, then expired processed-event keys.
    pub async fn tick(&self) -> Result<(), SentimentError> {
        remind(&self.monitor).await?;
        let cutoff = processed::dedup_cutoff(self.monitor.now_us(), self.dedup_window);
        let forgotten = processed::forget_processed(self.monitor.store().db(), cutoff).await?;
        if forgotten > 0 {
            tracing::debug!(forgotten, "expired processed-event keys deleted");
        }
        Ok(())
    }
}
