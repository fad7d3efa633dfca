//! Telemetry shared by every socialops service.
//!
//! - [`init`] installs the global `tracing` subscriber: an `EnvFilter`ed fmt layer (text or JSON) and an
//!   OpenTelemetry layer that exports spans over OTLP when an endpoint is configured.
//! - W3C trace context (`traceparent`, `tracestate`) travels with every call and message:
//!   [`current_trace_headers`] and [`set_parent_from_headers`] for Kafka headers, [`grpc_server_span`] and
//!   [`TracePropagationInterceptor`] for gRPC metadata.
//! - [`metrics_handle`] installs the Prometheus recorder behind the `metrics` macros and [`serve_metrics`]
//!   answers `GET /metrics`.
//!
//! The OpenTelemetry layer is installed even without a collector, so spans always carry sampled trace and
//! span ids and trace context propagates across services whether or not anything is exported.

mod config;
mod prometheus;
mod propagation;
mod subscriber;

pub use config::{LogFormat, TelemetryConfig};
pub use prometheus::{metrics_handle, serve_metrics};
pub use propagation::{
    TracePropagationInterceptor, current_trace_headers, grpc_server_span, set_parent_from_headers,
};
pub use subscriber::{TelemetryError, TelemetryGuard, init, init_for_tests};
