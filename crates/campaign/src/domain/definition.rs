//! The campaign definition: one document, JSON or TOML in the same shape, read with serde and then
//! checked as a whole, every problem named by its path (`steps[2](wait-order).timeout`).
//!
//! ```toml
//! name = "Win back"
//! channel = "direct_message"
//! kind = "content"
//! entry = { type = "stage_changed", from = "active", to = "churned" }
//! exit = { goal = { event = "order_placed" } }
//!
//! [[variants]]
//! id = "a"
//!
//! [[steps]]
//! type = "send"
//! id = "coupon"
//! text = "好久不见！送你一张回归优惠券。"
//! action = { type = "coupon", template = "WINBACK10" }
//! ```

mod locate;
#[cfg(test)]
mod tests;
mod validate;
mod written;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use super::campaign::{Channel, Kind, names};

pub use validate::validate;

pub const MAX_STEPS: usize = 64;
pub const MAX_VARIANTS: usize = 16;
pub const MAX_TEXT_CHARS: usize = 2_000;
pub const MAX_ID_CHARS: usize = 64;
/// The largest holdout share: a campaign that holds out more is an experiment on the wrong side.
pub const MAX_HOLDOUT: f64 = 0.5;
/// The `exit` target of a jump, which no step may take as its id.
pub const EXIT: &str = "exit";

/// A definition as stored and run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub name: String,
    pub channel: Channel,
    pub kind: Kind,
    /// `general`, `cosmetics`, `food` or `medical`: which advertising-law rules the review applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_category: Option<String>,
    pub variants: Vec<Variant>,
    /// The share of entrants held out: they enter and leave at once, and get nothing.
    #[serde(default)]
    pub holdout: f64,
    /// How the variants are judged, and whether the winner is rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<Experiment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// The most sends the campaign makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    /// Send at the user's most active hour within this long after a message is ready; written as a
    /// duration (`"12h"`) or `true` for a day.
    #[serde(
        default,
        with = "written::best_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub best_time: Option<Duration>,
    #[serde(default)]
    pub reentry: Reentry,
    pub entry: Entry,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub exit: ExitRules,
}

/// The experiment between a campaign's variants. With `auto_rollout`, once the sequential test
/// finds a variant better than the first (or the first better than every other) on conversion rate,
/// with every variant at `min_users_per_arm` and the campaign running `min_duration`, every new
/// entrant gets the winner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    #[serde(default)]
    pub auto_rollout: bool,
    #[serde(default = "default_min_users")]
    pub min_users_per_arm: u64,
    #[serde(default = "default_min_duration", with = "humantime_serde")]
    pub min_duration: Duration,
}

fn default_min_users() -> u64 {
    1_000
}

fn default_min_duration() -> Duration {
    Duration::from_secs(7 * 24 * 3_600)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub id: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(
        default,
        deserialize_with = "written::utc_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "written::utc_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<DateTime<Utc>>,
}

/// Whether a user who has been through the journey may enter it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reentry {
    /// Once ever.
    #[default]
    Once,
    /// Every time the entry happens (never while still in the journey).
    Always,
    /// Again once this long has passed since the last entry.
    Cooldown(#[serde(with = "humantime_serde")] Duration),
}

/// What puts a user into the journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    SegmentEntered {
        segment_id: String,
    },
    SegmentLeft {
        segment_id: String,
    },
    /// A lifecycle transition; `from` unset matches any stage before.
    StageChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Stage>,
        to: Stage,
    },
    Event {
        event: EventMatch,
    },
    /// The segment's members (as announced on `socialops.profiles.v1`) at a time, or recurring on a
    /// five-field cron schedule in the tenant's time zone.
    Schedule {
        #[serde(
            default,
            deserialize_with = "written::utc_time",
            skip_serializing_if = "Option::is_none"
        )]
        at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cron: Option<String>,
        segment_id: String,
    },
    /// Once, at start, every member of the segment, including those who entered it long before.
    Launch {
        segment_id: String,
    },
}

impl Entry {
    /// Whether a transition `from` → `to` enters a stage-changed journey.
    pub fn matches_stage(&self, from: Option<Stage>, to: Stage) -> bool {
        match self {
            Entry::StageChanged {
                from: want_from,
                to: want_to,
            } => *want_to == to && want_from.is_none_or(|want| Some(want) == from),
            _ => false,
        }
    }

