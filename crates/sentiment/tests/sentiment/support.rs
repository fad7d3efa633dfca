//! `spawn_app()`: the sentiment service on a fresh database and fresh topics, with a manual clock,
//! against the broker and PostgreSQL named by `SOCIALOPS_TEST_KAFKA` / `SOCIALOPS_TEST_DATABASE_URL`.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use socialops_auth::Role;
use socialops_bus::{OutgoingMessage, Producer, headers};
use socialops_proto::alerts::v1::{AlertKind, CrisisAlert};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, DirectMessage, Mention, Platform, SocialEvent};
use socialops_proto::sentiment::v1::CreateWatchlistRequest;
use socialops_proto::sentiment::v1::sentiment_service_client::SentimentServiceClient;
use socialops_scorer::Scorer;
use socialops_sentiment::{Dependencies, RunningSentiment, SentimentConfig, TenantSettings};
use socialops_testkit::{Authed, TestEnv, TopicReader, eventually, poll};
use tokio_util::sync::CancellationToken;

pub use socialops_testkit::{Backend, ts};

pub type Client = SentimentServiceClient<Authed>;

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;
/// 2026-11-20T00:00:00Z: the tests' calendar starts here.
pub const DAY0_US: i64 = 1_795_132_800 * 1_000_000;

/// The process's scorer, the one the service scores with.
pub fn scorer() -> Arc<Scorer> {
    socialops_sentiment::shared_scorer()
}

pub struct TestApp {
    pub running: Option<RunningSentiment>,
    pub producer: Producer,
    pub alerts: Alerts,
    pub config: SentimentConfig,
    deps: Dependencies,
    env: TestEnv,
}

impl Deref for TestApp {
    type Target = TestEnv;

    fn deref(&self) -> &TestEnv {
        &self.env
    }
}

/// Changes the defaults a scenario needs; most take them as they are.
pub fn spawn_app(backend: Backend) -> impl Future<Output = Option<TestApp>> {
    spawn_app_with(backend, |_| {})
}

pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut SentimentConfig),
) -> Option<TestApp> {
    let env = TestEnv::new()?;
    let mut config = SentimentConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(env.database(backend, "sentiment_test").await?),
        consumer_group: env.consumer_group("sentiment"),
        sweep_interval: Duration::from_millis(50),
        ..SentimentConfig::default()
    };
    configure(&mut config);
    env.clock.set(DAY0_US + 20 * HOUR_US);
    let deps = env.dependencies_on_clock();
    let running = socialops_sentiment::start(&config, deps.clone(), env.shutdown.clone())
        .await
        .unwrap();
    Some(TestApp {
        producer: Producer::new(&env.kafka).unwrap(),
        running: Some(running),
        alerts: Alerts(TopicReader::follow(&env.kafka, &env.topics.alerts)),
        config,
        deps,
        env,
    })
}

/// A tenant's reply target and response time, for scenarios that set them.
pub fn tenant_settings(reply_target: Duration) -> TenantSettings {
    TenantSettings {
        reply_target,
        ..TenantSettings::default()
    }
}

impl TestApp {
    pub fn clock_now(&self) -> i64 {
        use socialops_sentiment::Clock;
        self.clock.now_us()
    }

    pub fn running(&self) -> &RunningSentiment {
        self.running.as_ref().unwrap()
    }

    /// A client holding a fresh token for `tenant` with `role`.
    pub async fn client_for(&self, tenant: &str, role: Role) -> Client {
        Client::new(self.channel(self.running().grpc_addr, tenant, role).await)
    }

    pub async fn writer(&self) -> Client {
        self.client_for(&self.tenant, Role::Writer).await
    }

    pub async fn reader(&self) -> Client {
        self.client_for(&self.tenant, Role::Reader).await
    }

    /// Publishes canonical events on the events topic, keyed `tenant:user` as ingestion does.
    pub async fn publish(&self, events: &[SocialEvent]) {
        let messages: Vec<OutgoingMessage> = events
            .iter()
            .map(|e| {
                OutgoingMessage::new(
                    &self.topics.events,
                    Some(format!("{}:{}", e.tenant_id, e.user_id)),
                    e.encode_to_vec(),
                )
                .header(headers::CONTENT_TYPE, headers::CONTENT_TYPE_PROTOBUF)
            })
            .collect();
        self.producer.send_all(&messages).await.unwrap();
    }

    /// How many text events of `tenant` the service has handled.
    pub async fn processed(&self, tenant: &str) -> u64 {
        let store = self.running().monitor.store();
        let mut conn = store.conn().await.unwrap();
        socialops_sentiment::store::processed_count(&mut conn, tenant)
            .await
            .unwrap()
    }

    /// Waits until `want` distinct text events of `tenant` have been handled.
    pub async fn wait_processed(&self, tenant: &str, want: u64) {
        let seen = poll(
            &format!("{want} events handled"),
            || self.processed(tenant),
            |seen| *seen >= want,
        )
        .await;
        assert_eq!(seen, want, "more events handled than published");
    }

    /// Publishes events and waits until they are handled (each must be new).
    pub async fn publish_and_wait(&self, tenant: &str, events: &[SocialEvent]) {
        let before = self.processed(tenant).await;
        self.publish(events).await;
        self.wait_processed(tenant, before + events.len() as u64)
            .await;
    }

