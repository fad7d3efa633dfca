//! Pure decisions about events: decoding raw messages, validating and canonicalising them. No I/O.

mod alias;
mod decode;
mod validate;

pub use alias::AliasHasher;
pub use decode::{DecodeError, Encoding, decode_raw};
pub use validate::{Limits, Rejection, Validator, scope_tenant, timestamp};

/// What happened to one event offered for ingestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Rejected(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected(_) => "rejected",
        }
    }
}

/// The Kafka key every canonical topic uses: per-user order within a tenant.
pub fn user_key(tenant_id: &str, user_id: &str) -> String {
    format!("{tenant_id}:{user_id}")
}
