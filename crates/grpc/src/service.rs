use std::fmt::Display;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::GrpcServer;

/// Why a service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{setting} {addr}: {source}")]
    Bind {
        /// The configuration key the address came from, e.g. `ingestion.grpc_listen`.
        setting: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("task panicked: {0}")]
    Panicked(#[from] JoinError),
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// A service's background tasks (consumers, relays, sweeps) and its gRPC server, stopped in order:
/// the tasks drain first, while clients still get answers, and the gRPC server stops last.
pub struct RunningService<E> {
    grpc_addr: SocketAddr,
    name: &'static str,
    tasks: JoinSet<Result<(), E>>,
    grpc_task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    grpc_shutdown: CancellationToken,
    shutdown: CancellationToken,
}

impl<E> RunningService<E>
where
    E: Display + From<ServiceError> + Send + 'static,
{
    /// Binds `listen` (named by `setting` in errors) and serves `server` there beside the already
    /// spawned `tasks`, which stop when `shutdown` is cancelled.
    pub async fn start(
        name: &'static str,
        server: GrpcServer,
        listen: SocketAddr,
        setting: &str,
        tasks: JoinSet<Result<(), E>>,
        shutdown: CancellationToken,
    ) -> Result<Self, E> {
        let bind_error = |source| ServiceError::Bind {
            setting: setting.to_owned(),
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let grpc_addr = listener.local_addr().map_err(bind_error)?;
        let grpc_shutdown = CancellationToken::new();
        let grpc_task = tokio::spawn(server.serve(listener, grpc_shutdown.clone()));
        tracing::info!(service = name, %grpc_addr, "service started");
        Ok(Self {
            grpc_addr,
            name,
            tasks,
            grpc_task,
            grpc_shutdown,
            shutdown,
        })
    }

    /// Where the gRPC server listens (the bound port when the configured one was 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Runs until shutdown is requested or a task fails (which requests it); then waits for every task
    /// to drain and stops the gRPC server last. The first failure is returned.
    pub async fn wait(mut self) -> Result<(), E> {
        let mut outcome = Ok(());
        tokio::select! {
            () = self.shutdown.cancelled() => {}
            Some(finished) = self.tasks.join_next() => {
                outcome = flatten(finished);
                if let Err(error) = &outcome {
                    tracing::error!(service = self.name, error = %error, "task failed, shutting down");
                }
                self.shutdown.cancel();
            }
        }
        while let Some(finished) = self.tasks.join_next().await {
            if let Err(error) = flatten(finished) {
                tracing::error!(service = self.name, error = %error, "task failed while draining");
                outcome = outcome.and(Err(error));
            }
        }
        self.grpc_shutdown.cancel();
        let served = match self.grpc_task.await {
            Ok(served) => served.map_err(|e| E::from(ServiceError::Grpc(e))),
            Err(panicked) => Err(E::from(ServiceError::Panicked(panicked))),
        };
        outcome.and(served)
    }
}

fn flatten<E: From<ServiceError>>(joined: Result<Result<(), E>, JoinError>) -> Result<(), E> {
    joined.map_err(|e| E::from(ServiceError::Panicked(e)))?
}