    pub async fn watchlist(&self, client: &mut Client, name: &str, products: &[&str]) -> String {
        client
            .create_watchlist(CreateWatchlistRequest {
                tenant_id: String::new(),
                name: name.into(),
                brands: vec!["花知晓".into()],
                products: products.iter().map(|p| (*p).to_owned()).collect(),
                risk_words: vec!["质量问题".into(), "过敏".into(), "退款".into()],
            })
            .await
            .unwrap()
            .into_inner()
            .watchlist_id
    }

    /// Stops the service and starts it again on the same store, topics and consumer group.
    pub async fn restart(&mut self) {
        self.env.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
        self.env.shutdown = CancellationToken::new();
        let running =
            socialops_sentiment::start(&self.config, self.deps.clone(), self.env.shutdown.clone())
                .await
                .unwrap();
        self.running = Some(running);
    }

    pub async fn stop(mut self) {
        self.env.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
    }
}

/// Every alert published on the alerts topic, collected in the background from the start.
pub struct Alerts(TopicReader<CrisisAlert>);

impl Alerts {
    pub fn all(&self) -> Vec<CrisisAlert> {
        self.0.all()
    }

    pub fn keys(&self) -> Vec<Option<String>> {
        self.0.keys()
    }

    /// The tenant's alerts once there are at least `want`, failing after 60 s.
    pub async fn wait_for(&self, tenant: &str, want: usize) -> Vec<CrisisAlert> {
        eventually(&format!("{want} alerts"), || {
            let alerts: Vec<CrisisAlert> = self
                .all()
                .into_iter()
                .filter(|a| a.tenant_id == tenant)
                .collect();
            async move {
                if alerts.len() >= want {
                    Ok(alerts)
                } else {
                    Err(format!("{} alerts: {:?}", alerts.len(), kinds(&alerts)))
                }
            }
        })
        .await
    }
}

pub fn kinds(alerts: &[CrisisAlert]) -> Vec<AlertKind> {
    alerts
        .iter()
        .map(|a| AlertKind::try_from(a.kind).unwrap())
        .collect()
}

fn event(tenant: &str, event_id: &str, user_id: &str, at_us: i64, payload: Payload) -> SocialEvent {
    SocialEvent {
        event_id: event_id.into(),
        tenant_id: tenant.into(),
        platform: Platform::Xiaohongshu as i32,
        user_id: user_id.into(),
        occurred_at: Some(ts(at_us)),
        payload: Some(payload),
        ..Default::default()
    }
}

pub fn comment(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    text: &str,
    at_us: i64,
    reach: u64,
) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        at_us,
        Payload::Comment(Comment {
            comment_id: format!("c-{event_id}"),
            post_id: "post-1".into(),
            text: text.into(),
            author_follower_count: reach,
            ..Default::default()
        }),
    )
}

pub fn mention(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    text: &str,
    at_us: i64,
    reach: u64,
) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        at_us,
        Payload::Mention(Mention {
            mention_id: format!("m-{event_id}"),
            text: text.into(),
            author: format!("author-{user_id}"),
            reach,
            url: String::new(),
        }),
    )
}

/// A brand's reply under a comment: `reply_to` is the comment id it answers.
pub fn brand_comment(tenant: &str, event_id: &str, reply_to: &str, at_us: i64) -> SocialEvent {
    event(
        tenant,
        event_id,
        "brand_official",
        at_us,
        Payload::Comment(Comment {
            comment_id: format!("c-{event_id}"),
            post_id: "post-1".into(),
            text: "您好，已私信您处理".into(),
            reply_to_id: reply_to.into(),
            from_brand: true,
            ..Default::default()
        }),
    )
}

/// A direct message in `conversation`, from the user or from the brand.
pub fn direct_message(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    conversation: &str,
    text: &str,
    at_us: i64,
    from_brand: bool,
) -> SocialEvent {
    let mut e = event(
        tenant,
        event_id,
        user_id,
        at_us,
        Payload::DirectMessage(DirectMessage {
            message_id: format!("d-{event_id}"),
            conversation_id: conversation.into(),
            text: text.into(),
            from_brand,
            ..Default::default()
        }),
    );
    e.platform = Platform::Wechat as i32;
    e
}

/// Texts whose labels the scenarios rely on; `fixtures_score_as_the_scenarios_assume` checks them.
pub const NEGATIVE: &[&str] = &[
    "积雪草精华用了三天就过敏，脸又红又痒，太差了",
    "積雪草精華質量問題太嚴重了，爛臉，要求退款",
    "积雪草精华瓶身漏液，客服也不回复，失望透顶",
    "ＨＺＸ积雪草精华虚假宣传，根本不修护，垃圾",
    "买了积雪草精华后悔死了，刺痛泛红，差评",
];
pub const POSITIVE: &[&str] = &[
    "积雪草精华很好用，敏感肌也不泛红，会回购",
    "积雪草精华吸收快，效果不错，推荐",
    "积雪草精华太好用了，皮肤状态超级好，爱了",
];
pub const NEUTRAL: &[&str] = &["积雪草精华多少毫升"];

pub trait EventText {
    fn text(&self) -> &str;
}

impl EventText for SocialEvent {
    fn text(&self) -> &str {
        match &self.payload {
            Some(Payload::Comment(c)) => &c.text,
            Some(Payload::Mention(m)) => &m.text,
            Some(Payload::DirectMessage(d)) => &d.text,
            _ => "",
        }
    }
}
