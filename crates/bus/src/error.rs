use rdkafka::error::KafkaError;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("database: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("delivery to {topic} failed: {reason}")]
    Delivery { topic: String, reason: String },
    #[error("creating topic {topic} failed: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("embedded broker: {0}")]
    Embedded(String),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
