//! The sentiment service through its real doors: canonical events and erasure requests on the broker,
//! alerts read back from the alerts topic, and the gRPC API, on SQLite and PostgreSQL.

mod api;
mod crises;
mod fixtures;
mod poison;
mod replies;
mod rhythm;
mod store;
mod support;