    pub fn matches_segment_entered(&self, segment_id: &str) -> bool {
        matches!(self, Entry::SegmentEntered { segment_id: id } if id == segment_id)
    }

    pub fn matches_segment_left(&self, segment_id: &str) -> bool {
        matches!(self, Entry::SegmentLeft { segment_id: id } if id == segment_id)
    }

    pub fn matches_event(&self, fact: &EventFact) -> bool {
        match self {
            Entry::Event { event } => event.matches(fact),
            _ => false,
        }
    }

    /// The segment whose members are in the journey: the one entered, scheduled or launched to.
    /// A segment-left entry has none, its users being those who are no longer members.
    pub fn member_segment(&self) -> Option<&str> {
        match self {
            Entry::SegmentEntered { segment_id }
            | Entry::Schedule { segment_id, .. }
            | Entry::Launch { segment_id } => Some(segment_id),
            Entry::SegmentLeft { .. } | Entry::StageChanged { .. } | Entry::Event { .. } => None,
        }
    }

    /// The next time a schedule entry fires strictly after `after`; `None` for other entries and
    /// for a one-off time already past.
    pub fn next_schedule_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let Entry::Schedule { at, cron, .. } = self else {
            return None;
        };
        if let Some(cron) = cron {
            let schedule = parse_cron(cron).ok()?;
            return schedule
                .find_next_occurrence(&after.with_timezone(&tz), false)
                .ok()
                .map(|next| next.with_timezone(&Utc));
        }
        at.filter(|at| *at > after)
    }
}

/// croner also reads seconds and years when given six or seven fields; a schedule is the classic
/// five, so a stray extra field is an error rather than a schedule that fires every second.
fn parse_cron(pattern: &str) -> Result<croner::Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| {
            format!(
                "{pattern:?} is not a five-field cron schedule (minute hour day month weekday): {e}"
            )
        })
}

/// Lifecycle stages as segmentation announces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Potential,
    New,
    Active,
    Loyal,
    Churned,
}

/// RFM value tiers as segmentation announces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Unscored,
    LowValue,
    Regular,
    PotentialHighValue,
    HighValue,
}

/// The events a journey can enter on, wait for, branch on or exit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    OrderPlaced,
    OrderRefunded,
    Follow,
    Unfollow,
    DirectMessage,
    Comment,
    Like,
    Share,
    ContentClick,
    CouponRedeemed,
    Referral,
}

names!(Stage {
    Potential => "potential",
    New => "new",
    Active => "active",
    Loyal => "loyal",
    Churned => "churned",
});

names!(Tier {
    Unscored => "unscored",
    LowValue => "low_value",
    Regular => "regular",
    PotentialHighValue => "potential_high_value",
    HighValue => "high_value",
});

names!(EventType {
    OrderPlaced => "order_placed",
    OrderRefunded => "order_refunded",
    Follow => "follow",
    Unfollow => "unfollow",
    DirectMessage => "direct_message",
    Comment => "comment",
    Like => "like",
    Share => "share",
    ContentClick => "content_click",
    CouponRedeemed => "coupon_redeemed",
    Referral => "referral",
});

impl EventType {
    /// Events that carry an amount.
    pub fn is_order(self) -> bool {
        matches!(self, EventType::OrderPlaced | EventType::OrderRefunded)
    }
}

/// Which events count: of a type, an order of at least an amount, a first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    pub event: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_amount_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_order: bool,
}

/// An event as the journey sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFact {
    pub event: EventType,
    pub amount_cents: Option<i64>,
    /// The user's first order as far as the campaign service has seen.
    pub first_order: bool,
    pub at: DateTime<Utc>,
}

impl EventMatch {
    pub fn matches(&self, fact: &EventFact) -> bool {
        self.event == fact.event
            && self
                .min_amount_cents
                .is_none_or(|min| fact.amount_cents.is_some_and(|amount| amount >= min))
            && (!self.first_order || fact.first_order)
    }
}

/// What the journey knows of the user, for branches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Facts {
    /// Events seen since entry.
    #[serde(default)]
    pub events: BTreeSet<EventType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
}

/// An intent a send step records besides its message; carried out by the coupon and referral
/// services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Issue a coupon from the template (which sets the code prefix, value and expiry).
    Coupon {
        template: String,
    },
    Referral {
        programme: String,
    },
}

