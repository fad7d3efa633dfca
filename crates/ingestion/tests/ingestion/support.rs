//! `spawn_app()`: the ingestion service on a fresh database and fresh topics, against the broker and
//! PostgreSQL named by `SOCIALOPS_TEST_KAFKA` / `SOCIALOPS_TEST_DATABASE_URL`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use secrecy::{ExposeSecret, SecretString};
use socialops_auth::{BearerToken, Role, TokenStore};
use socialops_bus::{KafkaConfig, Topics};
use socialops_ingestion::{Dependencies, IngestionConfig, RunningIngestion};
use socialops_proto::Timestamp;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, OrderPlaced, Platform, SocialEvent};
use socialops_proto::ingestion::v1::ingestion_service_client::IngestionServiceClient;
use socialops_storage::testing::required_env;
use socialops_storage::{DatabaseConfig, create_scratch_postgres};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = IngestionServiceClient<InterceptedService<Channel, BearerToken>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The broker address, or None (with a note) when unset outside CI. In CI a missing variable fails.
pub fn kafka_address() -> Option<String> {
    required_env("SOCIALOPS_TEST_KAFKA")
}

pub fn postgres_admin_url() -> Option<String> {
    required_env("SOCIALOPS_TEST_DATABASE_URL")
}

pub struct TestApp {
    pub kafka: KafkaConfig,
    pub topics: Topics,
    pub tokens: TokenStore,
    pub running: Option<RunningIngestion>,
    pub shutdown: CancellationToken,
    pub tenant: String,
    _data_dir: tempfile::TempDir,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    socialops_telemetry::init_for_tests();
    let kafka = KafkaConfig::new(kafka_address()?);
    let data_dir = tempfile::tempdir().unwrap();
    let database = match backend {
        Backend::Sqlite => DatabaseConfig::sqlite_file(&data_dir.path().join("ingestion.db")),
        Backend::Postgres => DatabaseConfig {
            url: create_scratch_postgres(&postgres_admin_url()?, "ingestion_test")
                .await
                .unwrap(),
            max_connections: 4,
        },
    };
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topics = Topics::with_suffix(&suffix);
    let config = IngestionConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(database),
        consumer_group: format!("ingestion-{suffix}"),
        alias_key: Some(SecretString::from("test-alias-key")),
        ..IngestionConfig::default()
    };
    let tokens = TokenStore::from_config(&Default::default()).unwrap();
    let deps = Dependencies::new(
        kafka.clone(),
        topics.clone(),
        tokens.clone(),
        data_dir.path().to_owned(),
    );
    let shutdown = CancellationToken::new();
    let running = socialops_ingestion::start(&config, deps, shutdown.clone())
        .await
        .unwrap();
    Some(TestApp {
        kafka,
        topics,
        tokens,
        running: Some(running),
        shutdown,
        tenant: format!("t{}", &suffix[..12]),
        _data_dir: data_dir,
    })
}

impl TestApp {
    pub fn running(&self) -> &RunningIngestion {
        self.running.as_ref().unwrap()
    }

    /// A client holding a fresh token for `tenant` with `role`.
    pub async fn client_for(&self, tenant: &str, role: Role) -> Client {
        let issued = self.tokens.issue(tenant, role);
        let channel = socialops_grpc::connect(&format!("http://{}", self.running().grpc_addr))
            .await
            .unwrap();
        IngestionServiceClient::with_interceptor(
            channel,
            BearerToken::new(issued.token.expose_secret()).unwrap(),
        )
    }

    pub async fn writer(&self) -> Client {
        self.client_for(&self.tenant, Role::Admin).await
    }

    pub fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.kafka.bootstrap_servers);
        config
    }

    /// Reads `topic` from the start until `want` messages have arrived and then `quiet` passes with no
    /// more (so extra, unwanted messages are seen too), or until `timeout`.
    pub async fn read_topic(
        &self,
        topic: &str,
        want: usize,
        quiet: Duration,
        timeout: Duration,
    ) -> Vec<Received> {
        let consumer: StreamConsumer = self
            .producer_config()
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        loop {
            let wait = if received.len() >= want {
                quiet
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            match tokio::time::timeout(wait, consumer.recv()).await {
                Ok(Ok(message)) => received.push(Received::from(&message)),
                Ok(Err(error)) => panic!("reading {topic}: {error}"),
                Err(_) => break,
            }
            if Instant::now() > deadline {
                break;
            }
        }
        received
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Received {
    fn from(message: &rdkafka::message::BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }

    pub fn event(&self) -> SocialEvent {
        prost::Message::decode(self.payload.as_slice()).unwrap()
    }
}

pub fn now_ts() -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp {
        seconds: now.as_secs() as i64 - 60,
        nanos: 0,
    }
}

pub fn comment(tenant: &str, event_id: &str, user_id: &str, text: &str) -> SocialEvent {
    SocialEvent {
        event_id: event_id.into(),
        tenant_id: tenant.into(),
        platform: Platform::Xiaohongshu as i32,
        user_id: user_id.into(),
        occurred_at: Some(now_ts()),
        payload: Some(Payload::Comment(Comment {
            comment_id: format!("c-{event_id}"),
            post_id: "p-1".into(),
            text: text.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn order(tenant: &str, event_id: &str, user_id: &str, amount_cents: i64) -> SocialEvent {
    SocialEvent {
        event_id: event_id.into(),
        tenant_id: tenant.into(),
        platform: Platform::Wechat as i32,
        user_id: user_id.into(),
        occurred_at: Some(now_ts()),
        payload: Some(Payload::OrderPlaced(OrderPlaced {
            order_id: format!("o-{event_id}"),
            amount_cents,
            currency: "CNY".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}
