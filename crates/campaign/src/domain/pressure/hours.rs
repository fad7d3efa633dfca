//! A user's activity by local hour of day, from which best-time sending picks the hour.

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::local_time::local;

/// How many of the user's events fell in each local hour, 0–23.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourHistogram(pub [u32; 24]);

impl HourHistogram {
    /// Counts one event at `at`, by the hour the user's clock read then.
    pub fn record(&mut self, at: DateTime<Utc>, tz: Tz) {
        let hour = local(tz, at).hour() as usize;
        self.0[hour] = self.0[hour].saturating_add(1);
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }

    /// The most active hour; of equally active hours the earliest. `None` with no activity.
    pub fn peak_hour(&self) -> Option<u8> {
        self.peak_hour_among(|_| true)
    }

    /// The most active of the hours `allowed` lets through, as `peak_hour`.
    pub fn peak_hour_among(&self, allowed: impl Fn(u8) -> bool) -> Option<u8> {
        let mut peak: Option<(u8, u32)> = None;
        for (hour, &count) in (0u8..).zip(&self.0) {
            if count > 0 && allowed(hour) && peak.is_none_or(|(_, most)| count > most) {
                peak = Some((hour, count));
            }
        }
        peak.map(|(hour, _)| hour)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_local_hour() {
        let mut hours = HourHistogram::default();
        assert_eq!(hours.peak_hour(), None);
        let at: DateTime<Utc> = "2025-06-11T12:30:00Z".parse().unwrap();
        hours.record(at, chrono_tz::Asia::Shanghai);
        hours.record(at, chrono_tz::Asia::Shanghai);
        hours.record(at, chrono_tz::UTC);
        assert_eq!(hours.0[20], 2);
        assert_eq!(hours.0[12], 1);
        assert_eq!(hours.total(), 3);
        assert_eq!(hours.peak_hour(), Some(20));
    }

    #[test]
    fn ties_go_to_the_earliest_hour() {
        let mut hours = HourHistogram::default();
        hours.0[21] = 5;
        hours.0[9] = 5;
        hours.0[3] = 1;
        assert_eq!(hours.peak_hour(), Some(9));
        assert_eq!(hours.peak_hour_among(|h| h != 9), Some(21));
        assert_eq!(hours.peak_hour_among(|h| h < 9), Some(3));
        assert_eq!(hours.peak_hour_among(|h| h < 3), None);
    }

    #[test]
    fn stored_as_a_plain_array() {
        let mut hours = HourHistogram::default();
        hours.0[1] = 7;
        let json = serde_json::to_string(&hours).unwrap();
        assert!(json.starts_with("[0,7,0"));
        assert_eq!(serde_json::from_str::<HourHistogram>(&json).unwrap(), hours);
    }
}
