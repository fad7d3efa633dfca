//! Calendar arithmetic on a user's local clock, correct across DST changes.

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime};
use chrono::{TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A half-open span of time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Span {
    pub fn contains(self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

pub(super) fn local(tz: Tz, at: DateTime<Utc>) -> NaiveDateTime {
    tz.from_utc_datetime(&at.naive_utc()).naive_local()
}

/// When the local clock first reads `local` at or after `not_before`. A time repeated when the
/// clocks go back happens at its first occurrence not before `not_before`; a time skipped when they
/// go forward "happens" at the jump, the first instant whose local time is later than it.
pub(super) fn instant(tz: Tz, local: NaiveDateTime, not_before: DateTime<Utc>) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => at.to_utc(),
        LocalResult::Ambiguous(first, second) => {
            let first = first.to_utc();
            if first >= not_before {
                first
            } else {
                second.to_utc()
            }
        }
        LocalResult::None => end_of_gap(tz, local),
    }
}

/// The first instant whose local time is at or after `local`, which lies in a DST gap. Local time
/// only moves forward within two days of a gap (no zone changes its clocks twice in that span),
/// so a bisection over those two days finds the jump to the second.
pub(crate) fn end_of_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    const TWO_DAYS_S: i64 = 2 * 86_400;
    let local_at = |s: i64| {
        DateTime::from_timestamp(s, 0).map(|at| tz.from_utc_datetime(&at.naive_utc()).naive_local())
    };
    let guess = local.and_utc().timestamp();
    let (mut before, mut after) = (guess - TWO_DAYS_S, guess + TWO_DAYS_S);
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if local_at(mid).is_none_or(|at| at >= local) {
            after = mid;
        } else {
            before = mid;
        }
    }
    DateTime::from_timestamp(after, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn midnight(tz: Tz, date: Option<NaiveDate>) -> DateTime<Utc> {
    match date {
        Some(date) => instant(tz, date.and_time(NaiveTime::MIN), DateTime::<Utc>::MIN_UTC),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// The local calendar day `date`, from its first midnight to the next day's.
pub(super) fn day(tz: Tz, date: NaiveDate) -> Span {
    Span {
        start: midnight(tz, Some(date)),
        end: midnight(tz, date.succ_opt()),
    }
}

/// The ISO week (Monday to Sunday) holding the local date `date`.
pub(super) fn iso_week(tz: Tz, date: NaiveDate) -> Span {
    let monday = date.checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())));
    Span {
        start: midnight(tz, monday),
        end: midnight(tz, monday.and_then(|m| m.checked_add_days(Days::new(7)))),
    }
}

/// The first instant at or after `at` whose local hour is `hour` (0–23): `at` itself when the
/// clock already reads that hour, else the coming `hour`:00.
pub(super) fn next_hour(tz: Tz, at: DateTime<Utc>, hour: u32) -> DateTime<Utc> {
    let now = local(tz, at);
    if now.hour() == hour {
        return at;
    }
    let date = if now.hour() < hour {
        Some(now.date())
    } else {
        now.date().succ_opt()
    };
    match (date, NaiveTime::from_hms_opt(hour, 0, 0)) {
        (Some(date), Some(time)) => instant(tz, date.and_time(time), at),
        _ => at,
    }
}

/// Whether the time of day falls in the daily window `[start, end)`, which runs across midnight
/// when `start` is after `end` and is empty when they are equal.
pub(super) fn in_window(start: NaiveTime, end: NaiveTime, time: NaiveTime) -> bool {
    match start.cmp(&end) {
        Ordering::Less => start <= time && time < end,
        Ordering::Greater => time >= start || time < end,
        Ordering::Equal => false,
    }
}

