use std::fmt;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};

use socialops_storage::failure::{self, Failure};

use crate::message::ReceivedMessage;

/// A message of the batch that can never be processed; it goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Position in the batch passed to [`BatchHandler::handle`].
    pub index: usize,
    pub reason: String,
    pub tenant: Option<String>,
}

impl DeadLetter {
    pub fn new(index: usize, reason: impl Into<String>, tenant: Option<String>) -> Self {
        Self {
            index,
            reason: reason.into(),
            tenant,
        }
    }
}

/// A failure of a whole batch. Any error converts into it with `?` and is classified on the way: a
/// database refusal of the data itself (see [`socialops_storage::failure`]) or a payload that does
/// not decode is permanent, anything else transient. A transient failure is retried with backoff and
/// never dead-lettered; a permanent one makes the consumer isolate the message that causes it.
pub struct HandlerError {
    failure: Failure,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl HandlerError {
    /// A transient failure with a message of its own.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::transient(message.into())
    }

    pub fn transient(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            failure: Failure::Transient,
            source: error.into(),
        }
    }

    /// A failure that the same input always meets again (invalid data, an unknown reference).
    pub fn permanent(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            failure: Failure::Permanent,
            source: error.into(),
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.failure == Failure::Permanent
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        Self {
            failure: classify(&e),
            source: Box::new(e),
        }
    }
}

/// Walks the error's source chain for a database error or a decode error.
fn classify(error: &(dyn std::error::Error + 'static)) -> Failure {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(db) = e.downcast_ref::<sqlx::Error>() {
            return failure::classify(db);
        }
        if e.is::<prost::DecodeError>() || e.is::<serde_json::Error>() {
            return Failure::Permanent;
        }
        next = e.source();
    }
    Failure::Transient
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("failure", &self.failure)
            .field("source", &self.source)
            .finish()
    }
}

pub trait BatchHandler: Send + Sync + 'static {
    /// Called with a batch in partition order; every message in it has a payload (the consumer
    /// dead-letters empty ones itself). Returning Ok means the effect of every message not named in the
    /// returned dead letters is durable. A transient Err retries the same batch with exponential backoff
    /// and jitter, never dead-lettering it; a permanent Err makes the consumer split the batch until
    /// the failing message stands alone and dead-letter it with the error as its reason. Either way
    /// messages are handled again, so the handler must be idempotent.
    fn handle(
        &self,
        batch: &[ReceivedMessage],
    ) -> impl Future<Output = Result<Vec<DeadLetter>, HandlerError>> + Send;
}

/// The lane, of `lanes`, that a handler splitting its batch into concurrent transactions gives the
/// user's messages: always the same one for the same user, so that a user's messages stay in one
/// transaction and in order.
pub fn lane_of(tenant_id: &str, user_id: &str, lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    let mut hasher = DefaultHasher::new();
    (tenant_id, user_id).hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}
