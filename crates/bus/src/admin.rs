use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use tracing::{debug, info, warn};

use crate::config::KafkaConfig;
use crate::error::BusError;

/// Partitions of the topics a service creates for itself when they are missing; production creates
/// them beforehand.
pub const SERVICE_TOPIC_PARTITIONS: i32 = 6;

/// What a service does at start-up when asked to: creates the missing topics with
/// [`SERVICE_TOPIC_PARTITIONS`] partitions, and if that fails (no right to create topics, say) logs it
/// and goes on, assuming they exist.
pub async fn ensure_service_topics(config: &KafkaConfig, topics: &[&str]) {
    if let Err(error) = ensure_topics(config, topics, SERVICE_TOPIC_PARTITIONS).await {
        warn!(error = %error, "could not create topics, assuming they exist");
    }
}

/// Creates the topics that do not exist yet with `partitions` partitions and the broker's default
/// replication factor; existing topics are left as they are.
pub async fn ensure_topics(
    config: &KafkaConfig,
    topics: &[&str],
    partitions: i32,
) -> Result<(), BusError> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = config.client_config(&[]).create()?;
    // -1 asks the broker for its `default.replication.factor`, so the same call works on a one-broker
    // development cluster and in production.
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(topic) => info!(topic = %topic, partitions, "topic created"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                debug!(topic = %topic, "topic exists")
            }
            Err((topic, code)) => {
                return Err(BusError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
