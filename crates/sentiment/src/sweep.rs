//! What the clock changes without any event: reminders at half of the response time and when it runs
//! out, for crises nobody has acknowledged or responded to.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::SentimentError;
use crate::monitor::{Monitor, remind};

pub struct Sweeper {
    pub monitor: Arc<Monitor>,
    pub interval: Duration,
}

impl Sweeper {
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SentimentError> {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {
                    if let Err(error) = remind(&self.monitor).await {
                        tracing::warn!(error = %error, "sweep failed, retrying next tick");
                    }
                }
            }
        }
    }
}
