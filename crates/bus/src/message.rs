use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Headers};

use crate::headers;

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub topic: String,
    /// Partitioning key; DESIGN.md keys most topics by `tenant:user` for per-user order.
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl OutgoingMessage {
    pub fn new(topic: impl Into<String>, key: Option<String>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            topic: topic.into(),
            key,
            payload: payload.into(),
            headers: Vec::new(),
        }
    }

    /// A protobuf message of type `M`, already encoded: `content-type` says protobuf and `schema` names
    /// the type (`socialops.events.v1.SocialEvent`).
    pub fn protobuf<M: prost::Name>(
        topic: impl Into<String>,
        key: Option<String>,
        encoded: impl Into<Vec<u8>>,
    ) -> Self {
        Self::new(topic, key, encoded)
            .header(headers::CONTENT_TYPE, headers::CONTENT_TYPE_PROTOBUF)
            .header(headers::SCHEMA, M::full_name())
    }

    /// [`protobuf`](Self::protobuf), encoding `message`.
    pub fn encode<M: prost::Message + prost::Name>(
        topic: impl Into<String>,
        key: Option<String>,
        message: &M,
    ) -> Self {
        Self::protobuf::<M>(topic, key, message.encode_to_vec())
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A message as consumed, owned so that handlers can keep it beyond the poll.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: Option<i64>,
}

impl ReceivedMessage {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        headers::find(&self.headers, name)
    }

    /// The first header called `name` when it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        headers::find_str(&self.headers, name)
    }

    pub(crate) fn from_borrowed(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_appends_headers_in_order() {
        let message = OutgoingMessage::new("t", Some("k".into()), b"p".to_vec())
            .header(headers::CONTENT_TYPE, headers::CONTENT_TYPE_JSON)
            .header(headers::SCHEMA, "socialops.events.v1.SocialEvent");
        assert_eq!(message.topic, "t");
        assert_eq!(
            message.headers[0],
            ("content-type".into(), b"application/json".to_vec())
        );
        assert_eq!(message.headers[1].0, "schema");
    }
}
