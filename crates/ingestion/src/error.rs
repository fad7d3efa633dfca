use socialops_auth::AuthError;
use tonic::{Code, Status};

/// Everything that can go wrong in the ingestion service. [`IngestionError::code`] is the one place
/// that decides what a gRPC client sees.
#[derive(Debug, thiserror::Error)]
pub enum IngestionError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Storage(#[from] socialops_storage::StorageError),
    #[error("kafka: {0}")]
    Bus(#[from] socialops_bus::BusError),
    #[error("stored event cannot be decoded: {0}")]
    Corrupt(String),
    /// The service's own configuration is unusable; found at start-up.
    #[error("configuration: {0}")]
    Config(String),
    /// A part of the running service failed (listener, server, background task).
    #[error(transparent)]
    Service(#[from] socialops_grpc::ServiceError),
}

impl IngestionError {
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::Auth(e) => e.code(),
            Self::Database(e) => socialops_grpc::database_code(e),
            Self::Storage(_) | Self::Bus(_) => Code::Unavailable,
            Self::Corrupt(_) | Self::Config(_) | Self::Service(_) => Code::Internal,
        }
    }
}

impl From<IngestionError> for Status {
    fn from(error: IngestionError) -> Self {
        match &error {
            IngestionError::Database(e) => socialops_grpc::database_status(e),
            _ => socialops_grpc::client_status(error.code(), &error),
        }
    }
}
