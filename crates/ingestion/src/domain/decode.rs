use prost::Message;
use socialops_proto::events::v1::SocialEvent;

/// How a raw message's bytes are encoded, from its `content-type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    /// `None` means the header is absent: the payload is sniffed. An unknown type is an error.
    pub fn from_content_type(content_type: Option<&[u8]>) -> Result<Option<Self>, DecodeError> {
        let Some(raw) = content_type else {
            return Ok(None);
        };
        let value = String::from_utf8_lossy(raw);
        let essence = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Ok(Some(Self::Json)),
            "application/x-protobuf"
            | "application/protobuf"
            | "application/vnd.google.protobuf" => Ok(Some(Self::Protobuf)),
            _ => Err(DecodeError::UnsupportedContentType(value.into_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unsupported content-type `{0}`: use application/json or application/x-protobuf")]
    UnsupportedContentType(String),
    #[error("empty payload")]
    Empty,
    #[error("invalid JSON event: {0}")]
    Json(String),
    #[error("invalid protobuf event: {0}")]
    Protobuf(String),
}

/// Decodes one raw message. Without a content type, a payload whose first non-blank byte is `{` is
/// taken for JSON and anything else for protobuf.
pub fn decode_raw(payload: &[u8], content_type: Option<&[u8]>) -> Result<SocialEvent, DecodeError> {
    if payload.is_empty() {
        return Err(DecodeError::Empty);
    }
    let encoding = Encoding::from_content_type(content_type)?.unwrap_or_else(|| {
        match payload.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Encoding::Json,
            _ => Encoding::Protobuf,
        }
    });
    match encoding {
        Encoding::Json => {
            serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))
        }
        Encoding::Protobuf => {
            SocialEvent::decode(payload).map_err(|e| DecodeError::Protobuf(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_decoder_by_header_then_by_sniffing() {
        let event = SocialEvent {
            event_id: "e1".into(),
            ..Default::default()
        };
        let proto = event.encode_to_vec();
        let json = br#"{"event_id":"e1"}"#;
        assert_eq!(
            decode_raw(&proto, Some(b"application/x-protobuf")).unwrap(),
            event
        );
        assert_eq!(
            decode_raw(json, Some(b"application/json; charset=utf-8")).unwrap(),
            event
        );
        assert_eq!(decode_raw(json, None).unwrap(), event);
        assert_eq!(decode_raw(&proto, None).unwrap(), event);
    }

    #[test]
    fn garbage_gets_a_reason() {
        assert_eq!(decode_raw(b"", None), Err(DecodeError::Empty));
        assert!(matches!(
            decode_raw(b"{not json", None),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            decode_raw(b"\xff\xff\xff", None),
            Err(DecodeError::Protobuf(_))
        ));
        assert!(matches!(
            decode_raw(b"{}", Some(b"text/csv")),
            Err(DecodeError::UnsupportedContentType(t)) if t == "text/csv"
        ));
    }
}
