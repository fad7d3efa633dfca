//! The skeleton every socialops service starts from, so that each service declares only what is its
//! own: its migrations, its topics, its consumers and their handlers, its sweep and its API.
//!
//! [`Skeleton::open`] connects the store (`<data_dir>/<service>.db` on SQLite unless a database is
//! configured) and runs the service's migrations, creates its topics, and builds the producer and the
//! outbox relay. The service then adds its consumers ([`Skeleton::consume`]), its sweep
//! ([`Skeleton::sweep`]) and its gRPC API ([`Skeleton::serve`]), and [`Skeleton::start`] binds the
//! port. The [`RunningService`] it returns stops in order: consumers, sweep and relay drain first, the
//! gRPC server stops last.
//!
//! [`service_error!`] declares a service's error enum with the variants every service shares and
//! their gRPC codes; [`ErasureHandler`] consumes `socialops.privacy.v1` for any service that can
//! [`Erase`] a user.

mod erasure;
mod error;

#[doc(hidden)]
pub use error::__private;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use socialops_auth::{AuthInterceptor, TokenStore};
use socialops_bus::{
    BatchHandler, BusError, ConsumerSettings, KafkaConfig, OutboxRelay, Producer, Topics,
};
use socialops_grpc::{GrpcServer, ServiceError};
use socialops_storage::clock::{Clock, SystemClock};
use socialops_storage::{DatabaseConfig, Db, Migrations, StorageError};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::{Bytes, Service, StdError, http};
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;

pub use erasure::{Erase, ErasureHandler};
pub use socialops_grpc::RunningService;

/// What a consumer gets to finish its batch and commit after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a service needs from the process around it.
#[derive(Clone)]
pub struct Dependencies {
    pub kafka: KafkaConfig,
    pub topics: Topics,
    pub tokens: TokenStore,
    /// Where the embedded SQLite store lives when no database is configured.
    pub data_dir: PathBuf,
    /// Create missing topics at start-up (not for brokers that lack CreateTopics, such as the
    /// embedded one, whose topics exist from the start).
    pub create_topics: bool,
    /// "Now" for whatever the service decides by the clock; tests inject a
    /// [`socialops_storage::clock::ManualClock`].
    pub clock: Arc<dyn Clock>,
}

impl Dependencies {
    pub fn new(kafka: KafkaConfig, topics: Topics, tokens: TokenStore, data_dir: PathBuf) -> Self {
        Self {
            kafka,
            topics,
            tokens,
            data_dir,
            create_topics: true,
            clock: Arc::new(SystemClock),
        }
    }
}

/// What one service declares about its store and topics at start-up.
pub struct Plan<'a> {
    /// The service's name: its SQLite file, its log lines, its configuration section.
    pub name: &'static str,
    /// The configured database; `None` is the embedded SQLite file.
    pub database: Option<&'a DatabaseConfig>,
    pub migrations: Migrations,
    /// Every topic the service reads or writes.
    pub topics: &'a [&'a str],
    /// Most outbox rows the relay sends in one pass.
    pub relay_batch: usize,
}

/// A service being assembled; see the crate documentation.
pub struct Skeleton<E> {
    name: &'static str,
    kafka: KafkaConfig,
    dlq_topic: String,
    tokens: TokenStore,
    db: Db,
    producer: Producer,
    relay: OutboxRelay,
    tasks: JoinSet<Result<(), E>>,
    server: GrpcServer,
    shutdown: CancellationToken,
}

impl<E> Skeleton<E>
where
    E: From<BusError>
        + From<StorageError>
        + From<ServiceError>
        + std::fmt::Display
        + Send
        + 'static,
{
    /// Connects and migrates the store, creates the topics (when `deps.create_topics`), and builds
    /// the producer and the outbox relay. Nothing runs until [`start`](Self::start).
    pub async fn open(
        plan: Plan<'_>,
        deps: &Dependencies,
        shutdown: CancellationToken,
    ) -> Result<Self, E> {
        let database = plan.database.cloned().unwrap_or_else(|| {
            DatabaseConfig::sqlite_file(&deps.data_dir.join(format!("{}.db", plan.name)))
        });
        let db = Db::connect(&database).await?;
        db.migrate(&plan.migrations).await?;
        if deps.create_topics {
            socialops_bus::ensure_service_topics(&deps.kafka, plan.topics).await;
        }
        let producer = Producer::new(&deps.kafka)?;
        let relay = OutboxRelay::new(db.clone(), producer.clone(), plan.relay_batch);
        Ok(Self {
            name: plan.name,
            kafka: deps.kafka.clone(),
            dlq_topic: deps.topics.dlq.clone(),
            tokens: deps.tokens.clone(),
            db,
            producer,
            relay,
            tasks: JoinSet::new(),
            server: GrpcServer::new(&[socialops_proto::FILE_DESCRIPTOR_SET]),
            shutdown,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Wakes the outbox relay; notify it after a commit that enqueued messages.
    pub fn outbox_notifier(&self) -> Arc<Notify> {
        self.relay.notifier()
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Consumes `topic` under `group_id` in batches of at most `max_batch`, dead-lettering to the
    /// contract's dead-letter topic.
    pub fn consume<H: BatchHandler>(
        &mut self,
        group_id: String,
        topic: &str,
        max_batch: usize,
        handler: Arc<H>,
    ) {
        let settings = ConsumerSettings {
            group_id,
            topics: vec![topic.to_owned()],
            max_batch,
            max_wait: Duration::from_millis(20),
            dlq_topic: self.dlq_topic.clone(),
            drain_timeout: DRAIN_TIMEOUT,
        };
        let (kafka, producer, shutdown) = (
            self.kafka.clone(),
            self.producer.clone(),
            self.shutdown.clone(),
        );
        self.tasks.spawn(async move {
            socialops_bus::run_consumer(&kafka, settings, handler, producer, shutdown).await?;
            Ok(())
        });
    }

    /// Runs `tick` every `interval` until shutdown; a failed tick is logged and the next one comes as
    /// usual. Ticks never overlap, and a slow one delays the next instead of bunching them up.
    pub fn sweep<F, Fut>(&mut self, interval: Duration, mut tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
    {
        let (name, shutdown) = (self.name, self.shutdown.clone());
        self.tasks.spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    _ = ticker.tick() => {
                        if let Err(error) = tick().await {
                            tracing::warn!(service = name, error = %error, "sweep failed, retrying next tick");
                        }
                    }
                }
            }
        });
    }

    /// Runs a task of the service's own beside the others; its failure stops the service.
    pub fn spawn(&mut self, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Serves `api` (a generated `XServiceServer`) behind bearer-token authentication.
    pub async fn serve<S, B>(&mut self, api: S)
    where
        S: Service<
                http::Request<Body>,
                Response = http::Response<B>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: tonic::codegen::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<StdError>,
    {
        self.server
            .add_service(InterceptedService::new(
                api,
                AuthInterceptor::new(self.tokens.clone()),
            ))
            .await;
    }

    /// Starts the outbox relay and binds `listen` (named by `setting` in errors, e.g.
    /// `ingestion.grpc_listen`); everything added so far is running when this returns.
    pub async fn start(
        mut self,
        listen: SocketAddr,
        setting: &str,
    ) -> Result<RunningService<E>, E> {
        let (relay, shutdown) = (self.relay, self.shutdown.clone());
        self.tasks
            .spawn(async move { Ok(relay.run(shutdown).await?) });
        RunningService::start(
            self.name,
            self.server,
            listen,
            setting,
            self.tasks,
            self.shutdown,
        )
        .await
    }
}
