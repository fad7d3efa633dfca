//! The sentiment service for socialops: every user comment, mention, message or post is scored by a
//! [`Scorer`] (the `socialops_scorer` crate, re-exported here with its [`Score`] and [`Label`]), matched
//! against the tenant's watchlists and counted; negative spikes open crises with a severity and a
//! response clock, and brand replies are timed.
//!
//! Flow: [`consume`] (canonical events, erasure requests), [`sweep`] (the response clock) and [`api`]
//! (gRPC) → [`monitor::Monitor`] → [`domain`] decides (watchlist matching, spike detection, severity,
//! the crisis lifecycle, reply times) → [`store`] remembers and enqueues → the bus's outbox relay
//! publishes crisis alerts on `socialops.alerts.v1`.

pub mod api;
pub mod config;
pub mod consume;
pub mod domain;
pub mod error;
pub mod monitor;
pub mod service;
pub mod store;
pub mod sweep;

pub use config::{SentimentConfig, SpikeSettings, TenantSettings};
pub use error::SentimentError;
pub use service::{Dependencies, RunningSentiment, shared_scorer, start};
pub use socialops_scorer::{Label, Score, Scorer};
pub use socialops_storage::clock::{Clock, ManualClock, SystemClock};
