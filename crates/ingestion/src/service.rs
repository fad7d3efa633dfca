//! Wiring: the store, the raw-topic consumer and the gRPC API on the shared service skeleton.

use std::net::SocketAddr;
use std::sync::Arc;

use socialops_proto::ingestion::v1::ingestion_service_server::IngestionServiceServer;
pub use socialops_service::Dependencies;
use socialops_service::{Plan, RunningService, Skeleton};
use tokio_util::sync::CancellationToken;

use crate::api::IngestionApi;
use crate::config::IngestionConfig;
use crate::consume::RawEventHandler;
use crate::domain::{AliasHasher, Validator};
use crate::error::IngestionError;
use crate::ingest::Ingestor;
use crate::store::{EventStore, MIGRATIONS};

/// Development-only alias key, used when none is configured under `socialops dev`.
pub const DEV_ALIAS_KEY: &str = "socialops-dev-alias-key";

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
    let topics = &deps.topics;
    let plan = Plan {
        name: "ingestion",
        database: config.database.as_ref(),
        migrations: MIGRATIONS,
        topics: &[&topics.raw, &topics.events, &topics.dlq, &topics.privacy],
        relay_batch: config.relay_batch,
    };
    let mut skeleton = Skeleton::open(plan, &deps, shutdown).await?;
    let store = EventStore::new(skeleton.db().clone());
    let validator = Validator::new(config.limits(), AliasHasher::new(alias_key));
    let ingestor = Arc::new(Ingestor::new(
        store.clone(),
        validator,
        topics.events.clone(),
        skeleton.outbox_notifier(),
    ));

    skeleton.consume(
        config.consumer_group.clone(),
        &topics.raw,
        config.consume_batch,
        Arc::new(RawEventHandler::new(ingestor.clone())),
    );

    let api = IngestionApi {
        ingestor,
        producer: skeleton.producer().clone(),
        kafka: deps.kafka.clone(),
        topics: topics.clone(),
        consumer_group: config.consumer_group.clone(),
        max_batch_events: config.max_batch_events,
    };
    // A full batch of the largest events must fit in one message.
    let max_batch_bytes = config.max_batch_events * config.max_event_bytes + 1024 * 1024;
    skeleton
        .serve(IngestionServiceServer::new(api).max_decoding_message_size(max_batch_bytes))
        .await;
    let service = skeleton
        .start(config.grpc_listen, "ingestion.grpc_listen")
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
