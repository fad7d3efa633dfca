//! How bad a crisis is. Four signals each earn 0 to 3 points against three rising thresholds, and the
//! sum picks the level:
//!
//! | signal | 1 point | 2 points | 3 points |
//! |---|---:|---:|---:|
//! | volume: the window's negatives ÷ the spike threshold | 1.5 | 3 | 6 |
//! | negative share of the window's mentions | 0.6 | 0.8 | 0.95 |
//! | total reach of the crisis's mentions | 10,000 | 100,000 | 1,000,000 |
//! | velocity: negative mentions per hour in the window | 30 | 100 | 300 |
//!
//! 0–3 points is low, 4–5 medium, 6–7 high, 8 or more critical. A crisis's severity only rises while it
//! is open: the level is recomputed as mentions arrive and kept when it is higher.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

impl Severity {
    /// The `socialops.alerts.v1.Severity` number.
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Low),
            2 => Some(Self::Medium),
            3 => Some(Self::High),
            4 => Some(Self::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// What severity is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signals {
    pub volume_ratio: f64,
    pub negative_share: f64,
    pub total_reach: u64,
    pub negatives_per_hour: f64,
}

/// The thresholds of the table above; each list rises.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeverityRules {
    pub volume_ratio: [f64; 3],
    pub negative_share: [f64; 3],
    pub total_reach: [u64; 3],
    pub negatives_per_hour: [f64; 3],
    /// Points needed for medium, high and critical.
    pub levels: [u32; 3],
}

impl Default for SeverityRules {
    fn default() -> Self {
        Self {
            volume_ratio: [1.5, 3.0, 6.0],
            negative_share: [0.6, 0.8, 0.95],
            total_reach: [10_000, 100_000, 1_000_000],
            negatives_per_hour: [30.0, 100.0, 300.0],
            levels: [4, 6, 8],
        }
    }
}

fn rising<T: PartialOrd>(values: &[T; 3]) -> bool {
    values[0] <= values[1] && values[1] <= values[2]
}

fn points<T: PartialOrd>(value: T, thresholds: &[T; 3]) -> u32 {
    thresholds.iter().filter(|t| value >= **t).count() as u32
}

impl SeverityRules {
    pub fn validate(&self) -> Result<(), String> {
        if !(rising(&self.volume_ratio)
            && rising(&self.negative_share)
            && rising(&self.total_reach)
            && rising(&self.negatives_per_hour)
            && rising(&self.levels))
        {
            return Err("severity thresholds must rise within each list".into());
        }
        Ok(())
    }

    pub fn points(&self, signals: &Signals) -> u32 {
        points(signals.volume_ratio, &self.volume_ratio)
            + points(signals.negative_share, &self.negative_share)
            + points(signals.total_reach, &self.total_reach)
            + points(signals.negatives_per_hour, &self.negatives_per_hour)
    }

    pub fn assess(&self, signals: &Signals) -> Severity {
        match points(self.points(signals), &self.levels) {
            0 => Severity::Low,
            1 => Severity::Medium,
            2 => Severity::High,
            _ => Severity::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(volume_ratio: f64, share: f64, reach: u64, per_hour: f64) -> Signals {
        Signals {
            volume_ratio,
            negative_share: share,
            total_reach: reach,
            negatives_per_hour: per_hour,
        }
    }

    #[test]
    fn a_small_all_negative_burst_is_low() {
        let rules = SeverityRules::default();
        // 12 negatives in 30 minutes over a threshold of 10, 100 followers each.
        let s = signals(1.2, 1.0, 1_200, 24.0);
        assert_eq!(rules.points(&s), 3);
        assert_eq!(rules.assess(&s), Severity::Low);
    }

    #[test]
    fn growth_in_volume_velocity_and_reach_escalates() {
        let rules = SeverityRules::default();
        assert_eq!(
            rules.assess(&signals(2.0, 1.0, 2_000, 40.0)),
            Severity::Medium
        );
        assert_eq!(
            rules.assess(&signals(3.5, 1.0, 3_500, 70.0)),
            Severity::High
        );
        assert_eq!(
            rules.assess(&signals(3.5, 1.0, 250_000, 70.0)),
            Severity::Critical
        );
    }

    #[test]
    fn a_mixed_wave_with_little_reach_stays_low() {
        let rules = SeverityRules::default();
        assert_eq!(rules.assess(&signals(1.1, 0.5, 500, 22.0)), Severity::Low);
    }

    #[test]
    fn thresholds_must_rise() {
        assert!(SeverityRules::default().validate().is_ok());
        let bad = SeverityRules {
            total_reach: [10, 5, 20],
            ..SeverityRules::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn codes_match_the_wire_enum() {
        use socialops_proto::alerts::v1::Severity as Wire;
        assert_eq!(Severity::Low.code(), Wire::Low as i32);
        assert_eq!(Severity::Critical.code(), Wire::Critical as i32);
        for s in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            assert_eq!(Severity::from_code(i64::from(s.code())), Some(s));
        }
        assert!(Severity::Low < Severity::Critical);
    }
}
