use socialops_auth::AuthError;
use tonic::{Code, Status};

use crate::domain::crisis::TransitionError;

/// Everything that can go wrong in the sentiment service. [`SentimentError::code`] is the one place
/// that decides what a gRPC client sees.
#[derive(Debug, thiserror::Error)]
pub enum SentimentError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// Another call changed the same row first; retrying reads the new state.
    #[error("{0}")]
    Conflict(String),
    /// A live stream fell this many alerts behind and cannot catch up.
    #[error("the alert stream fell {0} alerts behind; reconnect")]
    Lagged(u64),
    /// A lifecycle step the crisis's state does not allow.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Storage(#[from] socialops_storage::StorageError),
    #[error("kafka: {0}")]
    Bus(#[from] socialops_bus::BusError),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    /// The service's own configuration is unusable; found at start-up.
    #[error("configuration: {0}")]
    Config(String),
    /// A failed internal step (a worker task lost, the scorer not loading).
    #[error("{0}")]
    Runtime(String),
    /// A part of the running service failed (listener, server, background task).
    #[error(transparent)]
    Service(#[from] socialops_grpc::ServiceError),
}

impl SentimentError {
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Transition(_) => Code::FailedPrecondition,
            Self::Conflict(_) => Code::Aborted,
            Self::Lagged(_) => Code::ResourceExhausted,
            Self::Auth(e) => e.code(),
            Self::Database(e) => socialops_grpc::database_code(e),
            Self::Storage(_) | Self::Bus(_) => Code::Unavailable,
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

impl From<SentimentError> for Status {
    fn from(error: SentimentError) -> Self {
        match &error {
            SentimentError::Database(e) => socialops_grpc::database_status(e),
            _ => socialops_grpc::client_status(error.code(), &error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crisis::{Action, CrisisState};

    #[test]
    fn client_errors_keep_their_text_and_internal_ones_do_not() {
        let status = Status::from(SentimentError::Transition(TransitionError {
            from: CrisisState::Resolved,
            action: Action::Acknowledge,
        }));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("resolved"));
        let status = Status::from(SentimentError::Corrupt("row 7: bad label".into()));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        let status = Status::from(SentimentError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(status.code(), Code::Unavailable);
    }
}