/// When the daily quiet window `[start, end)` holding `at` ends, or `None` when `at` is outside
/// it.
pub(super) fn quiet_end(
    tz: Tz,
    start: NaiveTime,
    end: NaiveTime,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let now = local(tz, at);
    let time = now.time();
    if !in_window(start, end, time) {
        return None;
    }
    let end_date = if start > end && time >= start {
        now.date().succ_opt()?
    } else {
        now.date()
    };
    Some(instant(tz, end_date.and_time(end), at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_YORK: Tz = chrono_tz::America::New_York;
    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn instant_in_a_gap_is_the_jump_and_a_repeat_is_the_first_not_before() {
        // 2025-03-09 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let gap = date("2025-03-09").and_time(hm(2, 30));
        assert_eq!(
            instant(NEW_YORK, gap, DateTime::<Utc>::MIN_UTC),
            utc("2025-03-09T07:00:00Z")
        );
        // 2025-11-02 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
        let repeat = date("2025-11-02").and_time(hm(1, 30));
        assert_eq!(
            instant(NEW_YORK, repeat, DateTime::<Utc>::MIN_UTC),
            utc("2025-11-02T05:30:00Z")
        );
        assert_eq!(
            instant(NEW_YORK, repeat, utc("2025-11-02T06:00:00Z")),
            utc("2025-11-02T06:30:00Z")
        );
    }

    #[test]
    fn days_and_weeks_follow_the_local_calendar() {
        let today = day(SHANGHAI, date("2025-06-11"));
        assert_eq!(today.start, utc("2025-06-10T16:00:00Z"));
        assert_eq!(today.end, utc("2025-06-11T16:00:00Z"));
        // 2025-06-11 is a Wednesday; its ISO week runs Monday 9th to Sunday 15th.
        let week = iso_week(SHANGHAI, date("2025-06-11"));
        assert_eq!(week.start, utc("2025-06-08T16:00:00Z"));
        assert_eq!(week.end, utc("2025-06-15T16:00:00Z"));
        assert_eq!(iso_week(SHANGHAI, date("2025-06-15")), week);
        assert_eq!(iso_week(SHANGHAI, date("2025-06-09")), week);
        // The day the clocks go forward is 23 hours long.
        let short = day(NEW_YORK, date("2025-03-09"));
        assert_eq!((short.end - short.start).num_hours(), 23);
    }

    #[test]
    fn next_hour_is_today_tomorrow_or_now() {
        let at = utc("2025-06-11T01:15:00Z"); // 09:15 in Shanghai
        assert_eq!(next_hour(SHANGHAI, at, 9), at);
        assert_eq!(next_hour(SHANGHAI, at, 20), utc("2025-06-11T12:00:00Z"));
        assert_eq!(next_hour(SHANGHAI, at, 8), utc("2025-06-12T00:00:00Z"));
    }

    #[test]
    fn quiet_window_across_midnight() {
        let (start, end) = (hm(22, 0), hm(8, 0));
        // 23:30 Shanghai: quiet until 08:00 the next local day.
        assert_eq!(
            quiet_end(SHANGHAI, start, end, utc("2025-06-11T15:30:00Z")),
            Some(utc("2025-06-12T00:00:00Z"))
        );
        // 03:00 Shanghai: quiet until 08:00 the same local day.
        assert_eq!(
            quiet_end(SHANGHAI, start, end, utc("2025-06-11T19:00:00Z")),
            Some(utc("2025-06-12T00:00:00Z"))
        );
        // 08:00 sharp and 21:59 are outside.
        assert_eq!(
            quiet_end(SHANGHAI, start, end, utc("2025-06-12T00:00:00Z")),
            None
        );
        assert_eq!(
            quiet_end(SHANGHAI, start, end, utc("2025-06-12T13:59:00Z")),
            None
        );
        assert_eq!(
            quiet_end(SHANGHAI, hm(8, 0), hm(8, 0), utc("2025-06-12T00:00:00Z")),
            None
        );
    }

    #[test]
    fn quiet_window_within_a_day() {
        let (start, end) = (hm(12, 0), hm(14, 0));
        assert_eq!(
            quiet_end(SHANGHAI, start, end, utc("2025-06-11T04:30:00Z")),
            Some(utc("2025-06-11T06:00:00Z"))
        );
        assert_eq!(
            quiet_end(SHANGHAI, start, end, utc("2025-06-11T06:00:00Z")),
            None
        );
    }

    #[test]
    fn quiet_window_ending_in_a_gap_or_a_repeat() {
        // Quiet 00:00–02:30 on the night the clocks skip 02:00–03:00: it ends at the jump.
        assert_eq!(
            quiet_end(NEW_YORK, hm(0, 0), hm(2, 30), utc("2025-03-09T06:30:00Z")),
            Some(utc("2025-03-09T07:00:00Z"))
        );
        // Quiet 23:00–01:45 on the night 01:00–02:00 happens twice: from the first 01:30 it
        // ends at the first 01:45, from the second 01:30 at the second.
        let (start, end) = (hm(23, 0), hm(1, 45));
        assert_eq!(
            quiet_end(NEW_YORK, start, end, utc("2025-11-02T05:30:00Z")),
            Some(utc("2025-11-02T05:45:00Z"))
        );
        assert_eq!(
            quiet_end(NEW_YORK, start, end, utc("2025-11-02T06:30:00Z")),
            Some(utc("2025-11-02T06:45:00Z"))
        );
    }
}
