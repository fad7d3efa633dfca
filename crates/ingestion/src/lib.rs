//! The ingestion service: takes social and commerce events from the raw Kafka topic and over gRPC,
//! validates and deduplicates them, stores them and republishes canonical events through an outbox.
//!
//! Flow: [`consume`] (raw topic) and [`api`] (gRPC) → [`ingest::Ingestor`] → [`domain`] decides →
//! [`store`] remembers and enqueues → the bus's outbox relay publishes on `socialops.events.v1`.

pub mod api;
pub mod config;
pub mod consume;
pub mod domain;
pub mod error;
pub mod ingest;
pub mod service;
pub mod store;

pub use config::IngestionConfig;
pub use error::IngestionError;
pub use service::{DEV_ALIAS_KEY, Dependencies, RunningIngestion, start};
