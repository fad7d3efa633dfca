//! Bus handlers: canonical events fold into profiles ([`EventHandler`]), erasure requests remove
//! them ([`ErasureHandler`]). Both run under their own consumer group, at least once; the store makes
//! the effect exactly once.

mod events;
mod privacy;

pub use events::EventHandler;
pub use privacy::ErasureHandler;
