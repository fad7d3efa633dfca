use std::fmt;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};

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

/// A transient failure of a whole batch (store or broker unavailable). Any error converts into it with
/// `?`; the batch is retried with backoff, never dead-lettered.
pub struct HandlerError(pub Box<dyn std::error::Error + Send + Sync>);

impl HandlerError {
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        Self(Box::new(e))
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

pub trait BatchHandler: Send + Sync + 'static {
    /// Called with a batch in partition order; every message in it has a payload (the consumer
    /// dead-letters empty ones itself). Returning Ok means the effect of every message not named in the
    /// returned dead letters is durable. Err is transient: the same batch is retried with exponential
    /// backoff and never dead-lettered, so the handler must be idempotent.
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
