//! Pressure rules: whether a message goes to a user now, later or never, given what the user has
//! already received from all of the tenant's campaigns.
//!
//! The rules apply in a fixed order — control group, best time, quiet hours, caps (overall, then
//! per channel), ad ratio — and the first that holds a message back names the decision. A delayed
//! message is decided again at its `until`, with caps and the ratio counted afresh then; `decide`
//! follows a delay through the later rules itself (a cap's next day begins in quiet hours), so
//! `until` is when every rule passes if nothing else is sent meanwhile.

mod hours;
mod local_time;
mod rules;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::assign;
use super::campaign::{Channel, Kind, UnknownName};

pub use hours::HourHistogram;
pub(crate) use local_time::end_of_gap;
pub(crate) use rules::clock_time;
pub use rules::{
    AdRatio, AdRatioAction, BestTimeRules, CapAction, Caps, ChannelCaps, MAX_CONTROL_GROUP_SHARE,
    PressureRules, QuietAction, QuietHours, RulesError,
};

/// A message already sent to the user (or decided to be sent), by any campaign of the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastSend {
    pub at: DateTime<Utc>,
    pub channel: Channel,
    pub kind: Kind,
}

/// The message being decided.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub channel: Channel,
    pub kind: Kind,
    /// When the journey first wanted it sent; best time counts from here, however often the
    /// message is decided again.
    pub first_ready_at: DateTime<Utc>,
    /// How long the campaign lets a message wait for the user's best hour; `None` sends when
    /// ready. Service messages never wait for it.
    pub best_time: Option<Duration>,
}

/// What is known of the user.
#[derive(Debug, Clone, Copy)]
pub struct UserContext<'a> {
    /// The user's own time zone, or the tenant's (`PressureRules::time_zone`) when unknown.
    pub time_zone: Tz,
    pub hours: Option<&'a HourHistogram>,
    /// The hour (0–23, local) the tenant's users are most active, for users with little history.
    pub tenant_peak_hour: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    Delay { until: DateTime<Utc>, rule: Rule },
    Drop { rule: Rule },
}

impl Decision {
    pub fn rule(self) -> Option<Rule> {
        match self {
            Decision::Send => None,
            Decision::Delay { rule, .. } | Decision::Drop { rule } => Some(rule),
        }
    }
}

/// The rule behind a delay or a drop. The names are part of the API: `ExplainDelivery` and the
/// send counts show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    ControlGroup,
    DailyCap,
    WeeklyCap,
    ChannelDailyCap,
    ChannelWeeklyCap,
    QuietHours,
    AdRatio,
    BestTime,
}

impl Rule {
    pub const ALL: &'static [Rule] = &[
        Rule::ControlGroup,
        Rule::DailyCap,
        Rule::WeeklyCap,
        Rule::ChannelDailyCap,
        Rule::ChannelWeeklyCap,
        Rule::QuietHours,
        Rule::AdRatio,
        Rule::BestTime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ControlGroup => "control_group",
            Rule::DailyCap => "daily_cap",
            Rule::WeeklyCap => "weekly_cap",
            Rule::ChannelDailyCap => "channel_daily_cap",
            Rule::ChannelWeeklyCap => "channel_weekly_cap",
            Rule::QuietHours => "quiet_hours",
            Rule::AdRatio => "ad_ratio",
            Rule::BestTime => "best_time",
        }
    }

    /// What the rule says under `rules`, for a person: "at most 3 messages a day". `channel` is the
    /// held message's, which the channel caps speak of.
    pub fn describe(self, rules: &PressureRules, channel: Channel) -> String {
        let caps = &rules.caps;
        let channel_caps = caps.per_channel.get(&channel).copied().unwrap_or_default();
        match self {
            Rule::ControlGroup => format!(
                "the user is in the control group, the {} of users who get no marketing",
                percent(rules.control_group_share)
            ),
            Rule::DailyCap => at_most(caps.per_day, "a day", None),
            Rule::WeeklyCap => at_most(caps.per_week, "a week", None),
            Rule::ChannelDailyCap => at_most(channel_caps.per_day, "a day", Some(channel)),
            Rule::ChannelWeeklyCap => at_most(channel_caps.per_week, "a week", Some(channel)),
            Rule::QuietHours => match rules.quiet_hours {
                Some(quiet) => format!(
                    "no messages between {} and {} on the user's clock",
                    quiet.start.format("%H:%M"),
                    quiet.end.format("%H:%M")
                ),
                None => "no messages in quiet hours".to_owned(),
            },
            Rule::AdRatio => format!(
                "ads at most {} of the marketing messages in {}",
                percent(rules.ad_ratio.max_share),
                span_text(rules.ad_ratio.window)
            ),
            Rule::BestTime => "sent at the hour the user is most active".to_owned(),
        }
    }
}

