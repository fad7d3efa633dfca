//! Bus handlers: canonical events are monitored ([`EventHandler`]), erasure requests remove a user's
//! mentions and messages (the monitor is [`socialops_service::Erase`], consumed by the shared
//! [`socialops_service::ErasureHandler`]), and the alerts topic is tailed for live streams
//! ([`AlertTail`]). The first two run under the service's consumer group, at least once; the store
//! makes their effect exactly once.

mod alerts;
mod events;
mod privacy;

pub use alerts::{AlertHub, AlertTail, PublishedAlert};
pub use events::EventHandler;
