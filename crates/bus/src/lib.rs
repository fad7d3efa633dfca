//! Kafka for socialops: one idempotent batching [`Producer`], an at-least-once batch consumer
//! ([`run_consumer`]) that dead-letters what can never be processed, a group-less [`Tail`] for viewers,
//! a transactional [`Outbox`] with its [`OutboxRelay`], dead-letter replay, topic administration and
//! an in-process [`EmbeddedBroker`].
//!
//! Every service uses this crate unchanged; what differs between services is the [`BatchHandler`].

mod admin;
mod config;
mod consumer;
mod embedded;
mod error;
pub mod headers;
mod message;
mod outbox;
mod producer;
mod replay;

pub use admin::{SERVICE_TOPIC_PARTITIONS, ensure_service_topics, ensure_topics};
pub use config::{KafkaConfig, Topics};
pub use consumer::{
    BatchHandler, ConsumerSettings, DeadLetter, HandlerError, Tail, lane_of, run_consumer,
};
pub use embedded::EmbeddedBroker;
pub use error::BusError;
pub use message::{OutgoingMessage, ReceivedMessage};
pub use outbox::{Outbox, OutboxRelay};
pub use producer::Producer;
pub use replay::replay_dead_letters;
