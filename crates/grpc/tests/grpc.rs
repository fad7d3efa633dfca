use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use socialops_auth::{
    AuthConfig, AuthInterceptor, BearerToken, Principal, Role, TokenEntry, TokenStore, hash_token,
};
use socialops_grpc::{ClientInterceptor, GrpcServer, connect};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::{InterceptedService, Service, http};
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tracing::Instrument as _;

const TOKEN: &str = "so_integration_test_token";
const SERVE_RETURN_TIMEOUT: Duration = Duration::from_secs(5);

/// The trace id of the current span, as its `traceparent` header carries it.
fn current_trace_id() -> Option<String> {
    socialops_telemetry::current_trace_headers()
        .into_iter()
        .find(|(name, _)| name == "traceparent")
        .and_then(|(_, traceparent)| traceparent.split('-').nth(1).map(str::to_owned))
}

/// A stand-in API with no proto: every call ends in a status naming the caller, which shows whether the
/// auth interceptor let it through and with which principal.
#[derive(Clone)]
struct Echo;

impl NamedService for Echo {
    const NAME: &'static str = "socialops.test.v1.Echo";
}

impl Service<http::Request<Body>> for Echo {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let status = match request.extensions().get::<Principal>() {
            Some(principal) => tonic::Status::unimplemented(format!(
                "reached as {} in trace {}",
                principal.tenant_id,
                current_trace_id().unwrap_or_default()
            )),
            None => tonic::Status::internal("no principal"),
        };
        std::future::ready(Ok(status.into_http()))
    }
}

struct TestApp {
    addr: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestApp {
    async fn channel(&self) -> Channel {
        connect(&self.addr.to_string()).await.unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(SERVE_RETURN_TIMEOUT, self.server)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

async fn spawn_app(with_echo: bool, drain_timeout: Duration) -> TestApp {
    socialops_telemetry::init_for_tests();
    // Every service of the platform is in the descriptor set; this server serves only Echo.
    let mut server =
        GrpcServer::new(&[socialops_proto::FILE_DESCRIPTOR_SET]).with_drain_timeout(drain_timeout);
    if with_echo {
        let store = TokenStore::from_config(&AuthConfig {
            tokens: vec![TokenEntry {
                id: "test".to_owned(),
                tenant_id: "acme".to_owned(),
                role: Role::Writer,
                sha256: hash_token(TOKEN),
            }],
            tokens_file: None,
        })
        .unwrap();
        server
            .add_service(InterceptedService::new(Echo, AuthInterceptor::new(store)))
            .await;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(server.serve(listener, shutdown.clone()));
    TestApp {
        addr,
        shutdown,
        server,
    }
}

async fn health_status(channel: Channel, service: &str) -> Result<ServingStatus, tonic::Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

async fn echo(channel: Channel, token: Option<&str>) -> tonic::Status {
    let interceptor = ClientInterceptor::new(token.map(|token| BearerToken::new(token).unwrap()));
    let mut client = tonic::client::Grpc::new(
        tonic::service::interceptor::InterceptedService::new(channel, interceptor),
    );
    client.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    client
        .unary(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/socialops.test.v1.Echo/Ping"),
            codec,
        )
        .await
        .expect_err("echo always ends in a status")
}

#[tokio::test]
async fn health_reports_the_server_serving() {
    let app = spawn_app(false, Duration::from_secs(5)).await;
    let status = health_status(app.channel().await, "").await.unwrap();
    assert_eq!(status, ServingStatus::Serving);
    let unknown = health_status(app.channel().await, "socialops.nope.v1.Nope")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    app.stop().await;
}

async fn listed_services(app: &TestApp) -> Vec<String> {
    let mut client = ServerReflectionClient::new(app.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    list.service
        .into_iter()
        .map(|service| service.name)
        .collect()
}

#[tokio::test]
async fn reflection_lists_health_and_reflection() {
    let app = spawn_app(false, Duration::from_secs(5)).await;
    let names = listed_services(&app).await;
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n == "grpc.reflection.v1.ServerReflection"),
        "{names:?}"
    );
    app.stop().await;
}

/// Reflection lists what this port serves, not every service of the descriptor sets it knows.
#[tokio::test]
async fn reflection_lists_only_the_services_served() {
    let app = spawn_app(true, Duration::from_secs(5)).await;
    let mut names = listed_services(&app).await;
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "socialops.test.v1.Echo",
        ],
    );
    app.stop().await;
}

#[tokio::test]
async fn added_services_are_healthy_and_guarded_by_their_interceptor() {
    let app = spawn_app(true, Duration::from_secs(5)).await;
    let status = health_status(app.channel().await, Echo::NAME)
        .await
        .unwrap();
    assert_eq!(status, ServingStatus::Serving);

    let rejected = echo(app.channel().await, None).await;
    assert_eq!(
        rejected.code(),
        tonic::Code::Unauthenticated,
        "{rejected:?}"
    );
    let wrong = echo(app.channel().await, Some("so_wrong")).await;
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated, "{wrong:?}");

    let client_span = tracing::info_span!("client call");
    let trace_id = client_span
        .in_scope(current_trace_id)
        .expect("the client span is traced");
    let reached = echo(app.channel().await, Some(TOKEN))
        .instrument(client_span)
        .await;
    assert_eq!(reached.code(), tonic::Code::Unimplemented, "{reached:?}");
    assert_eq!(
        reached.message(),
        format!("reached as acme in trace {trace_id}"),
        "the server span continues the client's trace"
    );
    app.stop().await;
}

#[tokio::test]
async fn shutdown_reports_not_serving_before_draining() {
    let app = spawn_app(true, Duration::from_secs(5)).await;
    let mut watches = Vec::new();
    for service in ["", Echo::NAME] {
        let mut stream = HealthClient::new(app.channel().await)
            .watch(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = next_status(&mut stream).await;
        assert_eq!(first, ServingStatus::Serving, "{service:?}");
        watches.push((service, stream));
    }

    app.shutdown.cancel();
    for (service, stream) in &mut watches {
        assert_eq!(
            next_status(stream).await,
            ServingStatus::NotServing,
            "{service:?}"
        );
    }
    // The open watch streams are in-flight calls: serve() waits for them until they end.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!app.server.is_finished(), "serve drains open calls");
    drop(watches);
    tokio::time::timeout(SERVE_RETURN_TIMEOUT, app.server)
        .await
        .expect("serve returns once calls end")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn drain_timeout_cuts_off_calls_that_never_end() {
    let app = spawn_app(false, Duration::from_millis(200)).await;
    let mut stream = HealthClient::new(app.channel().await)
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_status(&mut stream).await, ServingStatus::Serving);
    app.stop().await;
    drop(stream);
}

async fn next_status(stream: &mut tonic::Streaming<HealthCheckResponse>) -> ServingStatus {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a health update within 5s")
        .unwrap()
        .expect("the watch stream is open")
        .status()
}
