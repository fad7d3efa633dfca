//! `spawn_app()`: the campaign service on a fresh database and fresh topics, with a manual clock,
//! against the broker and PostgreSQL named by `SOCIALOPS_TEST_KAFKA` / `SOCIALOPS_TEST_DATABASE_URL`.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prost::Message as _;
use socialops_auth::Role;
use socialops_bus::{OutgoingMessage, Producer, headers};
use socialops_campaign::{CampaignConfig, Dependencies, RunningCampaign};
use socialops_proto::alerts::v1::{AlertKind, CrisisAlert, CrisisState, Severity};
use socialops_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use socialops_proto::campaign::v1::coupon_service_client::CouponServiceClient;
use socialops_proto::campaign::v1::{
    Campaign, CreateCampaignRequest, Format, LifecycleRequest, SetSettingsRequest, Settings,
};
use socialops_proto::campaigns::v1::{CampaignOutcome, Send, campaign_outcome::Outcome};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{DirectMessage, OrderPlaced, Platform, SocialEvent};
use socialops_proto::profiles::v1::profile_change::Change;
use socialops_proto::profiles::v1::{Cause, ProfileChange, SegmentEntered, Stage, StageChanged};
use socialops_storage::clock::Clock;
use socialops_testkit::{Authed, TestEnv, TopicReader, eventually};
use tokio_util::sync::CancellationToken;

pub use socialops_testkit::{Backend, ts};

pub type Client = CampaignServiceClient<Authed>;
pub type Coupons = CouponServiceClient<Authed>;

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;
/// 2026-11-20T04:00:00Z, 12:00 in Asia/Shanghai (the default tenant time zone): mid-day, outside
/// the default quiet hours.
pub const NOON_US: i64 = 1_795_132_800 * 1_000_000 + 4 * HOUR_US;

pub struct TestApp {
    pub running: Option<RunningCampaign>,
    pub producer: Producer,
    pub sends: TopicReader<CampaignOutcome>,
    pub config: CampaignConfig,
    num_published: AtomicUsize,
    deps: Dependencies,
    env: TestEnv,
}

impl Deref for TestApp {
    type Target = TestEnv;

    fn deref(&self) -> &TestEnv {
        &self.env
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// [`spawn_app`] with settings of the test's own.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut CampaignConfig),
) -> Option<TestApp> {
    let env = TestEnv::new()?;
    let mut config = CampaignConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(env.database(backend, "campaign_test").await?),
        consumer_group: env.consumer_group("campaign"),
        sweep_interval: Duration::from_millis(50),
        ..CampaignConfig::default()
    };
    configure(&mut config);
    env.clock.set(NOON_US);
    env.create_topics(3).await;
    let deps = env.dependencies_on_clock();
    let running = socialops_campaign::start(&config, deps.clone(), env.shutdown.clone())
        .await
        .unwrap();
    Some(TestApp {
        producer: Producer::new(&env.kafka).unwrap(),
        sends: TopicReader::follow(&env.kafka, &env.topics.campaigns),
        running: Some(running),
        config,
        num_published: AtomicUsize::new(0),
        deps,
        env,
    })
}

impl TestApp {
    pub fn running(&self) -> &RunningCampaign {
        self.running.as_ref().unwrap()
    }

    pub fn now_us(&self) -> i64 {
        self.clock.now_us()
    }

    pub fn advance(&self, us: i64) {
        self.clock.set(self.clock.now_us() + us);
    }

    pub async fn client_for(&self, tenant: &str, role: Role) -> Client {
        Client::new(self.channel(self.running().grpc_addr, tenant, role).await)
    }

    pub async fn coupons_for(&self, tenant: &str, role: Role) -> Coupons {
        Coupons::new(self.channel(self.running().grpc_addr, tenant, role).await)
    }

    pub async fn coupons(&self) -> Coupons {
        self.coupons_for(&self.tenant, Role::Writer).await
    }

    pub async fn writer(&self) -> Client {
        self.client_for(&self.tenant, Role::Writer).await
    }

    pub async fn admin(&self) -> Client {
        self.client_for(&self.tenant, Role::Admin).await
    }

    /// Sets the tenant's pressure rules (a JSON document) and other settings left at their defaults.
    pub async fn set_pressure(&self, rules: &str) {
        self.writer()
            .await
            .set_settings(SetSettingsRequest {
                settings: Some(Settings {
                    pressure_rules: rules.into(),
                    ..Settings::default()
                }),
            })
            .await
            .unwrap();
    }

