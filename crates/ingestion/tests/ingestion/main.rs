//! Ingestion through its real doors: gRPC and the raw Kafka topic, on SQLite and PostgreSQL.

mod grpc;
mod raw_topic;
mod store;
mod support;
