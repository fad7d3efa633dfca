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

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::campaign::{Channel, Kind, UnknownName};

pub const MAX_STEPS: usize = 64;
pub const MAX_VARIANTS: usize = 16;
pub const MAX_TEXT_CHARS: usize = 2_000;
pub const MAX_ID_CHARS: usize = 64;
/// The largest holdout share: a campaign that holds out more is an experiment on the wrong side.
pub const MAX_HOLDOUT: f64 = 0.5;

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// The most sends the campaign makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    /// Send at the user's most active hour within this window after a message is ready.
    #[serde(
        default,
        with = "humantime_serde::option",
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
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

    pub fn matches_event(&self, fact: &EventFact) -> bool {
        match self {
            Entry::Event { event } => event.matches(fact),
            _ => false,
        }
    }

    /// The next time a schedule entry fires after `after`.
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

fn parse_cron(pattern: &str) -> Result<croner::Cron, String> {
    pattern
        .parse::<croner::Cron>()
        .map_err(|e| format!("{pattern:?} is not a five-field cron schedule: {e}"))
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

macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            fn from_str(name: &str) -> Result<Self, UnknownName> {
                match name {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownName { what: stringify!($ty), name: name.to_owned() }),
                }
            }
        }
    };
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
    Coupon { template: String },
    Referral { programme: String },
}

/// A local time of day, written `"10:00"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeOfDay(#[serde(with = "super::pressure::clock_time")] pub NaiveTime);

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
    Wait {
        id: String,
        #[serde(
            default,
            with = "humantime_serde::option",
            skip_serializing_if = "Option::is_none"
        )]
        duration: Option<Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_local_time: Option<TimeOfDay>,
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
#[serde(rename_all = "snake_case", deny_unknown_fields)]
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
    /// Leaving the entry segment ends the journey.
    #[serde(default)]
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
            if problem.path.is_empty() {
                f.write_str(&problem.message)?;
            } else {
                write!(f, "{}: {}", problem.path, problem.message)?;
            }
        }
        Ok(())
    }
}

/// Reads and checks a definition document.
pub fn parse(document: &str, format: Format) -> Result<CampaignSpec, DefinitionError> {
    let single = |path: String, message: String| DefinitionError {
        problems: vec![Problem { path, message }],
    };
    let value: serde_json::Value = match format {
        Format::Json => serde_json::from_str(document)
            .map_err(|e| single(String::new(), format!("not JSON: {e}")))?,
        Format::Toml => toml::from_str(document)
            .map_err(|e| single(String::new(), format!("not TOML: {}", e.message())))?,
    };
    let spec: CampaignSpec = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let path = name_steps(&with_field(&path, &message, &value), &value);
        single(if path == "." { String::new() } else { path }, message)
    })?;
    let problems = validate(&spec);
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(DefinitionError { problems })
    }
}

/// serde loses the path inside a tagged enum (a step, the entry, an action): there the field is
/// found from the message, which names it (`missing field `timeout``, `unknown field `x``) or quotes
/// its value (`invalid value: string "soon"`).
fn with_field(path: &str, message: &str, document: &serde_json::Value) -> String {
    let pointer = format!(
        "/{}",
        path.replace("].", "/")
            .replace('[', "/")
            .replace(']', "")
            .replace('.', "/")
    );
    let Some(serde_json::Value::Object(object)) = document.pointer(&pointer) else {
        return path.to_owned();
    };
    let quoted = |token: &str| {
        message.contains(&format!("`{token}`")) || message.contains(&format!("\"{token}\""))
    };
    let field = object
        .keys()
        .find(|key| quoted(key))
        .or_else(|| {
            object
                .iter()
                .find(|(_, value)| value.as_str().is_some_and(quoted))
                .map(|(key, _)| key)
        })
        .cloned()
        .or_else(|| {
            let start = message.find("missing field `")? + "missing field `".len();
            let end = message[start..].find('`')?;
            Some(message[start..start + end].to_owned())
        });
    match field {
        Some(field) => format!("{path}.{field}"),
        None => path.to_owned(),
    }
}

