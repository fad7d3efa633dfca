use std::fmt::Display;

use tonic::{Code, Status};

/// The status a client gets for a service error that maps to `code`. The error's own text goes back
/// for codes the client can act on; for `UNAVAILABLE` and `INTERNAL` it is logged instead and the
/// client gets a fixed message, because database and broker text can carry hostnames, SQL and data.
pub fn client_status(code: Code, error: &dyn Display) -> Status {
    match code {
        Code::Unavailable => {
            tracing::error!(error = %error, "request failed");
            Status::new(code, "temporarily unavailable, retry with backoff")
        }
        Code::Internal => {
            tracing::error!(error = %error, "request failed");
            Status::new(code, "internal error")
        }
        _ => Status::new(code, error.to_string()),
    }
}

/// The code for a database error: the store refusing the request's data (a violated constraint,
/// an invalid value) is the client's to fix, `FAILED_PRECONDITION` (`ALREADY_EXISTS` for a unique
/// key); anything else is `UNAVAILABLE`.
pub fn database_code(error: &sqlx::Error) -> Code {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Code::AlreadyExists,
        _ if socialops_storage::failure::is_permanent(error) => Code::FailedPrecondition,
        _ => Code::Unavailable,
    }
}

/// The status for a database error, without the database's text (it can carry SQL and data).
pub fn database_status(error: &sqlx::Error) -> Status {
    let code = database_code(error);
    if code == Code::Unavailable {
        return client_status(code, error);
    }
    tracing::warn!(error = %error, "request refused by the store");
    Status::new(
        code,
        "the store refused the request's data (a constraint or an invalid value)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_text_stays_in_the_log() {
        let secret = "connection to db.internal:5432 failed for user app";
        for code in [Code::Unavailable, Code::Internal] {
            let status = client_status(code, &secret);
            assert_eq!(status.code(), code);
            assert!(!status.message().contains("db.internal"), "{status:?}");
        }
        let status = client_status(Code::InvalidArgument, &"event_id: required");
        assert_eq!(status.message(), "event_id: required");
    }

    #[test]
    fn a_lost_database_is_unavailable() {
        let status = database_status(&sqlx::Error::PoolTimedOut);
        assert_eq!(status.code(), Code::Unavailable);
    }
}
