//! Wiring: the store, the canonical-event and erasure consumers, the sweep, the outbox relay and the
//! gRPC server, started together and stopped in order (consumers, sweep and relay drain first, the
//! gRPC server stops last).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use socialops_auth::{AuthInterceptor, TokenStore};
use socialops_bus::{ConsumerSettings, KafkaConfig, OutboxRelay, Producer, Topics};
use socialops_grpc::{GrpcServer, RunningService};
use socialops_proto::segmentation::v1::segmentation_service_server::SegmentationServiceServer;
use socialops_storage::{Backend, DatabaseConfig, Db};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::api::SegmentationApi;
use crate::config::{SegmentationConfig, TenantDirectory};
use crate::consume::{ErasureHandler, EventHandler};
use crate::error::SegmentationError;
use crate::store::ProfileStore;
use crate::sweep::Sweeper;
use crate::update::Updater;
use socialops_storage::clock::{Clock, SystemClock};

const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the service needs from the process around it.
#[derive(Clone)]
pub struct Dependencies {
    pub kafka: KafkaConfig,
    pub topics: Topics,
    pub tokens: TokenStore,
    pub data_dir: PathBuf,
    /// Create missing topics at start-up (not for brokers that lack CreateTopics).
    pub create_topics: bool,
    /// "Now" for stages, scores and the sweep; tests inject a [`crate::ManualClock`].
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

pub struct RunningSegmentation {
    pub grpc_addr: SocketAddr,
    pub store: ProfileStore,
    pub updater: Arc<Updater>,
    service: RunningService<SegmentationError>,
}

pub async fn start(
    config: &SegmentationConfig,
    deps: Dependencies,
    shutdown: CancellationToken,
) -> Result<RunningSegmentation, SegmentationError> {
    let tenants = TenantDirectory::from_config(config)?;
    let database = config
        .database
        .clone()
        .unwrap_or_else(|| DatabaseConfig::sqlite_file(&deps.data_dir.join("segmentation.db")));
    let db = Db::connect(&database).await?;
    let store = ProfileStore::open(db.clone()).await?;

    let topics = &deps.topics;
    if deps.create_topics {
        let needed = [
            topics.events.as_str(),
            &topics.profiles,
            &topics.privacy,
            &topics.dlq,
        ];
        socialops_bus::ensure_service_topics(&deps.kafka, &needed).await;
    }

    let producer = Producer::new(&deps.kafka)?;
    let relay = OutboxRelay::new(db, producer.clone(), config.relay_batch);
    let updater = Arc::new(Updater::new(
        store.clone(),
        tenants,
        deps.clock.clone(),
        topics.profiles.clone(),
        relay.notifier(),
    ));

    // SQLite has one writer: concurrent transactions would only queue for it.
    let lanes = match updater.store().db().backend() {
        Backend::Postgres => config.consume_lanes,
        Backend::Sqlite => 1,
    };
    let mut tasks = JoinSet::new();
    let consumers = [
        (
            config.consumer_group.clone(),
            topics.events.clone(),
            config.consume_batch,
        ),
        (
            format!("{}-privacy", config.consumer_group),
            topics.privacy.clone(),
            100,
        ),
    ];
    for (index, (group_id, topic, max_batch)) in consumers.into_iter().enumerate() {
        let settings = ConsumerSettings {
            group_id,
            topics: vec![topic],
            max_batch,
            max_wait: Duration::from_millis(20),
            dlq_topic: topics.dlq.clone(),
            drain_timeout: DRAIN_TIMEOUT,
        };
        let (kafka, producer, shutdown) = (deps.kafka.clone(), producer.clone(), shutdown.clone());
        let updater = updater.clone();
        tasks.spawn(async move {
            if index == 0 {
                let handler = Arc::new(EventHandler::new(updater, lanes));
                socialops_bus::run_consumer(&kafka, settings, handler, producer, shutdown).await?;
            } else {
                let handler = Arc::new(ErasureHandler::new(updater));
                socialops_bus::run_consumer(&kafka, settings, handler, producer, shutdown).await?;
            }
            Ok(())
        });
    }
    tasks.spawn({
        let shutdown = shutdown.clone();
        async move { Ok(relay.run(shutdown).await?) }
    });
    let sweeper = Sweeper {
        updater: updater.clone(),
        interval: config.sweep_interval,
        batch: config.sweep_batch.max(1),
        rfm_interval: config.rfm_interval,
        dedup_window: config.dedup_window,
    };
    tasks.spawn(sweeper.run(shutdown.clone()));

    let mut server = GrpcServer::new(&[socialops_proto::FILE_DESCRIPTOR_SET]);
    server
        .add_service(InterceptedService::new(
            SegmentationServiceServer::new(SegmentationApi::new(updater.clone())),
            AuthInterceptor::new(deps.tokens.clone()),
        ))
        .await;
    let service = RunningService::start(
        "segmentation",
        server,
        config.grpc_listen,
        "segmentation.grpc_listen",
        tasks,
        shutdown,
    )
    .await?;
    Ok(RunningSegmentation {
        grpc_addr: service.grpc_addr(),
        store,
        updater,
        service,
    })
}

impl RunningSegmentation {
    /// Runs until shutdown is requested or a task fails; then drains the consumers, sweep and relay
    /// and stops the gRPC server last.
    pub async fn wait(self) -> Result<(), SegmentationError> {
        self.service.wait().await
    }
}
