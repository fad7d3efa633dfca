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
}
