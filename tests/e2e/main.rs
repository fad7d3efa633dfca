//! socialops end to end: ingestion, segmentation and sentiment running together on one broker and
//! one token store, driven only through what a user has (ingestion's gRPC API and the raw Kafka
//! topic in; each service's gRPC API and the published topics out), once with a scratch PostgreSQL
//! database per service and once with SQLite files.

mod duplicate;
mod erasure;
mod story;
mod support;
mod tenants;
