use socialops_auth::AuthError;
use tonic::{Code, Status};

use crate::domain::ParseError;

/// Everything that can go wrong in the segmentation service. [`SegmentationError::code`] is the one
/// place that decides what a gRPC client sees.
#[derive(Debug, thiserror::Error)]
pub enum SegmentationError {
    #[error("{0}")]
    InvalidArgument(String),
    /// A segment rule that does not parse or type-check, with its position.
    #[error("rule: {0}")]
    InvalidRule(#[from] ParseError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Storage(#[from] socialops_storage::StorageError),
    #[error("kafka: {0}")]
    Bus(#[from] socialops_bus::BusError),
    #[error("stored profile cannot be decoded: {0}")]
    Corrupt(String),
    /// The service's own configuration is unusable; found at start-up.
    #[error("configuration: {0}")]
    Config(String),
    /// Another transaction changed what this one read; the whole unit of work is retried.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A failed internal step (an invariant broken, a worker task lost).
    #[error("{0}")]
    Runtime(String),
    /// A part of the running service failed (listener, server, background task).
    #[error(transparent)]
    Service(#[from] socialops_grpc::ServiceError),
}

impl SegmentationError {
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) | Self::InvalidRule(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Auth(e) => e.code(),
            Self::Database(e) => socialops_grpc::database_code(e),
            Self::Storage(_) | Self::Bus(_) => Code::Unavailable,
            Self::Conflict(_) => Code::Aborted,
            Self::Corrupt(_) | Self::Config(_) | Self::Runtime(_) | Self::Service(_) => {
                Code::Internal
            }
        }
    }

    /// A unique-constraint violation becomes `AlreadyExists` with `message`; anything else stays a
    /// database error.
    pub(crate) fn on_unique(error: sqlx::Error, message: impl FnOnce() -> String) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::AlreadyExists(message()),
            _ => Self::Database(error),
        }
    }
}

impl From<SegmentationError> for Status {
    fn from(error: SegmentationError) -> Self {
        match &error {
            SegmentationError::Database(e) => socialops_grpc::database_status(e),
            _ => socialops_grpc::client_status(error.code(), &error),
        }
    }
}
