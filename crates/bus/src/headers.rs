//! Header names every socialops message may carry, and the compact encoding the outbox stores them in.

use crate::message::ReceivedMessage;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
pub const CONTENT_TYPE: &str = "content-type";
pub const SCHEMA: &str = "schema";
pub const DLQ_REASON: &str = "dlq-reason";
pub const DLQ_SOURCE_TOPIC: &str = "dlq-source-topic";
pub const DLQ_PARTITION: &str = "dlq-partition";
pub const DLQ_OFFSET: &str = "dlq-offset";
pub const DLQ_TENANT: &str = "dlq-tenant";

pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// The headers the consumer adds when it dead-letters a message; replay strips them again.
pub fn is_dead_letter_header(name: &str) -> bool {
    name.starts_with("dlq-")
}

/// The first header called `name`, if any.
pub fn find<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_slice())
}

/// The first header called `name` when it is valid UTF-8.
pub fn find_str<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    find(headers, name).and_then(|value| std::str::from_utf8(value).ok())
}

/// The headers of a dead letter: the original ones, minus those of an earlier dead-lettering, plus
/// why, where from and whose.
pub(crate) fn for_dead_letter(
    message: &ReceivedMessage,
    reason: &str,
    tenant: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    let mut out = without_dead_letter_headers(&message.headers);
    out.push((DLQ_REASON.into(), reason.as_bytes().to_vec()));
    out.push((DLQ_SOURCE_TOPIC.into(), message.topic.as_bytes().to_vec()));
    out.push((
        DLQ_PARTITION.into(),
        message.partition.to_string().into_bytes(),
    ));
    out.push((DLQ_OFFSET.into(), message.offset.to_string().into_bytes()));
    if let Some(tenant) = tenant {
        out.push((DLQ_TENANT.into(), tenant.as_bytes().to_vec()));
    }
    out
}

/// The headers with every `dlq-*` one removed.
pub(crate) fn without_dead_letter_headers(headers: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(k, _)| !is_dead_letter_header(k))
        .cloned()
        .collect()
}

/// Version byte in front of the outbox `headers` column, so the layout can change without guessing.
const ENCODING_V1: u8 = 1;

/// `[1][count u32 BE] then per header [name len u32 BE][name][value len u32 BE][value]`. Kafka header
/// order and duplicates are kept, which a JSON object would not do.
pub(crate) fn encode(headers: &[(String, Vec<u8>)]) -> Vec<u8> {
    let size: usize = headers.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(5 + size);
    out.push(ENCODING_V1);
    out.extend_from_slice(&len_u32(headers.len()).to_be_bytes());
    for (name, value) in headers {
        out.extend_from_slice(&len_u32(name.len()).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&len_u32(value.len()).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn len_u32(len: usize) -> u32 {
    // Kafka caps a whole record far below 4 GiB, so a longer header cannot reach this point.
    u32::try_from(len).expect("header longer than 4 GiB")
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut reader = Reader { bytes };
    match reader.take(1)? {
        [ENCODING_V1] => {}
        [other] => return Err(format!("unknown header encoding version {other}")),
        _ => unreachable!("take(1) returns one byte"),
    }
    let count = reader.u32()?;
    let mut headers = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let name_len = reader.u32()? as usize;
        let name = std::str::from_utf8(reader.take(name_len)?)
            .map_err(|_| "header name is not utf-8".to_owned())?
            .to_owned();
        let value_len = reader.u32()? as usize;
        headers.push((name, reader.take(value_len)?.to_vec()));
    }
    if !reader.bytes.is_empty() {
        return Err(format!(
            "{} trailing bytes after headers",
            reader.bytes.len()
        ));
    }
    Ok(headers)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!(
                "headers truncated: wanted {n} bytes, {} left",
                self.bytes.len()
            ));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(String, Vec<u8>)> {
        vec![
            (
                TRACEPARENT.into(),
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec(),
            ),
            (
                CONTENT_TYPE.into(),
                CONTENT_TYPE_PROTOBUF.as_bytes().to_vec(),
            ),
            ("empty".into(), Vec::new()),
            ("binary".into(), vec![0, 255, 1, 254]),
            ("empty".into(), b"duplicate names are kept".to_vec()),
        ]
    }

    #[test]
    fn encoding_round_trips_order_duplicates_and_binary_values() {
        let headers = sample();
        assert_eq!(decode(&encode(&headers)).unwrap(), headers);
        assert_eq!(decode(&encode(&[])).unwrap(), Vec::new());
    }

    #[test]
    fn decoding_rejects_truncated_trailing_and_unknown_versions() {
        let bytes = encode(&sample());
        for cut in [0, 1, 4, 9, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} must fail");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).unwrap_err().contains("trailing"));
        let mut version = bytes;
        version[0] = 2;
        assert!(decode(&version).unwrap_err().contains("version"));
    }

    #[test]
    fn lookups_find_the_first_match() {
        let headers = sample();
        assert_eq!(find(&headers, "empty"), Some(&b""[..]));
        assert_eq!(
            find_str(&headers, CONTENT_TYPE),
            Some(CONTENT_TYPE_PROTOBUF)
        );
        assert_eq!(find_str(&headers, "binary"), None);
        assert_eq!(find(&headers, "missing"), None);
    }

    #[test]
    fn dead_letter_headers_keep_originals_and_replace_old_dlq_headers() {
        let got = for_dead_letter(&message("src", 2, 41), "bad json", Some("brand-1"));
        let get = |name| find_str(&got, name);
        assert_eq!(get("traceparent"), Some("tp"));
        assert_eq!(get(DLQ_REASON), Some("bad json"));
        assert_eq!(got.iter().filter(|(k, _)| k == DLQ_REASON).count(), 1);
        assert_eq!(get(DLQ_SOURCE_TOPIC), Some("src"));
        assert_eq!(get(DLQ_PARTITION), Some("2"));
        assert_eq!(get(DLQ_OFFSET), Some("41"));
        assert_eq!(get(DLQ_TENANT), Some("brand-1"));
        let untenanted = for_dead_letter(&message("src", 0, 0), "x", None);
        assert_eq!(find(&untenanted, DLQ_TENANT), None);
    }

    fn message(topic: &str, partition: i32, offset: i64) -> ReceivedMessage {
        ReceivedMessage {
            topic: topic.into(),
            partition,
            offset,
            key: None,
            payload: Some(b"p".to_vec()),
            headers: vec![
                (TRACEPARENT.into(), b"tp".to_vec()),
                (DLQ_REASON.into(), b"older reason".to_vec()),
            ],
            timestamp_ms: None,
        }
    }

    #[test]
    fn dead_letter_headers_are_recognised() {
        for name in [
            DLQ_REASON,
            DLQ_SOURCE_TOPIC,
            DLQ_PARTITION,
            DLQ_OFFSET,
            DLQ_TENANT,
        ] {
            assert!(is_dead_letter_header(name));
        }
        assert!(!is_dead_letter_header(TRACEPARENT));
        assert!(!is_dead_letter_header(SCHEMA));
    }
}
