use std::net::SocketAddr;

use socialops_auth::BearerToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel that presents a bearer token on every call; any generated client wraps it with `new`.
pub type Authed = InterceptedService<Channel, BearerToken>;

/// Connects to a service listening on `addr` and presents `token`.
pub async fn channel_with_token(addr: SocketAddr, token: &str) -> Authed {
    let channel = socialops_grpc::connect(&format!("http://{addr}"))
        .await
        .expect("connect to the service");
    InterceptedService::new(channel, BearerToken::new(token).expect("a valid token"))
}
