//! `Stack::start()`: ingestion, segmentation and sentiment in one process, wired as `socialops dev`
//! wires them (one broker, one token store), but against the broker and PostgreSQL named by
//! `SOCIALOPS_TEST_KAFKA` / `SOCIALOPS_TEST_DATABASE_URL`, on topics of their own and a fresh
//! database per service. Tests reach the services only through their gRPC APIs and the raw topic.

mod events;
mod reads;
mod watch;

use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use secrecy::{ExposeSecret, SecretString};
use socialops_auth::{BearerToken, Role, TokenStore};
use socialops_bus::{KafkaConfig, Topics};
use socialops_ingestion::{IngestionConfig, RunningIngestion};
use socialops_proto::ingestion::v1::ingestion_service_client::IngestionServiceClient;
use socialops_proto::privacy::v1::ErasureRequest;
use socialops_proto::profiles::v1::ProfileChange;
use socialops_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use socialops_proto::sentiment::v1::sentiment_service_client::SentimentServiceClient;
use socialops_segmentation::{RunningSegmentation, SegmentationConfig};
use socialops_sentiment::{RunningSentiment, SentimentConfig};
use socialops_storage::testing::required_env;
use socialops_storage::{DatabaseConfig, create_scratch_postgres};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use events::{ago, comment, follow, order, total};
pub use watch::{TopicLog, eventually};

pub type IngestionClient = IngestionServiceClient<InterceptedService<Channel, BearerToken>>;
pub type SegmentationClient = SegmentationServiceClient<InterceptedService<Channel, BearerToken>>;
pub type SentimentClient = SentimentServiceClient<InterceptedService<Channel, BearerToken>>;

/// How long a test waits for something that crosses a service or the broker.
pub const PATIENCE: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The three services, running, and what the tests watch from outside.
pub struct Stack {
    topics: Topics,
    /// Every change segmentation published on the profiles topic, read from its start.
    pub profile_changes: TopicLog<ProfileChange>,
    /// Every erasure request published on the privacy topic, read from its start.
    pub erasures: TopicLog<ErasureRequest>,
    kafka: KafkaConfig,
    tokens: TokenStore,
    addrs: [SocketAddr; 3],
    running: Option<(RunningIngestion, RunningSegmentation, RunningSentiment)>,
    shutdown: CancellationToken,
    _data_dir: tempfile::TempDir,
}

/// One caller's clients of the three services, all holding the same token.
#[derive(Clone)]
pub struct Clients {
    pub ingestion: IngestionClient,
    pub segmentation: SegmentationClient,
    pub sentiment: SentimentClient,
}

/// A fresh database for `service`: a SQLite file in `dir`, or a scratch PostgreSQL database.
async fn database(backend: Backend, dir: &std::path::Path, service: &str) -> DatabaseConfig {
    match backend {
        Backend::Sqlite => DatabaseConfig::sqlite_file(&dir.join(format!("{service}.db"))),
        Backend::Postgres => {
            let admin = required_env("SOCIALOPS_TEST_DATABASE_URL")
                .expect("checked when the stack started");
            DatabaseConfig {
                url: create_scratch_postgres(&admin, &format!("e2e_{service}"))
                    .await
                    .unwrap(),
                max_connections: 4,
            }
        }
    }
}

