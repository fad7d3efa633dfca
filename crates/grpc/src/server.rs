use std::convert::Infallible;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::{Bytes, Service, StdError, http};
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// In-flight calls get this long to finish after shutdown starts; long-lived streams (a health `Watch`,
/// say) would otherwise hold the server open forever.
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The name grpc.health.v1 uses for the server as a whole.
const WHOLE_SERVER: &str = "";
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// A tonic server with health, reflection, per-request trace spans and ordered shutdown.
pub struct GrpcServer {
    routes: RoutesBuilder,
    health: HealthReporter,
    service_names: Vec<&'static str>,
    file_descriptor_sets: Vec<&'static [u8]>,
    drain_timeout: Duration,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("service_names", &self.service_names)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// A server offering `grpc.health.v1.Health` and server reflection (v1 and v1alpha). Reflection
    /// describes the types of `file_descriptor_sets` (encoded `FileDescriptorSet`s, as
    /// `tonic_prost_build` writes them) and lists only the services this server serves: the ones
    /// added with [`add_service`](Self::add_service), health and reflection.
    pub fn new(file_descriptor_sets: &[&'static [u8]]) -> Self {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        Self {
            routes,
            health,
            service_names: vec![WHOLE_SERVER],
            file_descriptor_sets: file_descriptor_sets.to_vec(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// How long in-flight calls may run on after shutdown starts before the server stops anyway.
    pub fn with_drain_timeout(mut self, drain_timeout: Duration) -> Self {
        self.drain_timeout = drain_timeout;
        self
    }

    /// Adds an API (a generated `XServer`, or one wrapped in an interceptor) and reports it `SERVING`.
    pub async fn add_service<S, B>(&mut self, service: S)
    where
        S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: tonic::codegen::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<StdError>,
    {
        self.routes.add_service(service);
        self.health
            .set_service_status(S::NAME, ServingStatus::Serving)
            .await;
        self.service_names.push(S::NAME);
    }

    /// Serves until `shutdown` is cancelled, then reports every service `NOT_SERVING`, stops accepting
    /// connections and waits (up to the drain timeout) for in-flight calls.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), tonic::transport::Error> {
        let Self {
            mut routes,
            health,
            service_names,
            file_descriptor_sets,
            drain_timeout,
        } = self;
        add_reflection(&mut routes, &file_descriptor_sets, &service_names);
        let local_addr = listener.local_addr().ok();
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

        let signal = {
            let shutdown = shutdown.clone();
            let service_names = service_names.clone();
            async move {
                shutdown.cancelled().await;
                for name in &service_names {
                    health
                        .set_service_status(name, ServingStatus::NotServing)
                        .await;
                }
                tracing::info!("grpc server draining");
            }
        };
        let server = tonic::transport::Server::builder()
            .trace_fn(socialops_telemetry::grpc_server_span)
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming, signal);

        tracing::info!(?local_addr, services = ?service_names, "grpc server listening");
        let mut server = std::pin::pin!(server);
        tokio::select! {
            result = server.as_mut() => result?,
            () = drain_deadline(&shutdown, drain_timeout) => {
                tracing::warn!(drain_timeout_ms = drain_timeout.as_millis(), "grpc calls cut off at drain timeout");
            }
        }
        tracing::info!("grpc server stopped");
        Ok(())
    }
}

/// Reflection (v1 and v1alpha) over the descriptor sets, listing `service_names` and health.
///
/// # Panics
///
/// If a descriptor set does not decode: they are compiled in, so that is a build bug.
fn add_reflection(
    routes: &mut RoutesBuilder,
    file_descriptor_sets: &[&'static [u8]],
    service_names: &[&'static str],
) {
    let reflection = |reflection_service: &str| {
        let builder = file_descriptor_sets.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name(HEALTH_SERVICE)
                .with_service_name(reflection_service),
            |builder, set| builder.register_encoded_file_descriptor_set(set),
        );
        service_names
            .iter()
            .filter(|name| **name != WHOLE_SERVER)
            .fold(builder, |builder, name| builder.with_service_name(*name))
    };
    routes
        .add_service(
            reflection("grpc.reflection.v1.ServerReflection")
                .build_v1()
                .expect("file descriptor sets decode"),
        )
        .add_service(
            reflection("grpc.reflection.v1alpha.ServerReflection")
                .build_v1alpha()
                .expect("file descriptor sets decode"),
        );
}

async fn drain_deadline(shutdown: &CancellationToken, drain_timeout: Duration) {
    shutdown.cancelled().await;
    tokio::time::sleep(drain_timeout).await;
}
