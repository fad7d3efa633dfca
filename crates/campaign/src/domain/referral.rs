//! Referral programmes: what a programme sets, the fraud checks a referral must pass, when an
//! inviter earns a reward and when a refund reverses a credit.

const MAX_ID: usize = 64;
const DEFAULT_REWARD_EVERY: u32 = 3;
const DEFAULT_REVERSAL_WINDOW_US: i64 = 14 * 24 * 3_600 * 1_000_000;
const DEFAULT_BURST_LIMIT: u32 = 10;
const DEFAULT_BURST_WINDOW_US: i64 = 3_600 * 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammeSpec {
    pub programme_id: String,
    pub name: String,
    pub reward_pool_id: String,
    /// Empty: invitees get nothing.
    pub invitee_pool_id: String,
    pub reward_every: u32,
    pub reversal_window_us: i64,
    pub burst_limit: u32,
    pub burst_window_us: i64,
}

impl ProgrammeSpec {
    /// The spec with zeros replaced by the defaults: a reward every 3 converted invitees, a 14-day
    /// reversal window, at most 10 invitees an hour from one inviter.
    pub fn with_defaults(mut self) -> Self {
        if self.reward_every == 0 {
            self.reward_every = DEFAULT_REWARD_EVERY;
        }
        if self.reversal_window_us == 0 {
            self.reversal_window_us = DEFAULT_REVERSAL_WINDOW_US;
        }
        if self.burst_limit == 0 {
            self.burst_limit = DEFAULT_BURST_LIMIT;
        }
        if self.burst_window_us == 0 {
            self.burst_window_us = DEFAULT_BURST_WINDOW_US;
        }
        self
    }

    pub fn validate(&self) -> Result<(), String> {
        let id_ok = |id: &str| {
            !id.is_empty()
                && id.len() <= MAX_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        let mut problems = Vec::new();
        if !id_ok(&self.programme_id) {
            problems.push(format!("id: 1 to {MAX_ID} of A-Z a-z 0-9 _ -"));
        }
        if !id_ok(&self.reward_pool_id) {
            problems.push("reward_pool_id: required, a coupon pool id".to_owned());
        }
        if !self.invitee_pool_id.is_empty() && !id_ok(&self.invitee_pool_id) {
            problems.push("invitee_pool_id: a coupon pool id".to_owned());
        }
        if self.reversal_window_us < 0 || self.burst_window_us < 0 {
            problems.push("reversal_window_seconds, burst_window_seconds: too large".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("referral programme: {}", problems.join("; ")))
        }
    }
}

/// A fraud check that refused a referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    SelfReferral,
    /// The alias kind the two share (phone, union_id, open_id, profile).
    SharedAlias(String),
    ExistingCustomer,
    Cycle,
    Burst {
        limit: u32,
        window_us: i64,
    },
}

impl Flag {
    pub fn check(&self) -> &'static str {
        match self {
            Self::SelfReferral => "self_referral",
            Self::SharedAlias(_) => "shared_alias",
            Self::ExistingCustomer => "existing_customer",
            Self::Cycle => "cycle",
            Self::Burst { .. } => "burst",
        }
    }
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SelfReferral => f.write_str("the inviter invited themselves"),
            Self::SharedAlias(kind) => {
                write!(f, "inviter and invitee share an alias ({kind}): one person")
            }
            Self::ExistingCustomer => f.write_str("the invitee had ordered before the referral"),
            Self::Cycle => f.write_str("the invitee had invited the inviter: a cycle"),
            Self::Burst { limit, window_us } => write!(
                f,
                "more than {limit} invitees from this inviter within {} minutes",
                window_us / 60_000_000
            ),
        }
    }
}

/// What the store knows about a referral when it arrives.
#[derive(Debug, Clone, Default)]
pub struct ReferralFacts<'a> {
    pub inviter: &'a str,
    pub invitee: &'a str,
    /// An alias kind both share, if any.
    pub shared_alias: Option<String>,
    pub invitee_first_order_at_us: Option<i64>,
    pub referred_at_us: i64,
    /// The invitee referred the inviter in this programme before.
    pub reverse_exists: bool,
    /// The inviter's referrals within the burst window before this one.
    pub inviter_recent: u64,
}