impl Stack {
    /// Starts the three services, or returns `None` (with a note) when the broker or PostgreSQL is
    /// not configured outside CI.
    pub async fn start(backend: Backend) -> Option<Self> {
        socialops_telemetry::init_for_tests();
        let kafka = KafkaConfig::new(required_env("SOCIALOPS_TEST_KAFKA")?);
        if backend == Backend::Postgres {
            required_env("SOCIALOPS_TEST_DATABASE_URL")?;
        }
        let data_dir = tempfile::tempdir().unwrap();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let topics = Topics::with_suffix(&suffix);
        socialops_bus::ensure_topics(&kafka, &topics.all(), PARTITIONS)
            .await
            .unwrap();
        let tokens = TokenStore::default();
        let shutdown = CancellationToken::new();
        let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();

        let ingestion_config = IngestionConfig {
            grpc_listen: any_port,
            database: Some(database(backend, data_dir.path(), "ingestion").await),
            consumer_group: format!("e2e-ingestion-{suffix}"),
            alias_key: Some(SecretString::from("e2e-alias-key")),
            ..IngestionConfig::default()
        };
        let ingestion = socialops_ingestion::start(
            &ingestion_config,
            socialops_ingestion::Dependencies {
                create_topics: false,
                ..socialops_ingestion::Dependencies::new(
                    kafka.clone(),
                    topics.clone(),
                    tokens.clone(),
                    data_dir.path().to_owned(),
                )
            },
            shutdown.clone(),
        )
        .await
        .unwrap();

        let segmentation_config = SegmentationConfig {
            grpc_listen: any_port,
            database: Some(database(backend, data_dir.path(), "segmentation").await),
            consumer_group: format!("e2e-segmentation-{suffix}"),
            ..SegmentationConfig::default()
        };
        let segmentation = socialops_segmentation::start(
            &segmentation_config,
            socialops_segmentation::Dependencies {
                create_topics: false,
                ..socialops_segmentation::Dependencies::new(
                    kafka.clone(),
                    topics.clone(),
                    tokens.clone(),
                    data_dir.path().to_owned(),
                )
            },
            shutdown.clone(),
        )
        .await
        .unwrap();

        let sentiment_config = SentimentConfig {
            grpc_listen: any_port,
            database: Some(database(backend, data_dir.path(), "sentiment").await),
            consumer_group: format!("e2e-sentiment-{suffix}"),
            ..SentimentConfig::default()
        };
        let sentiment = socialops_sentiment::start(
            &sentiment_config,
            socialops_sentiment::Dependencies {
                create_topics: false,
                ..socialops_sentiment::Dependencies::new(
                    kafka.clone(),
                    topics.clone(),
                    tokens.clone(),
                    data_dir.path().to_owned(),
                )
            },
            shutdown.clone(),
        )
        .await
        .unwrap();

        Some(Self {
            profile_changes: TopicLog::follow(&kafka, &topics.profiles),
            erasures: TopicLog::follow(&kafka, &topics.privacy),
            addrs: [
                ingestion.grpc_addr,
                segmentation.grpc_addr,
                sentiment.grpc_addr,
            ],
            running: Some((ingestion, segmentation, sentiment)),
            topics,
            kafka,
            tokens,
            shutdown,
            _data_dir: data_dir,
        })
    }

    /// Issues a token for `tenant` with `role` from the one token store the services share, and
    /// returns its plaintext, as `socialops tokens issue` prints it.
    pub fn issue_token(&self, tenant: &str, role: Role) -> String {
        self.tokens
            .issue(tenant, role)
            .token
            .expose_secret()
            .to_owned()
    }

    /// Clients of the three services presenting `token`.
    pub async fn clients(&self, token: &str) -> Clients {
        let bearer = BearerToken::new(token).unwrap();
        let [ingestion, segmentation, sentiment] = self.addrs;
        let channel = |addr: SocketAddr| async move {
            socialops_grpc::connect(&format!("http://{addr}"))
                .await
                .unwrap()
        };
        Clients {
            ingestion: IngestionServiceClient::with_interceptor(
                channel(ingestion).await,
                bearer.clone(),
            ),
            segmentation: SegmentationServiceClient::with_interceptor(
                channel(segmentation).await,
                bearer.clone(),
            ),
            sentiment: SentimentServiceClient::with_interceptor(channel(sentiment).await, bearer),
        }
    }

    /// Produces `events` to the raw topic as an external producer would: one JSON document per
    /// message, `content-type: application/json`, all under one key so they keep their order.
    pub async fn produce_raw_json(&self, key: &str, events: &[serde_json::Value]) {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.kafka.bootstrap_servers);
        let producer: FutureProducer = config.create().unwrap();
        for event in events {
            let payload = serde_json::to_vec(event).unwrap();
            let record = FutureRecord::<str, [u8]>::to(&self.topics.raw)
                .key(key)
                .payload(&payload)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "content-type",
                    value: Some("application/json"),
                }));
            producer
                .send(record, Duration::from_secs(10))
                .await
                .map_err(|(error, _)| error)
                .unwrap();
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some((ingestion, segmentation, sentiment)) = self.running.take() {
            let (ingested, segmented, monitored) =
                tokio::join!(ingestion.wait(), segmentation.wait(), sentiment.wait());
            ingested.unwrap();
            segmented.unwrap();
            monitored.unwrap();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
