//! Wiring: the store, the raw-topic consumer, the outbox relay and the gRPC server, started together
//! and stopped in order (consumer and relay drain first, the gRPC server stops last).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use socialops_auth::{AuthInterceptor, TokenStore};
use socialops_bus::{ConsumerSettings, KafkaConfig, OutboxRelay, Producer, Topics};
use socialops_grpc::{GrpcServer, RunningService};
use socialops_proto::ingestion::v1::ingestion_service_server::IngestionServiceServer;
use socialops_storage::{DatabaseConfig, Db};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::api::IngestionApi;
use crate::config::IngestionConfig;
use crate::consume::RawEventHandler;
use crate::domain::{AliasHasher, Validator};
use crate::error::IngestionError;
use crate::ingest::Ingestor;
use crate::store::EventStore;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Development-only alias key, used when none is configured under `socialops dev`.
pub const DEV_ALIAS_KEY: &str = "socialops-dev-alias-key";

/// What the service needs from the process around it.
#[derive(Clone)]
pub struct Dependencies {
    pub kafka: KafkaConfig,
    pub topics: Topics,
    pub tokens: TokenStore,
    pub data_dir: PathBuf,
    /// Create missing topics at start-up (not for brokers that lack CreateTopics, such as the
    /// embedded one, whose topics exist from the start).
    pub create_topics: bool,
}

pub struct RunningIngestion {
    pub grpc_addr: SocketAddr,
    pub store: EventStore,
    service: RunningService<IngestionError>,
}

pub async fn start(
    config: &IngestionConfig,
    deps: Dependencies,
    shutdown: CancellationToken,
) -> Result<RunningIngestion, IngestionError> {
    let alias_key = config
        .alias_key
        .clone()
        .ok_or_else(|| IngestionError::Config("ingestion.alias_key is required".into()))?;
    let database = config
        .database
        .clone()
        .unwrap_or_else(|| DatabaseConfig::sqlite_file(&deps.data_dir.join("ingestion.db")));
    let db = Db::connect(&database).await?;
    let store = EventStore::open(db.clone()).await?;

    let topics = &deps.topics;
    if deps.create_topics {
        let needed = [
            topics.raw.as_str(),
            &topics.events,
            &topics.dlq,
            &topics.privacy,
        ];
        socialops_bus::ensure_service_topics(&deps.kafka, &needed).await;
    }

    let producer = Producer::new(&deps.kafka)?;
    let relay = OutboxRelay::new(db, producer.clone(), config.relay_batch);
    let validator = Validator::new(config.limits(), AliasHasher::new(alias_key));
    let ingestor = Arc::new(Ingestor::new(
        store.clone(),
        validator,
        topics.events.clone(),
        relay.notifier(),
    ));

    let mut tasks = JoinSet::new();
    let consumer_settings = ConsumerSettings {
        group_id: config.consumer_group.clone(),
        topics: vec![topics.raw.clone()],
        max_batch: config.consume_batch,
        max_wait: Duration::from_millis(20),
        dlq_topic: topics.dlq.clone(),
        drain_timeout: DRAIN_TIMEOUT,
    };
    let handler = Arc::new(RawEventHandler::new(ingestor.clone()));
    tasks.spawn({
        let (kafka, producer, shutdown) = (deps.kafka.clone(), producer.clone(), shutdown.clone());
        async move {
            Ok(
                socialops_bus::run_consumer(&kafka, consumer_settings, handler, producer, shutdown)
                    .await?,
            )
        }
    });
    tasks.spawn({
        let shutdown = shutdown.clone();
        async move { Ok(relay.run(shutdown).await?) }
    });

    let api = IngestionApi {
        ingestor,
        producer,
        kafka: deps.kafka.clone(),
        topics: topics.clone(),
        consumer_group: config.consumer_group.clone(),
        max_batch_events: config.max_batch_events,
    };
    let max_batch_bytes = config.max_batch_events * config.max_event_bytes + 1024 * 1024;
    let mut server = GrpcServer::new(&[socialops_proto::FILE_DESCRIPTOR_SET]);
    server
        .add_service(InterceptedService::new(
            // A full batch of the largest events must fit in one message.
            IngestionServiceServer::new(api).max_decoding_message_size(max_batch_bytes),
            AuthInterceptor::new(deps.tokens.clone()),
        ))
        .await;
    let service = RunningService::start(
        "ingestion",
        server,
        config.grpc_listen,
        "ingestion.grpc_listen",
        tasks,
        shutdown,
    )
    .await?;
    Ok(RunningIngestion {
        grpc_addr: service.grpc_addr(),
        store,
        service,
    })
}

impl RunningIngestion {
    /// Runs until shutdown is requested or a task fails; then drains the consumer and relay and stops
    /// the gRPC server last.
    pub async fn wait(self) -> Result<(), IngestionError> {
        self.service.wait().await
    }
}
