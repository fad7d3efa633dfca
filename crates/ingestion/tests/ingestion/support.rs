//! `spawn_app()`: the ingestion service on a fresh database and fresh topics, against the broker and
//! PostgreSQL named by `SOCIALOPS_TEST_KAFKA` / `SOCIALOPS_TEST_DATABASE_URL`.

use std::ops::Deref;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use secrecy::SecretString;
use socialops_auth::Role;
use socialops_ingestion::{IngestionConfig, RunningIngestion};
use socialops_proto::Timestamp;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, OrderPlaced, Platform, SocialEvent};
use socialops_proto::ingestion::v1::ingestion_service_client::IngestionServiceClient;
use socialops_testkit::{Authed, Received, TestEnv};

pub use socialops_testkit::Backend;

pub type Client = IngestionServiceClient<Authed>;

pub struct TestApp {
    pub running: Option<RunningIngestion>,
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
    let config = IngestionConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(env.database(backend, "ingestion_test").await?),
        consumer_group: env.consumer_group("ingestion"),
        alias_key: Some(SecretString::from("test-alias-key")),
        ..IngestionConfig::default()
    };
    let running = socialops_ingestion::start(&config, env.dependencies(), env.shutdown.clone())
        .await
        .unwrap();
    Some(TestApp {
        running: Some(running),
        env,
    })
}

impl TestApp {
    pub fn running(&self) -> &RunningIngestion {
        self.running.as_ref().unwrap()
    }

    /// A client holding a fresh token for `tenant` with `role`.
    pub async fn client_for(&self, tenant: &str, role: Role) -> Client {
        Client::new(self.channel(self.running().grpc_addr, tenant, role).await)
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
        let consumer = socialops_testkit::consumer(&self.kafka);
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
                Ok(Ok(message)) => received.push(Received::from_message(&message)),
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
        self.env.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
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
