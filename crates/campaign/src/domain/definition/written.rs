//! How a definition writes what serde has no single spelling for. Each reader quotes the value it
//! refuses, which is also what lets a refusal inside a step be traced to its field.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::super::pressure::clock_time;

/// `best_time = "12h"`, or `true` for a day and `false` for none.
pub mod best_time {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3_600);

    pub fn serialize<S: Serializer>(
        window: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        humantime_serde::option::serialize(window, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_any(BestTime)
    }

    struct BestTime;

    impl<'de> Visitor<'de> for BestTime {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration like \"12h\", or true for a day")
        }

        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            Ok(on.then_some(DAY))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            humantime::parse_duration(text)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
            inner.deserialize_any(self)
        }
    }
}

/// An RFC 3339 time with any offset, kept in UTC. Written back by chrono's own `Serialize`.
pub fn utc_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    text.parse::<DateTime<FixedOffset>>()
        .map(|at| Some(at.to_utc()))
        .map_err(|_| {
            de::Error::custom(format!(
                "{text:?} is not a time with its offset, like \"2026-12-01T09:00:00+08:00\""
            ))
        })
}

/// A local time of day, `"10:00"`, as the pressure rules write their quiet hours.
pub mod time_of_day {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct Clock(#[serde(with = "clock_time")] NaiveTime);

    pub fn serialize<S: Serializer>(
        time: &Option<NaiveTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        time.map(Clock).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveTime>, D::Error> {
        Ok(Option::<Clock>::deserialize(deserializer)?.map(|clock| clock.0))
    }
}
