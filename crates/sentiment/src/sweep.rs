//! What the clock changes without any event: reminders at half of the response time and when it runs
//! out, for crises nobody has acknowledged or responded to; and the processed-event keys older than
//! the deduplication window, which are deleted.

use std::sync::Arc;
use std::time::Duration;

use socialops_storage::processed;
use tokio_util::sync::CancellationToken;

use crate::error::SentimentError;
use crate::monitor::{Monitor, remind};

pub struct Sweeper {
    pub monitor: Arc<Monitor>,
    pub interval: Duration,
    pub dedup_window: Duration,
}

impl Sweeper {
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SentimentError> {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {
                    if let Err(error) = self.tick().await {
                        tracing::warn!(error = %error, "sweep failed, retrying next tick");
                    }
                }
            }
        }
    }

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