    /// Creates and starts a campaign from a TOML definition.
    pub async fn launch(&self, definition: &str) -> Campaign {
        let mut client = self.writer().await;
        let campaign = client
            .create_campaign(CreateCampaignRequest {
                definition: definition.into(),
                format: Format::Toml as i32,
            })
            .await
            .unwrap()
            .into_inner();
        client
            .start_campaign(LifecycleRequest {
                id: campaign.id.clone(),
                reason: "test".into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn publish(&self, topic: &str, key: String, payload: Vec<u8>) {
        self.num_published.fetch_add(1, Ordering::SeqCst);
        let message = OutgoingMessage::new(topic, Some(key), payload)
            .header(headers::CONTENT_TYPE, headers::CONTENT_TYPE_PROTOBUF);
        self.producer.send_all(&[message]).await.unwrap();
    }

    pub async fn profile_change(&self, user: &str, change: Change) {
        let message = ProfileChange {
            change_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: self.tenant.clone(),
            user_id: user.into(),
            occurred_at: Some(ts(self.now_us())),
            cause: Cause::Event as i32,
            event_id: String::new(),
            change: Some(change),
        };
        self.publish_change(&message).await;
    }

    pub async fn publish_change(&self, change: &ProfileChange) {
        self.publish(
            &self.topics.profiles,
            format!("{}:{}", change.tenant_id, change.user_id),
            change.encode_to_vec(),
        )
        .await;
    }

    pub async fn churned(&self, user: &str) {
        self.profile_change(
            user,
            Change::StageChanged(StageChanged {
                from: Stage::Active as i32,
                to: Stage::Churned as i32,
            }),
        )
        .await;
    }

    pub async fn entered_segment(&self, user: &str, segment_id: &str) {
        self.profile_change(
            user,
            Change::SegmentEntered(SegmentEntered {
                segment_id: segment_id.into(),
                segment_name: segment_id.into(),
            }),
        )
        .await;
    }

    pub async fn event(&self, user: &str, payload: Payload) {
        self.event_at(user, payload, self.now_us()).await;
    }

    pub async fn event_at(&self, user: &str, payload: Payload, occurred_at_us: i64) {
        let event = SocialEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: self.tenant.clone(),
            platform: Platform::Wechat as i32,
            user_id: user.into(),
            occurred_at: Some(ts(occurred_at_us)),
            attributes: HashMap::new(),
            received_at: Some(ts(self.now_us())),
            payload: Some(payload),
        };
        self.publish_event(&event).await;
    }

    pub async fn publish_event(&self, event: &SocialEvent) {
        self.publish(
            &self.topics.events,
            format!("{}:{}", event.tenant_id, event.user_id),
            event.encode_to_vec(),
        )
        .await;
    }

    pub async fn order(&self, user: &str, amount_cents: i64) {
        self.event(
            user,
            Payload::OrderPlaced(OrderPlaced {
                order_id: uuid::Uuid::new_v4().to_string(),
                amount_cents,
                currency: "CNY".into(),
                items: Vec::new(),
                coupon_code: String::new(),
            }),
        )
        .await;
    }

    pub async fn direct_message(&self, user: &str, conversation: &str, text: &str) {
        self.event(
            user,
            Payload::DirectMessage(DirectMessage {
                message_id: uuid::Uuid::new_v4().to_string(),
                conversation_id: conversation.into(),
                text: text.into(),
                author_follower_count: 0,
                reply_to_id: String::new(),
                from_brand: false,
            }),
        )
        .await;
    }

    pub async fn alert(
        &self,
        crisis_id: &str,
        kind: AlertKind,
        state: CrisisState,
        severity: Severity,
    ) {
        let alert = CrisisAlert {
            alert_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: self.tenant.clone(),
            crisis_id: crisis_id.into(),
            kind: kind as i32,
            severity: severity as i32,
            state: state as i32,
            at: Some(ts(self.now_us())),
            ..CrisisAlert::default()
        };
        self.publish(
            &self.topics.alerts,
            format!("{}:{}", alert.tenant_id, alert.crisis_id),
            alert.encode_to_vec(),
        )
        .await;
    }

    /// Every send published so far.
    pub fn published(&self) -> Vec<Send> {
        self.sends
            .all()
            .into_iter()
            .filter_map(|outcome| match outcome.outcome {
                Some(Outcome::Send(send)) => Some(send),
                _ => None,
            })
            .collect()
    }

    /// Every coupon outcome published so far (issued, redeemed, restored).
    pub fn coupon_outcomes(&self) -> Vec<Outcome> {
        self.sends
            .all()
            .into_iter()
            .filter_map(|outcome| outcome.outcome)
            .filter(|outcome| !matches!(outcome, Outcome::Send(_)))
            .collect()
    }

    /// Waits until `count` sends matching `filter` are published, and returns them.
    pub async fn wait_sends(
        &self,
        what: &str,
        count: usize,
        filter: impl Fn(&Send) -> bool,
    ) -> Vec<Send> {
        eventually(what, || {
            let found: Vec<Send> = self.published().into_iter().filter(|s| filter(s)).collect();
            async move {
                if found.len() >= count {
                    Ok(found)
                } else {
                    Err(format!("{found:#?}"))
                }
            }
        })
        .await
    }

    /// Waits until every message published so far has been handled, and a sweep after that.
    pub async fn settle(&self) {
        let want = self.num_published.load(Ordering::SeqCst) as i64;
        let engine = self.running().engine.clone();
        let tenant = self.tenant.clone();
        eventually(&format!("{want} messages handled"), || {
            let (engine, tenant) = (engine.clone(), tenant.clone());
            async move {
                let mut conn = engine
                    .store()
                    .db()
                    .pool()
                    .acquire()
                    .await
                    .map_err(|e| e.to_string())?;
                let seen: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM processed_events WHERE tenant_id = $1",
                )
                .bind(&tenant)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
                if seen >= want {
                    Ok(())
                } else {
                    Err(format!("{seen} handled"))
                }
            }
        })
        .await;
        self.sweep().await;
    }

    /// Runs the sweep to the end of what is due now.
    pub async fn sweep(&self) {
        self.running().engine.sweep_until_idle(500).await.unwrap();
    }

    pub async fn restart(&mut self) {
        self.env.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
        self.env.shutdown = CancellationToken::new();
        let running =
            socialops_campaign::start(&self.config, self.deps.clone(), self.env.shutdown.clone())
                .await
                .unwrap();
        self.running = Some(running);
    }
}

/// A send's key split into its parts: tenant, campaign, step, user, occurrence.
pub fn key_parts(send: &Send) -> Vec<String> {
    send.send_key.split(':').map(str::to_owned).collect()
}

pub fn user_of(send: &Send) -> String {
    key_parts(send)[3].clone()
}
