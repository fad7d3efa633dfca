use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct MetricsServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn spawn_metrics_server() -> MetricsServer {
    socialops_telemetry::init_for_tests();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(socialops_telemetry::serve_metrics(
        listener,
        shutdown.clone(),
    ));
    MetricsServer {
        addr,
        shutdown,
        task,
    }
}

/// A plain HTTP/1.1 exchange; returns the status line and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("response within 10s")
    .unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let status_line = head.lines().next().unwrap_or_default().to_owned();
    (status_line, body.to_owned())
}

#[tokio::test]
async fn metrics_endpoint_renders_recorded_metrics() {
    let server = spawn_metrics_server().await;
    socialops_telemetry::metrics_handle();
    metrics::counter!("socialops_test_total", "kind" => "render").increment(3);
    metrics::histogram!("socialops_test_duration_seconds").record(0.003);

    let (status, body) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains(r#"socialops_test_total{kind="render"} 3"#),
        "{body}"
    );
    assert!(
        body.contains(r#"socialops_test_duration_seconds_bucket{le="0.005"} 1"#),
        "`_seconds` histograms have buckets: {body}"
    );

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn other_paths_are_not_found() {
    let server = spawn_metrics_server().await;
    let (status, _) = http_get(server.addr, "/").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let server = spawn_metrics_server().await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    // Let the server accept the connection before shutting down.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(3), server.task)
        .await
        .expect("an idle connection does not hold up shutdown")
        .unwrap()
        .unwrap();
    let mut buf = [0_u8; 1];
    assert_eq!(idle.read(&mut buf).await.unwrap(), 0, "connection closed");
}
