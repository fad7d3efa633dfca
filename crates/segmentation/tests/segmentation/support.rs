//! `spawn_app()`: the segmentation service on a fresh database and fresh topics, against the broker
//! and PostgreSQL named by `SOCIALOPS_TEST_KAFKA` / `SOCIALOPS_TEST_DATABASE_URL`, with a clock the
//! test moves. The service runs on a runtime of its own, as in a process of its own, so that a test
//! can kill it.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::Consumer;
use socialops_auth::Role;
use socialops_bus::{KafkaConfig, OutgoingMessage, Producer};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{
    Alias, AliasKind, Comment, ContentImpression, Follow, Identify, OrderPlaced, Platform,
    SocialEvent,
};
use socialops_proto::privacy::v1::ErasureRequest;
use socialops_proto::profiles::v1::{ProfileChange, Stage, profile_change::Change};
use socialops_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use socialops_proto::segmentation::v1::{GetProfileRequest, Profile, get_profile_request};
use socialops_segmentation::{RunningSegmentation, SegmentationConfig};
use socialops_storage::{DatabaseConfig, Db};
use socialops_testkit::{Authed, TestEnv};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use socialops_testkit::{Backend, PATIENCE, ts};

pub type Client = SegmentationServiceClient<Authed>;

/// Monday 2026-01-05 00:00 in Asia/Shanghai, the default tenant time zone.
pub const T0_US: i64 = 1_767_542_400_000_000;
pub const DAY_US: i64 = 86_400_000_000;

/// A fresh database of the backend: a SQLite file in `dir`, or a scratch PostgreSQL database.
pub async fn database(backend: Backend, dir: &std::path::Path) -> Option<DatabaseConfig> {
    socialops_testkit::database(backend, dir, "segmentation_test").await
}

pub struct TestApp {
    pub changes: Changes,
    config: SegmentationConfig,
    producer: Producer,
    running: Option<RunningSegmentation>,
    /// What the service's tasks run on; dropping it stops them wherever they are.
    runtime: Option<tokio::runtime::Runtime>,
    env: TestEnv,
}

impl Deref for TestApp {
    type Target = TestEnv;

    fn deref(&self) -> &TestEnv {
        &self.env
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let env = TestEnv::new()?;
    let config = SegmentationConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(env.database(backend, "segmentation_test").await?),
        consumer_group: env.consumer_group("segmentation"),
        consume_batch: 500,
        sweep_interval: Duration::from_millis(100),
        ..SegmentationConfig::default()
    };
    env.clock.set(T0_US);
    let mut app = TestApp {
        changes: Changes::default(),
        config,
        producer: Producer::new(&env.kafka).unwrap(),
        running: None,
        runtime: None,
        env,
    };
    app.start().await;
    app.changes = Changes::watch(&app.kafka, &app.topics.profiles);
    Some(app)
}

impl TestApp {
    async fn start(&mut self) {
        let deps = self.env.dependencies_on_clock();
        self.env.shutdown = CancellationToken::new();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (config, shutdown) = (self.config.clone(), self.env.shutdown.clone());
        let running = runtime
            .spawn(async move { socialops_segmentation::start(&config, deps, shutdown).await })
            .await
            .unwrap()
            .unwrap();
        self.running = Some(running);
        self.runtime = Some(runtime);
    }

    pub fn running(&self) -> &RunningSegmentation {
        self.running.as_ref().unwrap()
    }

    /// Stops the service and starts it again on the same database under a new consumer group, which
    /// reads both topics from the start again: every event and erasure is delivered a second time.
    pub async fn restart_with_new_group(&mut self) {
        self.stop_service().await;
        self.config.consumer_group = format!("{}-again", self.config.consumer_group);
        self.start().await;
    }

    async fn stop_service(&mut self) {
        self.env.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Stops the service at once, as a killed process stops: its tasks end wherever they are, nothing
    /// drains and no transaction in flight commits.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.running = None;
    }

    /// Starts the service again on the same database, topics and consumer group.
    pub async fn restart(&mut self) {
        self.stop_service().await;
        self.start().await;
    }

    /// A pool of the test's own on the service's database, which outlives the service.
    pub async fn db(&self) -> Db {
        Db::connect(self.config.database.as_ref().unwrap())
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        self.stop_service().await;
    }

    pub async fn client_for(&self, tenant: &str, role: Role) -> Client {
        Client::new(self.channel(self.running().grpc_addr, tenant, role).await)
    }

    /// A writer for the test's tenant.
    pub async fn client(&self) -> Client {
        self.client_for(&self.tenant, Role::Writer).await
    }

    /// Publishes canonical events, as ingestion would, keyed `tenant:user`.
    pub async fn send(&self, events: &[SocialEvent]) {
        let messages: Vec<OutgoingMessage> = events
            .iter()
            .map(|e| {
                OutgoingMessage::new(
                    &self.topics.events,
                    Some(format!("{}:{}", e.tenant_id, e.user_id)),
                    e.encode_to_vec(),
                )
            })
            .collect();
        self.producer.send_all(&messages).await.unwrap();
    }

    pub async fn send_raw(&self, topic: &str, key: &str, payload: &[u8]) {
        let message = OutgoingMessage::new(topic, Some(key.to_owned()), payload.to_vec());
        self.producer.send_all(&[message]).await.unwrap();
    }