fn at_most(cap: Option<u32>, per: &str, channel: Option<Channel>) -> String {
    let n = cap.unwrap_or(0);
    let noun = if n == 1 { "message" } else { "messages" };
    match channel {
        Some(channel) => format!("at most {n} {noun} {per} by {channel}"),
        None => format!("at most {n} {noun} {per}"),
    }
}

fn percent(share: f64) -> String {
    format!("{}%", (share * 1_000.0).round() / 10.0)
}

fn span_text(span: Duration) -> String {
    let s = span.as_secs();
    let (n, unit) = match s {
        _ if s.is_multiple_of(86_400) => (s / 86_400, "day"),
        _ if s.is_multiple_of(3_600) => (s / 3_600, "hour"),
        _ => (s.div_ceil(60), "minute"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rule {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        Rule::ALL
            .iter()
            .copied()
            .find(|rule| rule.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "Rule",
                name: name.to_owned(),
            })
    }
}

/// How many times `decide` follows a delay into the next rule before it leaves the rest to the
/// caller's next decision; real rules settle in two or three.
const MAX_HOPS: usize = 8;

/// When no amount of waiting lets an ad under the ratio (no free ads and too little content in the
/// window), only new content can; the ad is looked at again after this.
const AD_RECHECK: TimeDelta = TimeDelta::days(1);

/// Whether `candidate` goes to the user at `now`. `history` holds the user's sends since
/// `now - rules.history_horizon()`, in any order.
pub fn decide(
    rules: &PressureRules,
    candidate: &Candidate,
    history: &[PastSend],
    ctx: &UserContext,
    now: DateTime<Utc>,
) -> Decision {
    if candidate.kind.is_marketing()
        && rules.control_group_share > 0.0
        && assign::in_control_group(candidate.tenant, candidate.user, rules.control_group_share)
    {
        return Decision::Drop {
            rule: Rule::ControlGroup,
        };
    }
    let checks = Checks {
        rules,
        candidate,
        history,
        tz: ctx.time_zone,
        best_slot: best_time_slot(rules, candidate, ctx),
    };
    let (mut until, rule) = match checks.at(now, false) {
        Check::Pass => return Decision::Send,
        Check::Drop(rule) => return Decision::Drop { rule },
        Check::Recheck(until, rule) => return Decision::Delay { until, rule },
        Check::Delay(until, rule) => (until, rule),
    };
    for _ in 0..MAX_HOPS {
        match checks.at(until, true) {
            Check::Delay(later, _) if later > until => until = later,
            Check::Recheck(later, _) => {
                until = later;
                break;
            }
            // A drop then is the caller's to find when it decides again at `until`.
            _ => break,
        }
    }
    Decision::Delay { until, rule }
}

/// One pass of the rules at one instant.
enum Check {
    Pass,
    Drop(Rule),
    /// The rule passes at this time unless more is sent meanwhile.
    Delay(DateTime<Utc>, Rule),
    /// Waiting alone never lets it pass; look again at this time.
    Recheck(DateTime<Utc>, Rule),
}

struct Checks<'a> {
    rules: &'a PressureRules,
    candidate: &'a Candidate<'a>,
    history: &'a [PastSend],
    tz: Tz,
    best_slot: Option<DateTime<Utc>>,
}

