#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    #[error("{0}")]
    PermissionDenied(String),
    #[error("invalid auth configuration: {0}")]
    InvalidConfig(String),
}

impl AuthError {
    pub fn code(&self) -> tonic::Code {
        match self {
            AuthError::Unauthenticated => tonic::Code::Unauthenticated,
            AuthError::PermissionDenied(_) => tonic::Code::PermissionDenied,
            AuthError::InvalidConfig(_) => tonic::Code::Internal,
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        match error {
            // Configuration problems are the operator's, not the caller's: log them, do not return them.
            AuthError::InvalidConfig(_) => {
                tracing::error!(%error, "auth misconfigured");
                tonic::Status::internal("internal error")
            }
            other => tonic::Status::new(other.code(), other.to_string()),
        }
    }
}
