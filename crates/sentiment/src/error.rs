use crate::domain::crisis::TransitionError;

socialops_service::service_error! {
    /// Everything that can go wrong in the sentiment service. `SentimentError::code` is the one place
    /// that decides what a gRPC client sees.
    pub enum SentimentError {
        /// A live stream fell this many alerts behind and cannot catch up.
        #[error("the alert stream fell {0} alerts behind; reconnect")]
        Lagged(u64) => tonic::Code::ResourceExhausted,
        /// A lifecycle step the crisis's state does not allow.
        #[error("{0}")]
        Transition(#[from] TransitionError) => tonic::Code::FailedPrecondition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crisis::{Action, CrisisState};
    use tonic::{Code, Status};

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
