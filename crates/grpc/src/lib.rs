//! The gRPC server and client plumbing every socialops service shares.
//!
//! [`GrpcServer`] serves a service's APIs together with `grpc.health.v1` and server reflection (so `grpcurl`
//! works without proto files), opens one span per request continuing the caller's trace, and shuts down in
//! order: health turns `NOT_SERVING`, then in-flight calls drain. Authentication is per service: wrap each
//! API with `socialops_auth::AuthInterceptor` when adding it; health and reflection stay open.
//!
//! [`RunningService`] runs a service's background tasks beside its server and stops them in order: the
//! tasks drain first, the server stops last.
//!
//! [`connect`] and [`ClientInterceptor`] are the client side: a channel with sane timeouts, and an
//! interceptor that sends the bearer token and the current trace context.

mod client;
mod server;
mod service;
mod status;

pub use client::{ClientInterceptor, connect};
pub use server::GrpcServer;
pub use service::{RunningService, ServiceError};
pub use status::{client_status, database_code, database_status};