/// `steps[2].timeout` becomes `steps[2](wait-order).timeout` when step 2 has an id.
fn name_steps(path: &str, document: &serde_json::Value) -> String {
    let Some(rest) = path.strip_prefix("steps[") else {
        return path.to_owned();
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return path.to_owned();
    };
    let id = index
        .parse::<usize>()
        .ok()
        .and_then(|i| document.get("steps")?.get(i)?.get("id")?.as_str());
    match id {
        Some(id) => format!("steps[{index}]({id}){tail}"),
        None => path.to_owned(),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

const ID_RULE: &str = "must be 1 to 64 of a-z, 0-9, - and _";

/// Every problem with a definition that parsed.
pub fn validate(spec: &CampaignSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |path: String, message: String| problems.push(Problem { path, message });
    if spec.name.trim().is_empty() || spec.name.chars().count() > 200 {
        problem("name".into(), "must be 1 to 200 characters".into());
    }
    if !(0.0..=MAX_HOLDOUT).contains(&spec.holdout) {
        problem(
            "holdout".into(),
            format!("must be a share from 0 to {MAX_HOLDOUT}"),
        );
    }
    if let Some(category) = &spec.product_category
        && !["general", "cosmetics", "food", "medical"].contains(&category.as_str())
    {
        problem(
            "product_category".into(),
            format!("{category:?} is not general, cosmetics, food or medical"),
        );
    }
    if let Some(Window {
        start: Some(start),
        end: Some(end),
    }) = spec.window
        && end <= start
    {
        problem("window.end".into(), "must be after window.start".into());
    }
    if spec.budget == Some(0) {
        problem("budget".into(), "must be at least 1 send".into());
    }
    if spec
        .best_time
        .is_some_and(|w| w.is_zero() || w > Duration::from_secs(7 * 86_400))
    {
        problem(
            "best_time".into(),
            "must be more than 0 and at most 7 days".into(),
        );
    }

    if spec.variants.is_empty() || spec.variants.len() > MAX_VARIANTS {
        problem(
            "variants".into(),
            format!("must have 1 to {MAX_VARIANTS} variants"),
        );
    }
    let mut variant_ids = HashSet::new();
    for (i, variant) in spec.variants.iter().enumerate() {
        if !valid_id(&variant.id) {
            problem(format!("variants[{i}].id"), ID_RULE.into());
        } else if !variant_ids.insert(variant.id.as_str()) {
            problem(
                format!("variants[{i}].id"),
                format!("{:?} is used twice", variant.id),
            );
        }
    }
    if !spec.variants.is_empty() && spec.variants.iter().all(|v| v.weight == 0) {
        problem(
            "variants".into(),
            "at least one weight must be above 0".into(),
        );
    }

    match &spec.entry {
        Entry::Schedule { at, cron, .. } => match (at, cron) {
            (Some(_), Some(_)) | (None, None) => {
                problem(
                    "entry".into(),
                    "a schedule has either `at` or `cron`".into(),
                );
            }
            (None, Some(cron)) => {
                if let Err(message) = parse_cron(cron) {
                    problem("entry.cron".into(), message);
                }
            }
            (Some(_), None) => {}
        },
        Entry::SegmentEntered { segment_id }
        | Entry::SegmentLeft { segment_id }
        | Entry::Launch { segment_id }
            if segment_id.trim().is_empty() =>
        {
            problem("entry.segment_id".into(), "required".into());
        }
        _ => {}
    }
    if let Entry::Schedule { segment_id, .. } = &spec.entry
        && segment_id.trim().is_empty()
    {
        problem("entry.segment_id".into(), "required".into());
    }

    if spec.steps.is_empty() || spec.steps.len() > MAX_STEPS {
        problem("steps".into(), format!("must have 1 to {MAX_STEPS} steps"));
    }
    let mut step_ids: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, step) in spec.steps.iter().enumerate() {
        let at = format!("steps[{i}]({})", step.id());
        if !valid_id(step.id()) || step.id() == "exit" {
            problem(format!("{at}.id"), format!("{ID_RULE}, and not `exit`"));
        } else if step_ids.insert(step.id(), i).is_some() {
            problem(format!("{at}.id"), format!("{:?} is used twice", step.id()));
        }
    }
    for (i, step) in spec.steps.iter().enumerate() {
        let at = format!("steps[{i}]({})", step.id());
        for (field, target) in step.targets() {
            if target == "exit" {
                continue;
            }
            match step_ids.get(target) {
                None => problem(format!("{at}.{field}"), format!("no step {target:?}")),
                Some(&j) if j <= i => problem(
                    format!("{at}.{field}"),
                    format!("{target:?} is not a later step: journeys only go forward"),
                ),
                Some(_) => {}
            }
        }
        match step {
            Step::Send {
                text,
                messages,
                action,
                ..
            } => {
                if text.is_some() != messages.is_empty() {
                    problem(
                        format!("{at}.text"),
                        "a send step has either `text` or `messages`".into(),
                    );
                }
                if let Some(text) = text {
                    check_text(&format!("{at}.text"), text, &mut problem);
                }
                for (variant, text) in messages {
                    if !variant_ids.contains(variant.as_str()) {
                        problem(
                            format!("{at}.messages.{variant}"),
                            format!("no variant {variant:?}"),
                        );
                    }
                    check_text(&format!("{at}.messages.{variant}"), text, &mut problem);
                }
                if !messages.is_empty() {
                    for variant in &spec.variants {
                        if !messages.contains_key(&variant.id) {
                            problem(
                                format!("{at}.messages"),
                                format!("no message for variant {:?}", variant.id),
                            );
                        }
                    }
                }
                match action {
                    Some(Action::Coupon { template }) if template.trim().is_empty() => {
                        problem(format!("{at}.action.template"), "required".into());
                    }
                    Some(Action::Referral { programme }) if programme.trim().is_empty() => {
                        problem(format!("{at}.action.programme"), "required".into());
                    }
                    _ => {}
                }
            }
            Step::Wait {
                duration,
                until_local_time,
                ..
            } => {
                if duration.is_some() == until_local_time.is_some() {
                    problem(
                        format!("{at}.duration"),
                        "a wait has either `duration` or `until_local_time`".into(),
                    );
                }
                if duration.is_some_and(|d| d.is_zero()) {
                    problem(format!("{at}.duration"), "must be more than 0".into());
                }
            }
            Step::WaitForEvent { timeout, .. } => {
                if timeout.is_zero() {
                    problem(format!("{at}.timeout"), "must be more than 0".into());
                }
            }
            Step::Branch { .. } | Step::Exit { .. } => {}
        }
    }
    problems
}

fn check_text(path: &str, text: &str, problem: &mut impl FnMut(String, String)) {
    let chars = text.chars().count();
    if text.trim().is_empty() || chars > MAX_TEXT_CHARS {
        problem(
            path.to_owned(),
            format!("must be 1 to {MAX_TEXT_CHARS} characters (it has {chars})"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINBACK_TOML: &str = include_str!("../../examples/winback.toml");
    const WELCOME_JSON: &str = include_str!("../../examples/welcome.json");

    fn problems(document: &str) -> Vec<Problem> {
        parse(document, Format::Toml).unwrap_err().problems
    }

    fn with_steps(steps: &str) -> String {
        format!(
            "name = \"t\"\nchannel = \"push\"\nkind = \"content\"\n\
             entry = {{ type = \"segment_entered\", segment_id = \"s\" }}\n\
             [[variants]]\nid = \"a\"\n[[variants]]\nid = \"b\"\n{steps}"
        )
    }

    #[test]
    fn the_examples_parse() {
        let winback = parse(WINBACK_TOML, Format::Toml).unwrap();
        assert_eq!(winback.steps.len(), 3);
        assert!(
            winback
                .entry
                .matches_stage(Some(Stage::Active), Stage::Churned)
        );
        assert!(
            !winback
                .entry
                .matches_stage(Some(Stage::New), Stage::Churned)
        );
        let welcome = parse(WELCOME_JSON, Format::Json).unwrap();
        assert_eq!(welcome.variants.len(), 2);
        assert_eq!(welcome.messages().len(), 2);
    }

    #[test]
    fn json_and_toml_of_one_campaign_are_the_same_spec() {
        let toml_spec = parse(WINBACK_TOML, Format::Toml).unwrap();
        let json = serde_json::to_string(&toml_spec).unwrap();
        assert_eq!(parse(&json, Format::Json).unwrap(), toml_spec);
    }

    #[test]
    fn a_bad_duration_names_the_step_and_field() {
        let found = problems(&with_steps(
            "[[steps]]\ntype = \"wait\"\nid = \"pause\"\nduration = \"soon\"",
        ));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "steps[0](pause).duration", "{found:?}");
    }

    #[test]
    fn jumps_must_go_forward_to_known_steps() {
        let found = problems(&with_steps(
            "[[steps]]\ntype = \"send\"\nid = \"one\"\ntext = \"hi\"\n\
             [[steps]]\ntype = \"branch\"\nid = \"fork\"\ncondition = { stage = \"loyal\" }\n\
             then = \"one\"\nelse = \"nowhere\"",
        ));
        let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["steps[1](fork).then", "steps[1](fork).else"],
            "{found:?}"
        );
    }

    #[test]
    fn messages_must_cover_every_variant_and_ids_be_unique() {
        let found = problems(&with_steps(
            "[[steps]]\ntype = \"send\"\nid = \"s\"\nmessages = { a = \"hi\", c = \"yo\" }\n\
             [[steps]]\ntype = \"exit\"\nid = \"s\"",
        ));
        let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"steps[1](s).id"), "{found:?}");
        assert!(paths.contains(&"steps[0](s).messages.c"), "{found:?}");
        assert!(
            found
                .iter()
                .any(|p| p.path == "steps[0](s).messages" && p.message.contains("\"b\"")),
            "{found:?}"
        );
    }

    #[test]
    fn a_bad_cron_is_named() {
        let document = with_steps("[[steps]]\ntype = \"send\"\nid = \"s\"\ntext = \"hi\"").replace(
            "entry = { type = \"segment_entered\", segment_id = \"s\" }",
            "entry = { type = \"schedule\", cron = \"every monday\", segment_id = \"s\" }",
        );
        let found = problems(&document);
        assert_eq!(found[0].path, "entry.cron", "{found:?}");
    }

    #[test]
    fn a_cron_schedule_fires_in_the_tenant_time_zone() {
        let entry = Entry::Schedule {
            at: None,
            cron: Some("0 10 * * 1".into()),
            segment_id: "s".into(),
        };
        // 2026-11-20 is a Friday; the next Monday 10:00 in Shanghai is 02:00 UTC.
        let after: DateTime<Utc> = "2026-11-20T04:00:00Z".parse().unwrap();
        let next = entry
            .next_schedule_after(after, chrono_tz::Asia::Shanghai)
            .unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-23T02:00:00+00:00");
    }

    #[test]
    fn event_matches_check_amount_and_first_order() {
        let want = EventMatch {
            event: EventType::OrderPlaced,
            min_amount_cents: Some(10_000),
            first_order: true,
        };
        let fact = |amount, first| EventFact {
            event: EventType::OrderPlaced,
            amount_cents: Some(amount),
            first_order: first,
            at: Utc::now(),
        };
        assert!(want.matches(&fact(10_000, true)));
        assert!(!want.matches(&fact(9_999, true)));
        assert!(!want.matches(&fact(20_000, false)));
    }

    #[test]
    fn syntax_errors_are_one_problem() {
        let found = problems("name = ");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.starts_with("not TOML"), "{found:?}");
        let found = problems(&with_steps("[[steps]]\ntype = \"teleport\"\nid = \"x\""));
        assert_eq!(found[0].path, "steps[0](x).type", "{found:?}");
    }
}
