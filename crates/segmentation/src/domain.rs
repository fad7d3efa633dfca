//! Pure decisions about profiles: lifecycle stages, RFM scores and value tiers, tags, and the segment
//! rule language. No I/O; callers pass the clock in as `now_us` (microseconds since the Unix epoch).

pub mod kpi;
pub mod lifecycle;
pub mod profile;
pub mod rfm;
pub mod rules;
pub mod state;
pub mod tags;

pub use lifecycle::{
    LifecycleThresholds, Stage, Transition, next_stage_change_at, stage_at, transition,
};
pub use profile::{EVENT_TYPES, Order, PLATFORMS, Profile};
pub use rfm::{Quintiles, RfmConfig, RfmEdges, RfmScore, RfmValues, TierThresholds, ValueTier};
pub use rules::{ParseError, Rule, evaluate, next_membership_change_at, parse};
pub use tags::{
    Behaviour, NeedTagRule, TagRuleError, apply_attribute_tags, attribute_tags, behaviour_tag,
    need_tags,
};

/// Microseconds in one day.
pub const DAY_US: i64 = 86_400_000_000;
