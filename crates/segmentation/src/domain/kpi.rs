//! Audience KPI arithmetic: calendar periods over tenant-local day numbers (days since 1970-01-01),
//! weekly cohort retention, and the progress and pace of a target.

use chrono::{Datelike, NaiveDate};

use super::DAY_US;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Quarter,
}

fn date(day: i64) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(day + 719_163).unwrap_or(719_163))
        .unwrap_or_default()
}

fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 719_163
}

/// The first day of the period containing `day`. Weeks start on Monday.
pub fn period_start(day: i64, period: Period) -> i64 {
    let d = date(day);
    match period {
        Period::Day => day,
        Period::Week => day - i64::from(d.weekday().num_days_from_monday()),
        Period::Month => day_number(d.with_day(1).unwrap_or(d)),
        Period::Quarter => {
            let month = (d.month0() / 3) * 3 + 1;
            day_number(NaiveDate::from_ymd_opt(d.year(), month, 1).unwrap_or(d))
        }
    }
}

/// The first day of the period after the one starting at `start`.
pub fn next_period_start(start: i64, period: Period) -> i64 {
    let d = date(start);
    let months = match period {
        Period::Day => return start + 1,
        Period::Week => return start + 7,
        Period::Month => 1,
        Period::Quarter => 3,
    };
    d.checked_add_months(chrono::Months::new(months))
        .map_or(start + 31, day_number)
}

/// `[start, end)` day ranges of the periods overlapping `[from_day, to_day)`, clipped to it.
pub fn periods(from_day: i64, to_day: i64, period: Period) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut start = period_start(from_day, period);
    while start < to_day {
        let end = next_period_start(start, period);
        out.push((start.max(from_day), end.min(to_day)));
        start = end;
    }
    out
}

/// Share of a cohort active in week 0, 1, … after the cohort's week started, up to `num_weeks`.
/// `members` holds each member's active days.
pub fn weekly_retention(week_start: i64, members: &[Vec<i64>], num_weeks: usize) -> Vec<f64> {
    if members.is_empty() {
        return vec![0.0; num_weeks];
    }
    (0..num_weeks)
        .map(|week| {
            let from = week_start + 7 * week as i64;
            let active = members
                .iter()
                .filter(|days| days.iter().any(|&d| d >= from && d < from + 7))
                .count();
            active as f64 / members.len() as f64
        })
        .collect()
}

/// How a target is going.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    pub progress: f64,
    /// Still needed per day to reach the target by its end; 0 once reached.
    pub required_per_day: f64,
    pub actual_per_day: f64,
    pub on_track: bool,
}

/// Progress towards `target` over `[start_us, end_us)` with `achieved` so far at `now_us`.
pub fn pace(target: u64, achieved: u64, start_us: i64, end_us: i64, now_us: i64) -> Pace {
    let days = |us: i64| us as f64 / DAY_US as f64;
    let elapsed = days(now_us.clamp(start_us, end_us) - start_us);
    let remaining = days(end_us - now_us.clamp(start_us, end_us));
    let total = days(end_us - start_us);
    let missing = target.saturating_sub(achieved) as f64;
    let actual_per_day = if elapsed > 0.0 {
        achieved as f64 / elapsed
    } else {
        0.0
    };
    let required_per_day = match (missing > 0.0, remaining > 0.0) {
        (false, _) => 0.0,
        (true, true) => missing / remaining,
        (true, false) => f64::INFINITY,
    };
    let progress = if target == 0 {
        1.0
    } else {
        achieved as f64 / target as f64
    };
    // On track: reached, or the pace so far carried to the end reaches it.
    let on_track = missing == 0.0 || (elapsed > 0.0 && actual_per_day * total >= target as f64);
    Pace {
        progress,
        required_per_day,
        actual_per_day,
        on_track,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day_of(y: i32, m: u32, d: u32) -> i64 {
        day_number(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    #[test]
    fn periods_follow_the_calendar() {
        // 2026-11-23 is a Monday.
        let monday = day_of(2026, 11, 23);
        assert_eq!(period_start(monday + 3, Period::Week), monday);
        assert_eq!(period_start(monday, Period::Month), day_of(2026, 11, 1));
        assert_eq!(period_start(monday, Period::Quarter), day_of(2026, 10, 1));
        assert_eq!(
            next_period_start(day_of(2026, 10, 1), Period::Quarter),
            day_of(2027, 1, 1)
        );
        let months = periods(day_of(2026, 10, 15), day_of(2026, 12, 10), Period::Month);
        assert_eq!(
            months,
            [
                (day_of(2026, 10, 15), day_of(2026, 11, 1)),
                (day_of(2026, 11, 1), day_of(2026, 12, 1)),
                (day_of(2026, 12, 1), day_of(2026, 12, 10)),
            ]
        );
        assert_eq!(periods(5, 8, Period::Day), [(5, 6), (6, 7), (7, 8)]);
    }

    #[test]
    fn retention_counts_members_active_each_week() {
        let members = vec![vec![0, 8], vec![1], vec![15], vec![]];
        assert_eq!(weekly_retention(0, &members, 3), [0.5, 0.25, 0.25]);
        assert_eq!(weekly_retention(0, &[], 2), [0.0, 0.0]);
    }

    #[test]
    fn pace_says_what_is_still_needed() {
        // 50,000 followers over 90 days; 30 days in, 10,000 so far.
        let p = pace(50_000, 10_000, 0, 90 * DAY_US, 30 * DAY_US);
        assert!((p.progress - 0.2).abs() < 1e-9);
        assert!((p.required_per_day - 40_000.0 / 60.0).abs() < 1e-6);
        assert!((p.actual_per_day - 10_000.0 / 30.0).abs() < 1e-6);
        assert!(!p.on_track);
        let done = pace(100, 120, 0, 10 * DAY_US, 5 * DAY_US);
        assert_eq!(done.required_per_day, 0.0);
        assert!(done.on_track);
    }
}
