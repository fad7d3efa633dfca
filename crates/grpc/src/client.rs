use std::time::Duration;

use socialops_auth::BearerToken;
use socialops_telemetry::TracePropagationInterceptor;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// Connects to a socialops service at `endpoint` (`http://host:port`, or `host:port`).
pub async fn connect(endpoint: &str) -> Result<Channel, tonic::transport::Error> {
    let uri = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    Endpoint::from_shared(uri)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(HTTP2_KEEP_ALIVE_INTERVAL)
        .connect()
        .await
}

/// Client interceptor for calls between services and from tools: the current trace context, and the
/// bearer token when there is one. Use as `XClient::with_interceptor(channel, ClientInterceptor::new(token))`.
#[derive(Debug, Clone, Default)]
pub struct ClientInterceptor {
    token: Option<BearerToken>,
    trace: TracePropagationInterceptor,
}

impl ClientInterceptor {
    pub fn new(token: Option<BearerToken>) -> Self {
        Self {
            token,
            trace: TracePropagationInterceptor,
        }
    }
}

impl Interceptor for ClientInterceptor {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let request = self.trace.call(request)?;
        match &mut self.token {
            Some(token) => token.call(request),
            None => Ok(request),
        }
    }
}
