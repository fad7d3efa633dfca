//! Wiring: the store, the scorer, the canonical-event and erasure consumers, the alert tail, the
//! sweep and the gRPC API on the shared service skeleton.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use socialops_bus::Tail;
use socialops_proto::sentiment::v1::sentiment_service_server::SentimentServiceServer;
use socialops_scorer::Scorer;
pub use socialops_service::Dependencies;
use socialops_service::{ErasureHandler, Plan, RunningService, Skeleton};
use tokio_util::sync::CancellationToken;

use crate::api::SentimentApi;
use crate::config::{Rules, SentimentConfig};
use crate::consume::{AlertHub, AlertTail, EventHandler};
use crate::error::SentimentError;
use crate::monitor::Monitor;
use crate::store::{MIGRATIONS, SentimentStore};
use crate::sweep::Sweeper;

pub struct RunningSentiment {
    pub grpc_addr: SocketAddr,
    pub monitor: Arc<Monitor>,
    service: RunningService<SentimentError>,
}

/// The default scorer, built on first use (building one loads the jieba dictionary, so the first
/// call blocks for a moment) and shared by everything in the process that scores.
pub fn shared_scorer() -> Arc<Scorer> {
    static SCORER: LazyLock<Arc<Scorer>> = LazyLock::new(|| Arc::new(Scorer::default()));
    SCORER.clone()
}

pub async fn start(
    config: &SentimentConfig,
    deps: Dependencies,
    shutdown: CancellationToken,
) -> Result<RunningSentiment, SentimentError> {
    let rules = Rules::from_config(config)?;
    let topics = &deps.topics;
    let plan = Plan {
        name: "sentiment",
        database: config.database.as_ref(),
        migrations: MIGRATIONS,
        topics: &[&topics.events, &topics.alerts, &topics.privacy, &topics.dlq],
        relay_batch: config.relay_batch,
    };
    let mut skeleton = Skeleton::open(plan, &deps, shutdown.clone()).await?;
    let monitor = Arc::new(Monitor::new(
        SentimentStore::new(skeleton.db().clone()),
        tokio::task::spawn_blocking(shared_scorer)
            .await
            .map_err(|e| SentimentError::Runtime(format!("loading the scorer: {e}")))?,
        rules,
        deps.clock.clone(),
        topics.alerts.clone(),
        skeleton.outbox_notifier(),
    ));

    skeleton.consume(
        config.consumer_group.clone(),
        &topics.events,
        config.consume_batch,
        Arc::new(EventHandler::new(monitor.clone())),
    );
    skeleton.consume(
        format!("{}-privacy", config.consumer_group),
        &topics.privacy,
        100,
        Arc::new(ErasureHandler::new(monitor.clone())),
    );
    // Every replica reads every alert from the topic's end, under no consumer group.
    let hub = AlertHub::default();
    let tail = Tail::open(&deps.kafka, &topics.alerts).await?;
    let alert_tail = AlertTail::new(hub.clone());
    let tail_shutdown = shutdown.clone();
    skeleton.spawn(async move {
        tail.run(500, |batch| alert_tail.deliver(batch), tail_shutdown)
            .await?;
        Ok(())
    });
    let sweeper = Arc::new(Sweeper {
        monitor: monitor.clone(),
        dedup_window: config.dedup_window,
    });
    skeleton.sweep(config.sweep_interval, move || {
        let sweeper = sweeper.clone();
        async move { sweeper.tick().await }
    });

    let api = SentimentApi::new(
        monitor.clone(),
        hub,
        config.max_score_texts,
        config.max_text_chars,
        shutdown,
    );
    // A full batch of the longest texts must fit in one request.
    let max_request_bytes = config.max_score_texts * config.max_text_chars * 4 + 1024 * 1024;
    skeleton
        .serve(SentimentServiceServer::new(api).max_decoding_message_size(max_request_bytes))
        .await;
    let service = skeleton
        .start(config.grpc_listen, "sentiment.grpc_listen")
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
