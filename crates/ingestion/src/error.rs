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
    #[error("{0}")]
    Runtime(String),
}

impl IngestionError {
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::Auth(e) => e.code(),
            Self::Database(_) | Self::Storage(_) | Self::Bus(_) => Code::Unavailable,
            Self::Corrupt(_) | Self::Config(_) | Self::Runtime(_) => Code::Internal,
        }
    }
}

impl From<IngestionError> for Status {
    fn from(error: IngestionError) -> Self {
        let code = error.code();
        match code {
            // Database and broker text can carry hostnames, SQL and data: log it, never return it.
            Code::Unavailable | Code::Internal => {
                tracing::error!(error = %error, "request failed");
                let message = if code == Code::Unavailable {
                    "temporarily unavailable, retry with backoff"
                } else {
                    "internal error"
                };
                Status::new(code, message)
            }
            _ => Status::new(code, error.to_string()),
        }
    }
}