/// The first check the referral fails, in the order a reviewer would ask.
pub fn flag(spec: &ProgrammeSpec, facts: &ReferralFacts<'_>) -> Option<Flag> {
    if facts.inviter == facts.invitee {
        return Some(Flag::SelfReferral);
    }
    if let Some(kind) = &facts.shared_alias {
        return Some(Flag::SharedAlias(kind.clone()));
    }
    if facts
        .invitee_first_order_at_us
        .is_some_and(|at| at < facts.referred_at_us)
    {
        return Some(Flag::ExistingCustomer);
    }
    if facts.reverse_exists {
        return Some(Flag::Cycle);
    }
    if facts.inviter_recent >= u64::from(spec.burst_limit) {
        return Some(Flag::Burst {
            limit: spec.burst_limit,
            window_us: spec.burst_window_us,
        });
    }
    None
}

/// Whether the inviter's `converted`-th converted invitee earns a reward.
pub fn earns_reward(spec: &ProgrammeSpec, converted: u64) -> bool {
    converted > 0 && converted.is_multiple_of(u64::from(spec.reward_every.max(1)))
}

/// Whether a refund at `refund_at_us` of the first order converted at `converted_at_us` reverses
/// its credit.
pub fn reverses(spec: &ProgrammeSpec, converted_at_us: i64, refund_at_us: i64) -> bool {
    refund_at_us >= converted_at_us && refund_at_us - converted_at_us <= spec.reversal_window_us
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ProgrammeSpec {
        ProgrammeSpec {
            programme_id: "friends".into(),
            name: "Bring a friend".into(),
            reward_pool_id: "REWARD".into(),
            invitee_pool_id: String::new(),
            reward_every: 0,
            reversal_window_us: 0,
            burst_limit: 0,
            burst_window_us: 0,
        }
        .with_defaults()
    }

    fn facts<'a>() -> ReferralFacts<'a> {
        ReferralFacts {
            inviter: "a",
            invitee: "b",
            referred_at_us: 1_000,
            ..ReferralFacts::default()
        }
    }

    #[test]
    fn a_clean_referral_passes_every_check() {
        assert_eq!(flag(&spec(), &facts()), None);
        let later_buyer = ReferralFacts {
            invitee_first_order_at_us: Some(2_000),
            ..facts()
        };
        assert_eq!(flag(&spec(), &later_buyer), None);
    }

    #[test]
    fn each_check_flags_with_its_reason() {
        let spec = spec();
        let cases = [
            (
                ReferralFacts {
                    invitee: "a",
                    ..facts()
                },
                "self_referral",
            ),
            (
                ReferralFacts {
                    shared_alias: Some("phone".into()),
                    ..facts()
                },
                "shared_alias",
            ),
            (
                ReferralFacts {
                    invitee_first_order_at_us: Some(999),
                    ..facts()
                },
                "existing_customer",
            ),
            (
                ReferralFacts {
                    reverse_exists: true,
                    ..facts()
                },
                "cycle",
            ),
            (
                ReferralFacts {
                    inviter_recent: 10,
                    ..facts()
                },
                "burst",
            ),
        ];
        for (facts, check) in cases {
            let flagged = flag(&spec, &facts).expect(check);
            assert_eq!(flagged.check(), check);
            assert!(!flagged.to_string().is_empty());
        }
    }

    #[test]
    fn every_third_conversion_earns_a_reward_and_refunds_reverse_within_the_window() {
        let spec = spec();
        let earned: Vec<u64> = (0..10).filter(|&n| earns_reward(&spec, n)).collect();
        assert_eq!(earned, [3, 6, 9]);
        assert!(reverses(&spec, 0, DEFAULT_REVERSAL_WINDOW_US));
        assert!(!reverses(&spec, 0, DEFAULT_REVERSAL_WINDOW_US + 1));
    }

    #[test]
    fn a_programme_needs_an_id_and_a_reward_pool() {
        let mut spec = spec();
        assert_eq!(spec.validate(), Ok(()));
        spec.programme_id = "no spaces".into();
        spec.reward_pool_id.clear();
        let problems = spec.validate().unwrap_err();
        assert!(
            problems.contains("id:") && problems.contains("reward_pool_id"),
            "{problems}"
        );
    }
}
