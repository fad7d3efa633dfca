pub mod dev;
pub mod events;
pub mod serve;
pub mod tokens;

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
pub fn cancel_on_signal(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler installs");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        shutdown.cancel();
    });
}

/// Serves Prometheus metrics on `addr` until shutdown.
pub async fn spawn_metrics(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    socialops_telemetry::metrics_handle();
    tokio::spawn(async move {
        if let Err(error) = socialops_telemetry::serve_metrics(listener, shutdown).await {
            tracing::error!(error = %error, "metrics endpoint failed");
        }
    });
    Ok(bound)
}