    /// Publishes an erasure request for one of the test tenant's users, requested now by the clock.
    pub async fn erase(&self, user_id: &str) {
        let request = ErasureRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: self.tenant.clone(),
            user_id: user_id.to_owned(),
            requested_at: Some(ts(self.clock_now())),
        };
        self.send_raw(
            &self.topics.privacy,
            &format!("{}:{user_id}", self.tenant),
            &request.encode_to_vec(),
        )
        .await;
    }

    /// The headers of the first `want` dead letters on the dead-letter topic.
    pub async fn dead_letters(&self, want: usize) -> Vec<HashMap<String, String>> {
        socialops_testkit::dead_letters(&self.kafka, &self.topics, want)
            .await
            .into_iter()
            .map(|letter| letter.headers)
            .collect()
    }

    pub fn clock_now(&self) -> i64 {
        socialops_segmentation::Clock::now_us(&self.clock)
    }

    /// Sets the clock `days` after T0.
    pub fn set_day(&self, days: i64) {
        self.clock.set(T0_US + days * DAY_US);
    }

    /// Polls `GetProfile` for the user until `check` holds.
    pub async fn wait_profile(
        &self,
        client: &mut Client,
        user_id: &str,
        check: impl Fn(&Profile) -> bool,
    ) -> Profile {
        let mut last = None;
        let found = poll(
            || {
                let mut client = client.clone();
                let user_id = user_id.to_owned();
                async move {
                    client
                        .get_profile(GetProfileRequest {
                            key: Some(get_profile_request::Key::UserId(user_id)),
                            ..Default::default()
                        })
                        .await
                        .ok()
                        .and_then(|r| r.into_inner().profile)
                }
            },
            |profile| {
                last = profile.clone();
                profile.as_ref().is_some_and(&check)
            },
        )
        .await;
        match found {
            Some(Some(profile)) => profile,
            _ => panic!("profile of {user_id} never matched; last seen: {last:#?}"),
        }
    }
}

/// Calls `attempt` until `done` accepts its result, for up to [`PATIENCE`]. `None` on timeout.
pub async fn poll<T, F, Fut>(mut attempt: F, mut done: impl FnMut(&T) -> bool) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = attempt().await;
        if done(&value) {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every change published on the profiles topic, collected in the background from the start of
/// the topic.
#[derive(Clone, Default)]
pub struct Changes {
    seen: Arc<Mutex<Vec<ProfileChange>>>,
    arrived: Arc<Notify>,
    stop: CancellationToken,
}

impl Changes {
    fn watch(kafka: &KafkaConfig, topic: &str) -> Self {
        let changes = Self::default();
        let consumer = socialops_testkit::consumer(kafka);
        consumer.subscribe(&[topic]).unwrap();
        let (seen, arrived, stop) = (
            changes.seen.clone(),
            changes.arrived.clone(),
            changes.stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => return,
                    message = consumer.recv() => message,
                };
                let Ok(message) = message else { continue };
                let change = ProfileChange::decode(message.payload().unwrap_or_default())
                    .expect("profiles topic carries ProfileChange");
                seen.lock().unwrap().push(change);
                arrived.notify_waiters();
            }
        });
        changes
    }

    pub fn all(&self) -> Vec<ProfileChange> {
        self.seen.lock().unwrap().clone()
    }

    /// The changes of one user, in the order they were published.
    pub fn of(&self, user_id: &str) -> Vec<ProfileChange> {
        self.all()
            .into_iter()
            .filter(|c| c.user_id == user_id)
            .collect()
    }

    /// Waits until `check` holds for the changes seen so far; panics after [`PATIENCE`].
    pub async fn wait_for(&self, what: &str, check: impl Fn(&[ProfileChange]) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let arrived = self.arrived.notified();
            if check(&self.all()) {
                return;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("never saw {what}; seen: {:#?}", self.all());
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.changes.stop.cancel();
        self.env.shutdown.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The stage changes of one user as (from, to) pairs.
pub fn stage_changes(changes: &[ProfileChange]) -> Vec<(Stage, Stage)> {
    changes
        .iter()
        .filter_map(|c| match &c.change {
            Some(Change::StageChanged(s)) => Some((s.from(), s.to())),
            _ => None,
        })
        .collect()
}

pub fn event(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    at_us: i64,
    payload: Payload,
) -> SocialEvent {
    SocialEvent {
        event_id: event_id.into(),
        tenant_id: tenant.into(),
        platform: Platform::Wechat as i32,
        user_id: user_id.into(),
        occurred_at: Some(ts(at_us)),
        payload: Some(payload),
        ..Default::default()
    }
}

pub fn comment(tenant: &str, event_id: &str, user_id: &str, at_us: i64, text: &str) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        at_us,
        Payload::Comment(Comment {
            comment_id: format!("c-{event_id}"),
            post_id: "p-1".into(),
            text: text.into(),
            ..Default::default()
        }),
    )
}

pub fn order(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    at_us: i64,
    amount_cents: i64,
) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        at_us,
        Payload::OrderPlaced(OrderPlaced {
            order_id: format!("o-{event_id}"),
            amount_cents,
            currency: "CNY".into(),
            ..Default::default()
        }),
    )
}

pub fn follow(tenant: &str, event_id: &str, user_id: &str, at_us: i64) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        at_us,
        Payload::Follow(Follow::default()),
    )
}

pub fn impression(tenant: &str, event_id: &str, user_id: &str, at_us: i64) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        at_us,
        Payload::ContentImpression(ContentImpression {
            content_id: "post-1".into(),
            category: "skincare".into(),
        }),
    )
}

/// An identify event linking the user to a phone, given as the hash ingestion would publish.
pub fn identify_phone(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    at_us: i64,
    phone_hash: &str,
) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        at_us,
        Payload::Identify(Identify {
            aliases: vec![Alias {
                kind: AliasKind::Phone as i32,
                value_hash: phone_hash.into(),
                ..Default::default()
            }],
        }),
    )
}
