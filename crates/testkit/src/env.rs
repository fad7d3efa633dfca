use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use secrecy::ExposeSecret;
use socialops_auth::{Role, TokenStore};
use socialops_bus::{KafkaConfig, Topics};
use socialops_storage::DatabaseConfig;
use socialops_storage::clock::{Clock, ManualClock, SystemClock};
use tokio_util::sync::CancellationToken;

use crate::{Authed, Backend, Dependencies, channel_with_token};

/// What a test starts services in: the broker, topics no other test uses, a token store, a data
/// directory removed at the end, a clock the test moves and the shutdown token.
pub struct TestEnv {
    pub kafka: KafkaConfig,
    pub topics: Topics,
    pub tokens: TokenStore,
    /// Starts at the wall clock's now; services see it only through [`TestEnv::dependencies_on_clock`].
    pub clock: ManualClock,
    /// The topics' suffix, also for consumer groups.
    pub suffix: String,
    /// A tenant id no other test uses.
    pub tenant: String,
    pub shutdown: CancellationToken,
    data_dir: tempfile::TempDir,
}

impl TestEnv {
    /// `None` (with a note) when the broker is not configured outside CI.
    pub fn new() -> Option<Self> {
        let kafka = crate::kafka()?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Some(Self {
            kafka,
            topics: Topics::with_suffix(&suffix),
            tokens: TokenStore::default(),
            clock: ManualClock::new(SystemClock.now_us()),
            tenant: format!("t{}", &suffix[..12]),
            suffix,
            shutdown: CancellationToken::new(),
            data_dir: tempfile::tempdir().expect("data directory"),
        })
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// A fresh database for `name` in this environment.
    pub async fn database(&self, backend: Backend, name: &str) -> Option<DatabaseConfig> {
        crate::database(backend, self.data_dir(), name).await
    }

    /// A consumer group of `service` no other test uses.
    pub fn consumer_group(&self, service: &str) -> String {
        format!("{service}-{}", self.suffix)
    }

    /// Creates every topic with `partitions` partitions.
    pub async fn create_topics(&self, partitions: i32) {
        socialops_bus::ensure_topics(&self.kafka, &self.topics.all(), partitions)
            .await
            .expect("create topics");
    }

    /// What a service starts with here, on the system clock.
    pub fn dependencies(&self) -> Dependencies {
        Dependencies::new(
            self.kafka.clone(),
            self.topics.clone(),
            self.tokens.clone(),
            self.data_dir().to_owned(),
        )
    }

    /// What a service starts with here, on [`TestEnv::clock`].
    pub fn dependencies_on_clock(&self) -> Dependencies {
        Dependencies {
            clock: Arc::new(self.clock.clone()),
            ..self.dependencies()
        }
    }

    /// Issues a token for `tenant` with `role` and returns its plaintext.
    pub fn token(&self, tenant: &str, role: Role) -> String {
        self.tokens
            .issue(tenant, role)
            .token
            .expose_secret()
            .to_owned()
    }

    /// A channel to the service on `addr` holding a fresh token for `tenant` with `role`.
    pub async fn channel(&self, addr: SocketAddr, tenant: &str, role: Role) -> Authed {
        channel_with_token(addr, &self.token(tenant, role)).await
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
