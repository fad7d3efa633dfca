//! Wiring: the store, the engine, the profile, event, alert and erasure consumers, the sweep and the
//! gRPC APIs (campaigns, coupons, referrals) on the shared service skeleton.

use std::net::SocketAddr;
use std::sync::Arc;

use socialops_proto::campaign::v1::campaign_service_server::CampaignServiceServer;
use socialops_proto::campaign::v1::coupon_service_server::CouponServiceServer;
use socialops_proto::campaign::v1::referral_service_server::ReferralServiceServer;
pub use socialops_service::Dependencies;
use socialops_service::{ErasureHandler, Plan, RunningService, Skeleton};
use tokio_util::sync::CancellationToken;

use crate::api::CampaignApi;
use crate::api::coupons::CouponApi;
use crate::api::referrals::ReferralApi;
use crate::config::CampaignConfig;
use crate::consume::{Feed, Handler};
use crate::coupons::Redeemer;
use crate::engine::Engine;
use crate::error::CampaignError;
use crate::segments::SegmentMembers;
use crate::store::{CampaignStore, MIGRATIONS};
use crate::sweep::Sweeper;

pub struct RunningCampaign {
    pub grpc_addr: SocketAddr,
    pub engine: Arc<Engine>,
    service: RunningService<CampaignError>,
}

pub async fn start(
    config: &CampaignConfig,
    deps: Dependencies,
    shutdown: CancellationToken,
) -> Result<RunningCampaign, CampaignError> {
    let segments = config
        .segmentation_url
        .as_deref()
        .map(SegmentMembers::new)
        .transpose()?;
    let topics = &deps.topics;
    let plan = Plan {
        name: "campaign",
        database: config.database.as_ref(),
        migrations: MIGRATIONS,
        topics: &[
            &topics.profiles,
            &topics.events,
            &topics.alerts,
            &topics.campaigns,
            &topics.privacy,
            &topics.dlq,
        ],
        relay_batch: config.relay_batch,
    };
    let mut skeleton = Skeleton::open(plan, &deps, shutdown.clone()).await?;
    let engine = Arc::new(Engine::new(
        CampaignStore::new(skeleton.db().clone()),
        deps.clock.clone(),
        topics.campaigns.clone(),
        skeleton.outbox_notifier(),
    ));
    let group = &config.consumer_group;
    for (suffix, topic, feed) in [
        ("profiles", &topics.profiles, Feed::Profiles),
        ("events", &topics.events, Feed::Events),
        ("alerts", &topics.alerts, Feed::Alerts),
    ] {
        skeleton.consume(
            format!("{group}-{suffix}"),
            topic,
            config.consume_batch,
            Arc::new(Handler::new(engine.clone(), feed)),
        );
    }
    skeleton.consume(
        format!("{group}-privacy"),
        &topics.privacy,
        100,
        Arc::new(ErasureHandler::new(engine.clone())),
    );
    let sweeper = Arc::new(Sweeper {
        engine: engine.clone(),
        batch: config.sweep_batch,
        dedup_window: config.dedup_window,
        last_forget: std::sync::Mutex::new(None),
        rollout_every: config.rollout_check_interval,
        last_rollout_check: std::sync::Mutex::new(None),
    });
    skeleton.sweep(config.sweep_interval, move || {
        let sweeper = sweeper.clone();
        async move { sweeper.tick().await }
    });
    skeleton
        .serve(CampaignServiceServer::new(CampaignApi::new(
            engine.clone(),
            segments,
            config.max_definition_bytes,
        )))
        .await;
    let (redeemer, redeeming) = Redeemer::start(engine.clone(), shutdown.clone());
    skeleton.spawn(redeeming);
    skeleton
        .serve(CouponServiceServer::new(CouponApi::new(
            engine.clone(),
            redeemer,
        )))
        .await;
    skeleton
        .serve(ReferralServiceServer::new(ReferralApi::new(engine.clone())))
        .await;
    let service = skeleton
        .start(config.grpc_listen, "campaign.grpc_listen")
        .await?;
    Ok(RunningCampaign {
        grpc_addr: service.grpc_addr(),
        engine,
        service,
    })
}

impl RunningCampaign {
    /// Runs until shutdown is requested or a task fails; then drains the consumers, sweep and relay
    /// and stops the gRPC server last.
    pub async fn wait(self) -> Result<(), CampaignError> {
        self.service.wait().await
    }
}