impl Checks<'_> {
    /// `moved` says a delay brought the message to `at`. Quiet hours then hold it even where the
    /// tenant drops messages in quiet hours: that drop is for messages that come due at night, not
    /// for ones a cap pushed to the next midnight.
    fn at(&self, at: DateTime<Utc>, moved: bool) -> Check {
        let candidate = self.candidate;
        if let Some(slot) = self.best_slot
            && at < slot
        {
            return Check::Delay(slot, Rule::BestTime);
        }
        if let Some(quiet) = &self.rules.quiet_hours
            && (candidate.kind.is_marketing() || quiet.applies_to_service)
            && let Some(end) = local_time::quiet_end(self.tz, quiet.start, quiet.end, at)
        {
            return match quiet.action {
                QuietAction::Drop if !moved => Check::Drop(Rule::QuietHours),
                _ => Check::Delay(end, Rule::QuietHours),
            };
        }
        if let Some((until, rule)) = self.over_cap(at) {
            return match self.rules.caps.action {
                CapAction::Delay => Check::Delay(until, rule),
                CapAction::Drop => Check::Drop(rule),
            };
        }
        if candidate.kind == Kind::Ad
            && let Some(wait) = self.over_ad_ratio(at)
        {
            return match (self.rules.ad_ratio.action, wait) {
                (AdRatioAction::Drop, _) => Check::Drop(Rule::AdRatio),
                (AdRatioAction::Wait, Some(until)) => Check::Delay(until, Rule::AdRatio),
                (AdRatioAction::Wait, None) => {
                    Check::Recheck(later_by(at, AD_RECHECK), Rule::AdRatio)
                }
            };
        }
        Check::Pass
    }

    /// The first cap the message would break at `at`, and when its local day or week ends.
    fn over_cap(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, Rule)> {
        let caps = &self.rules.caps;
        let candidate = self.candidate;
        if caps.service_exempt && candidate.kind == Kind::Service {
            return None;
        }
        let channel = caps
            .per_channel
            .get(&candidate.channel)
            .copied()
            .unwrap_or_default();
        if caps.per_day.is_none()
            && caps.per_week.is_none()
            && channel.per_day.is_none()
            && channel.per_week.is_none()
        {
            return None;
        }
        let date = local_time::local(self.tz, at).date();
        let day = local_time::day(self.tz, date);
        let week = local_time::iso_week(self.tz, date);
        let (mut in_day, mut in_week, mut channel_in_day, mut channel_in_week) = (0, 0, 0, 0);
        for past in self.history {
            if caps.service_exempt && past.kind == Kind::Service {
                continue;
            }
            let same_channel = u32::from(past.channel == candidate.channel);
            if day.contains(past.at) {
                in_day += 1;
                channel_in_day += same_channel;
            }
            if week.contains(past.at) {
                in_week += 1;
                channel_in_week += same_channel;
            }
        }
        let full = |cap: Option<u32>, sent: u32| cap.is_some_and(|cap| sent >= cap);
        [
            (full(caps.per_day, in_day), day.end, Rule::DailyCap),
            (full(caps.per_week, in_week), week.end, Rule::WeeklyCap),
            (
                full(channel.per_day, channel_in_day),
                day.end,
                Rule::ChannelDailyCap,
            ),
            (
                full(channel.per_week, channel_in_week),
                week.end,
                Rule::ChannelWeeklyCap,
            ),
        ]
        .into_iter()
        .find_map(|(full, until, rule)| full.then_some((until, rule)))
    }

    /// `None` when the ad fits the ratio at `at`; else `Some` of when enough older ads will have
    /// left the window, or `Some(None)` when their leaving is not enough.
    fn over_ad_ratio(&self, at: DateTime<Utc>) -> Option<Option<DateTime<Utc>>> {
        let ratio = &self.rules.ad_ratio;
        let window = delta(ratio.window);
        // The float slack keeps 3 ads of 10 at 30 % from failing on rounding.
        let fits = |(messages, ads): (u32, u32)| {
            ads <= ratio.free_ads || f64::from(ads) <= ratio.max_share * f64::from(messages) + 1e-9
        };
        let since = at
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        if fits(self.marketing_after(since)) {
            return None;
        }
        // Content leaving the window only makes it worse, so only the moments ads leave it can
        // help; the earliest that fits is when the ad may go.
        let mut gone = since;
        while let Some(oldest_ad) = self
            .history
            .iter()
            .filter(|past| past.kind == Kind::Ad && past.at > gone)
            .map(|past| past.at)
            .min()
        {
            if fits(self.marketing_after(oldest_ad)) {
                return Some(Some(later_by(oldest_ad, window)));
            }
            gone = oldest_ad;
        }
        Some(None)
    }

    /// Marketing messages and ads sent after `since`, the candidate ad included.
    fn marketing_after(&self, since: DateTime<Utc>) -> (u32, u32) {
        self.history
            .iter()
            .filter(|past| past.kind.is_marketing() && past.at > since)
            .fold((1, 1), |(messages, ads), past| {
                (messages + 1, ads + u32::from(past.kind == Kind::Ad))
            })
    }
}

/// The next start of the user's peak hour at or after `first_ready_at`, if it comes within the
/// campaign's best-time window. The user's own peak needs `min_history` events behind it; else
/// the tenant's peak hour stands in; with neither (or a tenant peak in quiet hours) the message
/// goes when ready.
fn best_time_slot(
    rules: &PressureRules,
    candidate: &Candidate,
    ctx: &UserContext,
) -> Option<DateTime<Utc>> {
    if !candidate.kind.is_marketing() {
        return None;
    }
    let window = delta(candidate.best_time?);
    // An hour in quiet hours would only be held to their end, so the best hour is one outside.
    let awake = |hour: u8| {
        let time = NaiveTime::from_hms_opt(u32::from(hour), 0, 0);
        time.is_some_and(|time| {
            rules
                .quiet_hours
                .is_none_or(|quiet| !local_time::in_window(quiet.start, quiet.end, time))
        })
    };
    let own = ctx
        .hours
        .filter(|hours| hours.total() >= u64::from(rules.best_time.min_history))
        .and_then(|hours| hours.peak_hour_among(awake));
    let hour = own.or(ctx.tenant_peak_hour.filter(|&hour| awake(hour)))?;
    let slot = local_time::next_hour(ctx.time_zone, candidate.first_ready_at, u32::from(hour));
    (slot.signed_duration_since(candidate.first_ready_at) <= window).then_some(slot)
}

fn delta(span: Duration) -> TimeDelta {
    TimeDelta::from_std(span).unwrap_or(TimeDelta::MAX)
}

fn later_by(at: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(by)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests;