/// One step of a journey. Jumps go forward only, so every journey ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Send {
        id: String,
        /// The message for every variant …
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// … or one per variant id.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        messages: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<Action>,
    },
    /// Waits for a duration or until the user's clock next reads a time of day (`"10:00"`).
    Wait {
        id: String,
        #[serde(
            default,
            with = "humantime_serde::option",
            skip_serializing_if = "Option::is_none"
        )]
        duration: Option<Duration>,
        #[serde(
            default,
            with = "written::time_of_day",
            skip_serializing_if = "Option::is_none"
        )]
        until_local_time: Option<NaiveTime>,
    },
    WaitForEvent {
        id: String,
        event: EventMatch,
        #[serde(with = "humantime_serde")]
        timeout: Duration,
        /// Where the journey goes when the event comes: a later step's id or `exit`; the next step
        /// when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_event: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_timeout: Option<String>,
    },
    Branch {
        id: String,
        condition: Condition,
        then: String,
        #[serde(rename = "else")]
        otherwise: String,
    },
    Exit {
        id: String,
    },
}

impl Step {
    pub fn id(&self) -> &str {
        match self {
            Step::Send { id, .. }
            | Step::Wait { id, .. }
            | Step::WaitForEvent { id, .. }
            | Step::Branch { id, .. }
            | Step::Exit { id } => id,
        }
    }

    /// The message of `variant` in a send step.
    pub fn text_for(&self, variant: &str) -> Option<&str> {
        match self {
            Step::Send { text, messages, .. } => messages
                .get(variant)
                .map(String::as_str)
                .or(text.as_deref()),
            _ => None,
        }
    }

    /// Where the step may jump, with the field naming each target.
    fn targets(&self) -> Vec<(&'static str, &str)> {
        match self {
            Step::WaitForEvent {
                on_event,
                on_timeout,
                ..
            } => [("on_event", on_event), ("on_timeout", on_timeout)]
                .into_iter()
                .filter_map(|(field, target)| target.as_deref().map(|t| (field, t)))
                .collect(),
            Step::Branch {
                then, otherwise, ..
            } => vec![("then", then.as_str()), ("else", otherwise.as_str())],
            _ => Vec::new(),
        }
    }
}

/// What a branch asks of what the journey knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The event happened since the user entered.
    EventHappened(EventType),
    /// The user's stage as last announced.
    Stage(Stage),
    Tier(Tier),
}

impl Condition {
    pub fn holds(self, facts: &Facts) -> bool {
        match self {
            Condition::EventHappened(event) => facts.events.contains(&event),
            Condition::Stage(stage) => facts.stage == Some(stage),
            Condition::Tier(tier) => facts.tier == Some(tier),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitRules {
    /// The event that is the journey's goal: it ends the journey wherever the user is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<EventMatch>,
    /// Leaving the entry's segment ends the journey.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_segment_left: bool,
}

impl CampaignSpec {
    /// Every variant's message of every send step: (variant id, step id, text).
    pub fn messages(&self) -> Vec<(&str, &str, &str)> {
        let mut out = Vec::new();
        for step in &self.steps {
            for variant in &self.variants {
                if let Some(text) = step.text_for(&variant.id) {
                    out.push((variant.id.as_str(), step.id(), text));
                }
            }
        }
        out
    }

    /// The index of the step named `id`.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id() == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
}

/// One thing wrong with a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `steps[2](wait-order).timeout`, `variants[1].weight`, `entry.cron`; empty for the
    /// document as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything wrong with a definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DefinitionError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid campaign definition: ")?;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Reads and checks a definition document.
///
/// Both formats are read into one JSON tree first, so that TOML and JSON take the same path through
/// serde and a failure can be located in the tree.
pub fn parse(document: &str, format: Format) -> Result<CampaignSpec, DefinitionError> {
    let single = |problem| DefinitionError {
        problems: vec![problem],
    };
    let tree = match format {
        Format::Json => locate::json_tree(document),
        Format::Toml => locate::toml_tree(document),
    }
    .map_err(single)?;
    let spec: CampaignSpec = serde_path_to_error::deserialize(&tree)
        .map_err(|error| single(locate::serde_problem(&error, &tree)))?;
    let problems = validate(&spec);
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(DefinitionError { problems })
    }
}

/// `steps[2](wait-order)`: a step by index and id, the prefix of every problem inside it.
fn step_path(index: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("steps[{index}]({id})"),
        None => format!("steps[{index}]"),
    }
}
