//! Segmentation through its real doors: the canonical and privacy Kafka topics in, the profiles
//! topic and the gRPC API out, on SQLite and PostgreSQL.

mod api;
mod identity;
mod isolation;
mod journey;
mod poison;
mod privacy;
mod rebuild;
mod segments;
mod store;
mod support;
