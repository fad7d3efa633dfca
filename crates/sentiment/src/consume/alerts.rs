//! Live alerts for `StreamAlerts`. Every replica tails `socialops.alerts.v1` from its end, without a
//! consumer group ([`socialops_bus::Tail`]), and fans each alert out to the streams open on it, so a
//! stream sees every alert of its tenant whichever replica published it.

use std::sync::Arc;

use prost::Message;
use socialops_bus::ReceivedMessage;
use socialops_proto::alerts::v1::CrisisAlert;
use tokio::sync::broadcast;

/// Alerts a slow stream may fall behind by before it misses some.
const HUB_CAPACITY: usize = 4_096;

/// An alert as read back from the topic, with the broker's timestamp.
#[derive(Debug, Clone)]
pub struct PublishedAlert {
    pub alert: CrisisAlert,
    /// When the message was produced, milliseconds since the epoch.
    pub published_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct AlertHub {
    sender: broadcast::Sender<Arc<PublishedAlert>>,
}

impl Default for AlertHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(HUB_CAPACITY).0,
        }
    }
}

impl AlertHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<PublishedAlert>> {
        self.sender.subscribe()
    }

    fn publish(&self, alert: PublishedAlert) {
        // No receivers is normal: nobody is streaming.
        let _ = self.sender.send(Arc::new(alert));
    }
}

/// Tails the alerts topic into the hub. Messages that are not alerts are skipped, not dead-lettered:
/// this reader is a viewer, not the topic's owner.
pub struct AlertTail {
    hub: AlertHub,
}

impl AlertTail {
    pub fn new(hub: AlertHub) -> Self {
        Self { hub }
    }
}

impl AlertTail {
    pub fn deliver(&self, batch: &[ReceivedMessage]) {
        for message in batch {
            let payload = message.payload.as_deref().unwrap_or_default();
            match CrisisAlert::decode(payload) {
                Ok(alert) => self.hub.publish(PublishedAlert {
                    alert,
                    published_at_ms: message.timestamp_ms.unwrap_or(i64::MAX),
                }),
                Err(e) => {
                    tracing::debug!(offset = message.offset, error = %e, "skipped a message that is not an alert")
                }
            }
        }
    }
}
