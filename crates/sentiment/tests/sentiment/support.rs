//! `spawn_app()`: the sentiment service on a fresh database and fresh topics, with a manual clock,
//! against the broker and PostgreSQL named by `SOCIALOPS_TEST_KAFKA` / `SOCIALOPS_TEST_DATABASE_URL`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use secrecy::ExposeSecret;
use socialops_auth::{BearerToken, Role, TokenStore};
use socialops_bus::{KafkaConfig, OutgoingMessage, Producer, Topics, headers};
use socialops_proto::Timestamp;
use socialops_proto::alerts::v1::{AlertKind, CrisisAlert};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, DirectMessage, Mention, Platform, SocialEvent};
use socialops_proto::sentiment::v1::CreateWatchlistRequest;
use socialops_proto::sentiment::v1::sentiment_service_client::SentimentServiceClient;
use socialops_scorer::Scorer;
use socialops_sentiment::{
    Dependencies, ManualClock, RunningSentiment, SentimentConfig, TenantSettings,
};
use socialops_storage::testing::required_env;
use socialops_storage::{DatabaseConfig, create_scratch_postgres};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = SentimentServiceClient<InterceptedService<Channel, BearerToken>>;

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;
/// 2026-11-20T00:00:00Z: the tests' calendar starts here.
pub const DAY0_US: i64 = 1_795_132_800 * 1_000_000;

/// The process's scorer, the one the service scores with.
pub fn scorer() -> Arc<Scorer> {
    socialops_sentiment::shared_scorer()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub topics: Topics,
    pub tokens: TokenStore,
    pub clock: ManualClock,
    pub running: Option<RunningSentiment>,
    pub shutdown: CancellationToken,
    pub tenant: String,
    pub producer: Producer,
    pub alerts: AlertReader,
    pub config: SentimentConfig,
    deps: Dependencies,
    _data_dir: tempfile::TempDir,
}

/// Changes the defaults a scenario needs; most take them as they are.
pub fn spawn_app(backend: Backend) -> impl Future<Output = Option<TestApp>> {
    spawn_app_with(backend, |_| {})
}

pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut SentimentConfig),
) -> Option<TestApp> {
    socialops_telemetry::init_for_tests();
    let kafka = KafkaConfig::new(required_env("SOCIALOPS_TEST_KAFKA")?);
    let data_dir = tempfile::tempdir().unwrap();
    let database = match backend {
        Backend::Sqlite => DatabaseConfig::sqlite_file(&data_dir.path().join("sentiment.db")),
        Backend::Postgres => DatabaseConfig {
            url: create_scratch_postgres(
                &required_env("SOCIALOPS_TEST_DATABASE_URL")?,
                "sentiment_test",
            )
            .await
            .unwrap(),
            max_connections: 4,
        },
    };
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topics = Topics::with_suffix(&suffix);
    let mut config = SentimentConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(database),
        consumer_group: format!("sentiment-{suffix}"),
        sweep_interval: Duration::from_millis(50),
        ..SentimentConfig::default()
    };
    configure(&mut config);
    let tokens = TokenStore::from_config(&Default::default()).unwrap();
    let clock = ManualClock::new(DAY0_US + 20 * HOUR_US);
    let deps = Dependencies {
        clock: Arc::new(clock.clone()),
        ..Dependencies::new(
            kafka.clone(),
            topics.clone(),
            tokens.clone(),
            data_dir.path().to_owned(),
        )
    };
    let shutdown = CancellationToken::new();
    let running = socialops_sentiment::start(&config, deps.clone(), shutdown.clone())
        .await
        .unwrap();
    let alerts = AlertReader::start(&kafka, &topics.alerts);
    Some(TestApp {
        producer: Producer::new(&kafka).unwrap(),
        topics,
        tokens,
        clock,
        running: Some(running),
        shutdown,
        tenant: format!("t{}", &suffix[..12]),
        alerts,
        config,
        deps,
        _data_dir: data_dir,
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
        let issued = self.tokens.issue(tenant, role);
        let channel = socialops_grpc::connect(&format!("http://{}", self.running().grpc_addr))
            .await
            .unwrap();
        SentimentServiceClient::with_interceptor(
            channel,
            BearerToken::new(issued.token.expose_secret()).unwrap(),
        )
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
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = self.processed(tenant).await;
            if seen >= want {
                assert_eq!(seen, want, "more events handled than published");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {seen} of {want} events handled after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
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
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
        self.shutdown = CancellationToken::new();
        let running =
            socialops_sentiment::start(&self.config, self.deps.clone(), self.shutdown.clone())
                .await
                .unwrap();
        self.running = Some(running);
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
    }
}

/// An alert as read from the topic, with its key.
type Keyed = (Option<String>, CrisisAlert);

/// Every alert published on the alerts topic, collected in the background from the start.
pub struct AlertReader {
    seen: Arc<Mutex<Vec<Keyed>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl AlertReader {
    fn start(kafka: &KafkaConfig, topic: &str) -> Self {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.bootstrap_servers)
            .set("group.id", format!("alert-reader-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    match consumer.recv().await {
                        Ok(message) => {
                            let alert = CrisisAlert::decode(message.payload().unwrap_or_default())
                                .expect("only alerts on the alerts topic");
                            let key = message
                                .key()
                                .map(|k| String::from_utf8_lossy(k).into_owned());
                            seen.lock().unwrap().push((key, alert));
                        }
                        Err(error) => tracing::warn!(%error, "alert reader"),
                    }
                }
            }
        });
        Self { seen, _task: task }
    }

    pub fn all(&self) -> Vec<CrisisAlert> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, a)| a.clone())
            .collect()
    }

    pub fn keys(&self) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The tenant's alerts once there are at least `want`, failing after 60 s.
    pub async fn wait_for(&self, tenant: &str, want: usize) -> Vec<CrisisAlert> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let alerts: Vec<CrisisAlert> = self
                .all()
                .into_iter()
                .filter(|a| a.tenant_id == tenant)
                .collect();
            if alerts.len() >= want {
                return alerts;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {want} alerts after 60 s: {:?}",
                alerts.len(),
                kinds(&alerts)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub fn kinds(alerts: &[CrisisAlert]) -> Vec<AlertKind> {
    alerts
        .iter()
        .map(|a| AlertKind::try_from(a.kind).unwrap())
        .collect()
}

pub fn ts(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: 0,
    }
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

/// The first `count` messages on the dead-letter topic: each one's payload and `dlq-reason`.
pub async fn read_dead_letters(topics: &Topics, count: usize) -> Vec<(Vec<u8>, String)> {
    let bootstrap = required_env("SOCIALOPS_TEST_KAFKA").expect("the broker is configured");
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("dlq-reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("dead-letter reader");
    consumer.subscribe(&[topics.dlq.as_str()]).unwrap();
    let mut letters = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while letters.len() < count {
            let message = consumer.recv().await.expect("dead-letter topic");
            let reason = message
                .headers()
                .and_then(|hs| {
                    use rdkafka::message::Headers;
                    hs.iter()
                        .find(|h| h.key == headers::DLQ_REASON)
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                })
                .unwrap_or_default();
            letters.push((message.payload().unwrap_or_default().to_vec(), reason));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} dead letters in 60 s", letters.len()));
    letters
}
