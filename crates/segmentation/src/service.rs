//! Wiring: the store, the canonical-event and erasure consumers, the sweep and the gRPC API on the
//! shared service skeleton.

use std::net::SocketAddr;
use std::sync::Arc;

use socialops_proto::segmentation::v1::segmentation_service_server::SegmentationServiceServer;
pub use socialops_service::Dependencies;
use socialops_service::{ErasureHandler, Plan, RunningService, Skeleton};
use socialops_storage::Backend;
use tokio_util::sync::CancellationToken;

use crate::api::SegmentationApi;
use crate::config::{SegmentationConfig, TenantDirectory};
use crate::consume::EventHandler;
use crate::error::SegmentationError;
use crate::store::{MIGRATIONS, ProfileStore};
use crate::sweep::Sweeper;
use crate::update::Updater;

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
    let topics = &deps.topics;
    let plan = Plan {
        name: "segmentation",
        database: config.database.as_ref(),
        migrations: MIGRATIONS,
        topics: &[
            &topics.events,
            &topics.profiles,
            &topics.privacy,
            &topics.dlq,
        ],
        relay_batch: config.relay_batch,
    };
    let mut skeleton = Skeleton::open(plan, &deps, shutdown).await?;
    let store = ProfileStore::new(skeleton.db().clone());
    let updater = Arc::new(Updater::new(
        store.clone(),
        tenants,
        deps.clock.clone(),
        topics.profiles.clone(),
        skeleton.outbox_notifier(),
    ));

    // SQLite has one writer: concurrent transactions would only queue for it.
    let lanes = match store.db().backend() {
        Backend::Postgres => config.consume_lanes,
        Backend::Sqlite => 1,
    };
    skeleton.consume(
        config.consumer_group.clone(),
        &topics.events,
        config.consume_batch,
        Arc::new(EventHandler::new(updater.clone(), lanes)),
    );
    skeleton.consume(
        format!("{}-privacy", config.consumer_group),
        &topics.privacy,
        100,
        Arc::new(ErasureHandler::new(updater.clone())),
    );
    let sweeper = Arc::new(Sweeper {
        updater: updater.clone(),
        batch: config.sweep_batch.max(1),
        rfm_interval: config.rfm_interval,
        dedup_window: config.dedup_window,
    });
    skeleton.sweep(config.sweep_interval, move || {
        let sweeper = sweeper.clone();
        async move { sweeper.tick_exclusive().await.map(|_| ()) }
    });
    skeleton.spawn(crate::update::rebuild::run(
        updater.clone(),
        config.sweep_interval,
        skeleton.shutdown().clone(),
    ));

    skeleton
        .serve(SegmentationServiceServer::new(SegmentationApi::new(
            updater.clone(),
        )))
        .await;
    let service = skeleton
        .start(config.grpc_listen, "segmentation.grpc_listen")
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
