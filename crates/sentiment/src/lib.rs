//! Sentiment for socialops: every comment, mention, message or user post gets a polarity in [-1, 1], a
//! label and a confidence. Chinese is segmented with jieba-rs plus a platform-slang dictionary; English is
//! tokenised on letters. A lexicon with negation, degree, contrast, emoji and punctuation rules works on its
//! own; a logistic-regression model trained from labelled texts can be attached to sharpen it.
//!
//! The scoring core ([`Scorer`], [`domain`]'s scoring modules) is pure and synchronous: build one
//! [`Scorer`] at start-up and share it.
//!
//! Around it runs the sentiment service. Flow: [`consume`] (canonical events, erasure requests), [`sweep`]
//! (the response clock) and [`api`] (gRPC) → [`monitor::Monitor`] → [`domain`] decides (watchlist matching,
//! spike detection, severity, the crisis lifecycle, reply times) → [`store`] remembers and enqueues → the
//! bus's outbox relay publishes crisis alerts on `socialops.alerts.v1`.

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
pub use domain::{
    BinaryConfusion, FeatureSet, Features, Label, LogisticModel, Score, Scorer, TrainConfig,
};
pub use error::SentimentError;
pub use service::{Dependencies, RunningSentiment, start};
pub use socialops_storage::clock::{Clock, ManualClock, SystemClock};
