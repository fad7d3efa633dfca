//! Bus handlers: canonical events fold into profiles ([`EventHandler`]); erasure requests remove
//! them (the updater is [`socialops_service::Erase`], consumed by the shared
//! [`socialops_service::ErasureHandler`]). Both run under their own consumer group, at least once;
//! the store makes the effect exactly once.

mod events;
mod privacy;

pub use events::EventHandler;
