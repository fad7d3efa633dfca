use rdkafka::error::{KafkaError, RDKafkaErrorCode};

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
    #[error("outbox row {id} is unreadable: {reason}")]
    CorruptOutboxRow { id: i64, reason: String },
    #[error("embedded broker: {0}")]
    Embedded(String),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl BusError {
    /// Whether trying again later can succeed: broker or database unreachable, timeouts, full queues.
    /// Configuration mistakes and corrupt data are not.
    pub fn is_transient(&self) -> bool {
        match self {
            BusError::Kafka(e) => {
                !matches!(
                    e,
                    KafkaError::ClientConfig(..)
                        | KafkaError::ClientCreation(_)
                        | KafkaError::Subscription(_)
                        | KafkaError::Nul(_)
                        | KafkaError::MockCluster(_)
                ) && e.rdkafka_error_code() != Some(RDKafkaErrorCode::Fatal)
            }
            BusError::Storage(e) => matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Database(_)
            ),
            BusError::Delivery { .. } | BusError::CreateTopic { .. } => true,
            BusError::CorruptOutboxRow { .. } | BusError::Embedded(_) | BusError::Task(_) => false,
        }
    }
}
