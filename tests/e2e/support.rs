//! `Stack::start()`: ingestion, segmentation and sentiment in one process, wired as `socialops dev`
//! wires them (one broker, one token store), but against the broker and PostgreSQL named by
//! `SOCIALOPS_TEST_KAFKA` / `SOCIALOPS_TEST_DATABASE_URL`, on topics of their own and a fresh
//! database per service. Tests reach the services only through their gRPC APIs and the raw topic.

mod events;
mod reads;

use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use secrecy::SecretString;
use socialops_auth::Role;
use socialops_ingestion::{IngestionConfig, RunningIngestion};
use socialops_proto::ingestion::v1::ingestion_service_client::IngestionServiceClient;
use socialops_proto::privacy::v1::ErasureRequest;
use socialops_proto::profiles::v1::ProfileChange;
use socialops_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use socialops_proto::sentiment::v1::sentiment_service_client::SentimentServiceClient;
use socialops_segmentation::{RunningSegmentation, SegmentationConfig};
use socialops_sentiment::{RunningSentiment, SentimentConfig};
use socialops_storage::DatabaseConfig;
use socialops_testkit::{
    Authed, Dependencies, TestEnv, TopicReader, channel_with_token, postgres_admin_url,
};

pub use events::{ago, comment, follow, order, total};
pub use socialops_testkit::{Backend, eventually};

pub type IngestionClient = IngestionServiceClient<Authed>;
pub type SegmentationClient = SegmentationServiceClient<Authed>;
pub type SentimentClient = SentimentServiceClient<Authed>;

const PARTITIONS: i32 = 3;

/// The three services, running, and what the tests watch from outside.
pub struct Stack {
    /// Every change segmentation published on the profiles topic, read from its start.
    pub profile_changes: TopicReader<ProfileChange>,
    /// Every erasure request published on the privacy topic, read from its start.
    pub erasures: TopicReader<ErasureRequest>,
    addrs: [SocketAddr; 3],
    running: Option<(RunningIngestion, RunningSegmentation, RunningSentiment)>,
    env: TestEnv,
}

/// One caller's clients of the three services, all holding the same token.
#[derive(Clone)]
pub struct Clients {
    pub ingestion: IngestionClient,
    pub segmentation: SegmentationClient,
    pub sentiment: SentimentClient,
}

/// A fresh database for `service`: a SQLite file in the data directory, or a scratch PostgreSQL
/// database.
async fn database(env: &TestEnv, backend: Backend, service: &str) -> DatabaseConfig {
    env.database(backend, &format!("e2e_{service}"))
        .await
        .expect("checked when the stack started")
}

impl Stack {
    /// Starts the three services, or returns `None` (with a note) when the broker or PostgreSQL is
    /// not configured outside CI.
    pub async fn start(backend: Backend) -> Option<Self> {
        let env = TestEnv::new()?;
        if backend == Backend::Postgres {
            postgres_admin_url()?;
        }
        env.create_topics(PARTITIONS).await;
        let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let deps = || Dependencies {
            create_topics: false,
            ..env.dependencies()
        };

        let ingestion_config = IngestionConfig {
            grpc_listen: any_port,
            database: Some(database(&env, backend, "ingestion").await),
            consumer_group: env.consumer_group("e2e-ingestion"),
            alias_key: Some(SecretString::from("e2e-alias-key")),
            ..IngestionConfig::default()
        };
        let ingestion = socialops_ingestion::start(&ingestion_config, deps(), env.shutdown.clone())
            .await
            .unwrap();

        let segmentation_config = SegmentationConfig {
            grpc_listen: any_port,
            database: Some(database(&env, backend, "segmentation").await),
            consumer_group: env.consumer_group("e2e-segmentation"),
            ..SegmentationConfig::default()
        };
        let segmentation =
            socialops_segmentation::start(&segmentation_config, deps(), env.shutdown.clone())
                .await
                .unwrap();

        let sentiment_config = SentimentConfig {
            grpc_listen: any_port,
            database: Some(database(&env, backend, "sentiment").await),
            consumer_group: env.consumer_group("e2e-sentiment"),
            ..SentimentConfig::default()
        };
        let sentiment = socialops_sentiment::start(&sentiment_config, deps(), env.shutdown.clone())
            .await
            .unwrap();

        Some(Self {
            profile_changes: TopicReader::follow(&env.kafka, &env.topics.profiles),
            erasures: TopicReader::follow(&env.kafka, &env.topics.privacy),
            addrs: [
                ingestion.grpc_addr,
                segmentation.grpc_addr,
                sentiment.grpc_addr,
            ],
            running: Some((ingestion, segmentation, sentiment)),
            env,
        })
    }

    /// Issues a token for `tenant` with `role` from the one token store the services share, and
    /// returns its plaintext, as `socialops tokens issue` prints it.
    pub fn issue_token(&self, tenant: &str, role: Role) -> String {
        self.env.token(tenant, role)
    }

    /// Clients of the three services presenting `token`.
    pub async fn clients(&self, token: &str) -> Clients {
        let [ingestion, segmentation, sentiment] = self.addrs;
        Clients {
            ingestion: IngestionClient::new(channel_with_token(ingestion, token).await),
            segmentation: SegmentationClient::new(channel_with_token(segmentation, token).await),
            sentiment: SentimentClient::new(channel_with_token(sentiment, token).await),
        }
    }

    /// Produces `events` to the raw topic as an external producer would: one JSON document per
    /// message, `content-type: application/json`, all under one key so they keep their order.
    pub async fn produce_raw_json(&self, key: &str, events: &[serde_json::Value]) {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.env.kafka.bootstrap_servers);
        let producer: FutureProducer = config.create().unwrap();
        for event in events {
            let payload = serde_json::to_vec(event).unwrap();
            let record = FutureRecord::<str, [u8]>::to(&self.env.topics.raw)
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
        self.env.shutdown.cancel();
        if let Some((ingestion, segmentation, sentiment)) = self.running.take() {
            let (ingested, segmented, monitored) =
                tokio::join!(ingestion.wait(), segmentation.wait(), sentiment.wait());
            ingested.unwrap();
            segmented.unwrap();
            monitored.unwrap();
        }
    }
}
