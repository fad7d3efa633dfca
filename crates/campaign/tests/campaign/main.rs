//! The campaign service through its real doors: profile changes, events, alerts and erasure requests
//! on the broker, sends read back from the campaigns topic, and the gRPC API, on SQLite and
//! PostgreSQL.

mod coupons;
mod crisis;
mod faq;
mod journeys;
mod lifecycle;
mod pressure;
mod referrals;
mod report;
mod support;
