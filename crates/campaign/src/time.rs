//! Microseconds since the Unix epoch, as the store keeps time, to and from chrono.

use chrono::{DateTime, Utc};

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(if us < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}
