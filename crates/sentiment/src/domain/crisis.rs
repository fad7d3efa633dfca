//! The crisis lifecycle and its response clock.
//!
//! detected → acknowledged → responding → resolved → reviewed. Acknowledging may be skipped (a team can
//! start responding at once) and so may responding (a false alarm is resolved straight away); nothing
//! goes back. The response clock starts at detection: at half time and again when it runs out, a
//! reminder goes out if the crisis is still only detected.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrisisState {
    Detected = 1,
    Acknowledged = 2,
    Responding = 3,
    Resolved = 4,
    Reviewed = 5,
}

impl CrisisState {
    /// The `socialops.alerts.v1.CrisisState` number.
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Detected),
            2 => Some(Self::Acknowledged),
            3 => Some(Self::Responding),
            4 => Some(Self::Resolved),
            5 => Some(Self::Reviewed),
            _ => None,
        }
    }

    /// Open crises collect new mentions; at most one per tenant and watchlist is open.
    pub fn is_open(self) -> bool {
        self <= Self::Responding
    }

    pub const OPEN: [CrisisState; 3] = [Self::Detected, Self::Acknowledged, Self::Responding];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detected => "detected",
            Self::Acknowledged => "acknowledged",
            Self::Responding => "responding",
            Self::Resolved => "resolved",
            Self::Reviewed => "reviewed",
        }
    }
}

/// A step a person takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Respond,
    Resolve,
    Review,
}

impl Action {
    pub fn target(self) -> CrisisState {
        match self {
            Self::Acknowledge => CrisisState::Acknowledged,
            Self::Respond => CrisisState::Responding,
            Self::Resolve => CrisisState::Resolved,
            Self::Review => CrisisState::Reviewed,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledged",
            Self::Respond => "responded to",
            Self::Resolve => "resolved",
            Self::Review => "reviewed",
        }
    }
}

/// Why an action cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError {
    pub from: CrisisState,
    pub action: Action,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the crisis is {} and cannot be {}",
            self.from.as_str(),
            self.action.verb()
        )?;
        match self.action {
            Action::Review => f.write_str(": resolve it first"),
            _ if self.from >= CrisisState::Resolved => f.write_str(": it is closed"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for TransitionError {}

/// The state after `action`, if the lifecycle allows it from `from`.
pub fn transition(from: CrisisState, action: Action) -> Result<CrisisState, TransitionError> {
    let allowed = match action {
        Action::Acknowledge => from == CrisisState::Detected,
        Action::Respond => matches!(from, CrisisState::Detected | CrisisState::Acknowledged),
        Action::Resolve => from.is_open(),
        Action::Review => from == CrisisState::Resolved,
    };
    if allowed {
        Ok(action.target())
    } else {
        Err(TransitionError { from, action })
    }
}

/// A reminder the clock owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminder {
    HalfTime,
    Breach,
}

/// The response clock of one crisis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseClock {
    pub detected_at_us: i64,
    pub respond_by_us: i64,
    pub half_time_reminded: bool,
    pub breached: bool,
}

impl ResponseClock {
    pub fn half_time_us(&self) -> i64 {
        self.detected_at_us + (self.respond_by_us - self.detected_at_us) / 2
    }

    /// The reminder due at `now_us` for a crisis in `state`: the breach when the time is up (a late sweep
    /// skips the half-time one), the half-time one from half time on. Nothing once someone acknowledged or
    /// responded.
    pub fn due(&self, state: CrisisState, now_us: i64) -> Option<Reminder> {
        if state != CrisisState::Detected {
            return None;
        }
        if !self.breached && now_us >= self.respond_by_us {
            Some(Reminder::Breach)
        } else if !self.half_time_reminded && !self.breached && now_us >= self.half_time_us() {
            Some(Reminder::HalfTime)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn the_full_lifecycle_runs_in_order() {
        let mut state = CrisisState::Detected;
        for action in [
            Action::Acknowledge,
            Action::Respond,
            Action::Resolve,
            Action::Review,
        ] {
            state = transition(state, action).unwrap();
        }
        assert_eq!(state, CrisisState::Reviewed);
    }

    #[test]
    fn acknowledging_and_responding_may_be_skipped() {
        assert_eq!(
            transition(CrisisState::Detected, Action::Respond),
            Ok(CrisisState::Responding)
        );
        assert_eq!(
            transition(CrisisState::Acknowledged, Action::Resolve),
            Ok(CrisisState::Resolved)
        );
        assert_eq!(
            transition(CrisisState::Detected, Action::Resolve),
            Ok(CrisisState::Resolved)
        );
    }

    #[test]
    fn nothing_goes_back_or_repeats() {
        let error = transition(CrisisState::Responding, Action::Acknowledge).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the crisis is responding and cannot be acknowledged"
        );
        let error = transition(CrisisState::Acknowledged, Action::Acknowledge).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the crisis is acknowledged and cannot be acknowledged"
        );
        let error = transition(CrisisState::Detected, Action::Review).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the crisis is detected and cannot be reviewed: resolve it first"
        );
        let error = transition(CrisisState::Resolved, Action::Respond).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the crisis is resolved and cannot be responded to: it is closed"
        );
        assert!(transition(CrisisState::Reviewed, Action::Review).is_err());
    }

    #[test]
    fn open_states_and_wire_codes() {
        assert!(CrisisState::OPEN.iter().all(|s| s.is_open()));
        assert!(!CrisisState::Resolved.is_open());
        use socialops_proto::alerts::v1::CrisisState as Wire;
        assert_eq!(CrisisState::Reviewed.code(), Wire::Reviewed as i32);
        assert_eq!(CrisisState::from_code(3), Some(CrisisState::Responding));
        assert_eq!(CrisisState::from_code(9), None);
    }

    #[test]
    fn reminders_at_half_time_and_breach_until_someone_acts() {
        let clock = ResponseClock {
            detected_at_us: 0,
            respond_by_us: 24 * HOUR,
            half_time_reminded: false,
            breached: false,
        };
        let detected = CrisisState::Detected;
        assert_eq!(clock.due(detected, 12 * HOUR - 1), None);
        assert_eq!(clock.due(detected, 12 * HOUR), Some(Reminder::HalfTime));
        let reminded = ResponseClock {
            half_time_reminded: true,
            ..clock
        };
        assert_eq!(reminded.due(detected, 23 * HOUR), None);
        assert_eq!(reminded.due(detected, 24 * HOUR), Some(Reminder::Breach));
        let breached = ResponseClock {
            breached: true,
            ..reminded
        };
        assert_eq!(breached.due(detected, 48 * HOUR), None);
        assert_eq!(
            clock.due(detected, 30 * HOUR),
            Some(Reminder::Breach),
            "a late sweep goes straight to the breach"
        );
        assert_eq!(clock.due(CrisisState::Acknowledged, 30 * HOUR), None);
        assert_eq!(clock.due(CrisisState::Responding, 13 * HOUR), None);
    }
}
