//! Wiring: the store, the scorer, the canonical-event and erasure consumers, the alert tail, the
//! sweep, the outbox relay and the gRPC server, started together and stopped in order (consumers,
//! sweep and relay drain first, the gRPC server stops last).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use socialops_auth::{AuthInterceptor, TokenStore};
use socialops_bus::{ConsumerSettings, KafkaConfig, OutboxRelay, Producer, Topics};
use socialops_grpc::{GrpcServer, RunningService};
use socialops_proto::sentiment::v1::sentiment_service_server::SentimentServiceServer;
use socialops_storage::{DatabaseConfig, Db};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::Scorer;
use crate::api::SentimentApi;
use crate::config::{Rules, SentimentConfig};
use crate::consume::{AlertHub, AlertTail, ErasureHandler, EventHandler};
use crate::error::SentimentError;
use crate::monitor::Monitor;
use crate::store::SentimentStore;
use crate::sweep::Sweeper;
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
    /// "Now" for spike windows and the response clock; tests inject a [`crate::ManualClock`].
    pub clock: Arc<dyn Clock>,
    /// The scorer, when the process already built one (building it loads the jieba dictionary).
    pub scorer: Option<Arc<Scorer>>,
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
            scorer: None,
        }
    }
}

pub struct RunningSentiment {
    pub grpc_addr: SocketAddr,
    pub monitor: Arc<Monitor>,
    service: RunningService<SentimentError>,
}

pub async fn start(
    config: &SentimentConfig,
    deps: Dependencies,
    shutdown: CancellationToken,
) -> Result<RunningSentiment, SentimentError> {
    let rules = Rules::from_config(config)?;
    let database = config
        .database
        .clone()
        .unwrap_or_else(|| DatabaseConfig::sqlite_file(&deps.data_dir.join("sentiment.db")));
    let db = Db::connect(&database).await?;
    let store = SentimentStore::open(db.clone()).await?;

    let topics = &deps.topics;
    if deps.create_topics {
        let needed = [
            topics.events.as_str(),
            &topics.alerts,
            &topics.privacy,
            &topics.dlq,
        ];
        socialops_bus::ensure_service_topics(&deps.kafka, &needed).await;
    }

    let scorer = match deps.scorer.clone() {
        Some(scorer) => scorer,
        None => tokio::task::spawn_blocking(|| Arc::new(Scorer::default()))
            .await
            .map_err(|e| SentimentError::Runtime(format!("loading the scorer: {e}")))?,
    };
    let producer = Producer::new(&deps.kafka)?;
    let relay = OutboxRelay::new(db, producer.clone(), config.relay_batch);
    let monitor = Arc::new(Monitor::new(
        store,
        scorer,
        rules,
        deps.clock.clone(),
        topics.alerts.clone(),
        relay.notifier(),
    ));
    let hub = AlertHub::default();

    let mut tasks = JoinSet::new();
    let settings = |group_id: String, topic: &str, max_batch: usize| ConsumerSettings {
        group_id,
        topics: vec![topic.to_owned()],
        max_batch,
        max_wait: Duration::from_millis(20),
        dlq_topic: topics.dlq.clone(),
        drain_timeout: DRAIN_TIMEOUT,
    };
    let consumer = |settings: ConsumerSettings| {
        (
            deps.kafka.clone(),
            settings,
            producer.clone(),
            shutdown.clone(),
        )
    };
    let (kafka, events, events_producer, events_shutdown) = consumer(settings(
        config.consumer_group.clone(),
        &topics.events,
        config.consume_batch,
    ));
    let handler = Arc::new(EventHandler::new(monitor.clone()));
    tasks.spawn(async move {
        socialops_bus::run_consumer(&kafka, events, handler, events_producer, events_shutdown)
            .await?;
        Ok(())
    });
    let (kafka, privacy, privacy_producer, privacy_shutdown) = consumer(settings(
        format!("{}-privacy", config.consumer_group),
        &topics.privacy,
        100,
    ));
    let handler = Arc::new(ErasureHandler::new(monitor.clone()));
    tasks.spawn(async move {
        socialops_bus::run_consumer(&kafka, privacy, handler, privacy_producer, privacy_shutdown)
            .await?;
        Ok(())
    });
    // A group of its own per process: every replica must see every alert.
    let (kafka, tail, tail_producer, tail_shutdown) = consumer(settings(
        format!(
            "{}-stream-{}",
            config.consumer_group,
            uuid::Uuid::new_v4().simple()
        ),
        &topics.alerts,
        500,
    ));
    let handler = Arc::new(AlertTail::new(hub.clone()));
    tasks.spawn(async move {
        socialops_bus::run_consumer(&kafka, tail, handler, tail_producer, tail_shutdown).await?;
        Ok(())
    });
    tasks.spawn({
        let shutdown = shutdown.clone();
        async move { Ok(relay.run(shutdown).await?) }
    });
    let sweeper = Sweeper {
        monitor: monitor.clone(),
        interval: config.sweep_interval,
        dedup_window: config.dedup_window,
    };
    tasks.spawn(sweeper.run(shutdown.clone()));

    let api = SentimentApi::new(
        monitor.clone(),
        hub,
        config.max_score_texts,
        config.max_text_chars,
        shutdown.clone(),
    );
    // A full batch of the longest texts must fit in one request.
    let max_request_bytes = config.max_score_texts * config.max_text_chars * 4 + 1024 * 1024;
    let mut server = GrpcServer::new(&[socialops_proto::FILE_DESCRIPTOR_SET]);
    server
        .add_service(InterceptedService::new(
            SentimentServiceServer::new(api).max_decoding_message_size(max_request_bytes),
            AuthInterceptor::new(deps.tokens.clone()),
        ))
        .await;
    let service = RunningService::start(
        "sentiment",
        server,
        config.grpc_listen,
        "sentiment.grpc_listen",
        tasks,
        shutdown,
    )
    .await?;
    Ok(RunningSentiment {
        grpc_addr: service.grpc_addr(),
        monitor,
        service,
    })
}

impl RunningSentiment {
    /// Runs until shutdown is requested or a task fails; then drains the consumers, sweep and relay
    /// and stops the gRPC server last.
    pub async fn wait(self) -> Result<(), SentimentError> {
        self.service.wait().await
    }
}
