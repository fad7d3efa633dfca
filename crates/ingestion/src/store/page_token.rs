use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::IngestionError;

/// Where the next page of a listing starts: just after this (occurred_at, event_id). Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub occurred_at_us: i64,
    pub event_id: String,
}

impl PageToken {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.occurred_at_us, self.event_id))
    }

    pub fn decode(token: &str) -> Result<Self, IngestionError> {
        let invalid = || {
            IngestionError::InvalidArgument("page_token: not a token this service issued".into())
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (at, event_id) = text.split_once(':').ok_or_else(invalid)?;
        Ok(Self {
            occurred_at_us: at.parse().map_err(|_| invalid())?,
            event_id: event_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let token = PageToken {
            occurred_at_us: 1_700_000_000_000_000,
            event_id: "e:1".into(),
        };
        assert_eq!(PageToken::decode(&token.encode()).unwrap(), token);
        assert!(PageToken::decode("!!").is_err());
        assert!(PageToken::decode(&URL_SAFE_NO_PAD.encode("x:y")).is_err());
    }
}
