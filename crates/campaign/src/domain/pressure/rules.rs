//! The tenant's pressure rules as stored: one JSON document in which every field has a default, so
//! `{}` is the default rules. Durations are written like `"7d"`, times of day like `"22:00"`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::Channel;

/// The largest global control group a tenant may hold back from all marketing.
pub const MAX_CONTROL_GROUP_SHARE: f64 = 0.15;

const DAY: Duration = Duration::from_secs(86_400);
/// The longest ad-ratio window, which bounds the history loaded for every decision.
const MAX_AD_WINDOW: Duration = Duration::from_secs(31 * 86_400);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PressureRules {
    pub caps: Caps,
    /// `null` turns quiet hours off.
    pub quiet_hours: Option<QuietHours>,
    pub ad_ratio: AdRatio,
    /// The share of the tenant's users (0 to 0.15) who get no marketing from any campaign, so that
    /// what marketing adds can be measured against them.
    pub control_group_share: f64,
    /// The clock of users whose own time zone is not known.
    pub time_zone: Tz,
    pub best_time: BestTimeRules,
}

impl Default for PressureRules {
    fn default() -> Self {
        Self {
            caps: Caps::default(),
            quiet_hours: Some(QuietHours::default()),
            ad_ratio: AdRatio::default(),
            control_group_share: 0.0,
            time_zone: chrono_tz::Asia::Shanghai,
            best_time: BestTimeRules::default(),
        }
    }
}

/// Limits on how many messages a user receives across all the tenant's campaigns. A day is the
/// user's local calendar day, a week the local ISO week (Monday to Sunday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Caps {
    pub per_day: Option<u32>,
    pub per_week: Option<u32>,
    /// Further limits on one channel, within the overall ones.
    pub per_channel: BTreeMap<Channel, ChannelCaps>,
    /// Service messages neither count against the caps nor are held by them.
    pub service_exempt: bool,
    pub action: CapAction,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            per_day: None,
            per_week: None,
            per_channel: BTreeMap::new(),
            service_exempt: true,
            action: CapAction::Delay,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelCaps {
    pub per_day: Option<u32>,
    pub per_week: Option<u32>,
}

/// What happens to a message over a cap: it waits for the next local day or week where it fits,
/// or it is not sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapAction {
    #[default]
    Delay,
    Drop,
}

/// A daily window on the user's clock in which no messages go out. Service messages are exempt
/// unless `applies_to_service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuietHours {
    #[serde(with = "clock_time")]
    pub start: NaiveTime,
    /// The first minute messages may go again; before `start` the window runs across midnight.
    #[serde(with = "clock_time")]
    pub end: NaiveTime,
    pub action: QuietAction,
    pub applies_to_service: bool,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN),
            action: QuietAction::Hold,
            applies_to_service: false,
        }
    }
}

/// A message that comes due in quiet hours is held until they end, or not sent. One that a delay
/// (a cap, say) moved into them is always held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuietAction {
    #[default]
    Hold,
    Drop,
}

/// Ads may be at most `max_share` of the marketing messages (content and ads) a user received in
/// the rolling `window`, the ad being decided included. The first `free_ads` ads in a window pass
/// whatever the ratio: otherwise a user who has had nothing yet (one ad of one message is 100 %)
/// could never be sent an ad. With `free_ads` as a floor, more content never makes an ad less
/// welcome, which a minimum message count before the ratio applies would not guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdRatio {
    pub max_share: f64,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub free_ads: u32,
    pub action: AdRatioAction,
}

impl Default for AdRatio {
    fn default() -> Self {
        Self {
            max_share: 0.30,
            window: 7 * DAY,
            free_ads: 1,
            action: AdRatioAction::Wait,
        }
    }
}

/// An ad over the ratio waits until enough older ads have left the window, or is not sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdRatioAction {
    #[default]
    Wait,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BestTimeRules {
    /// Users with fewer recorded events than this are sent at the tenant's peak hour instead of
    /// their own.
    pub min_history: u32,
}

impl Default for BestTimeRules {
    fn default() -> Self {
        Self { min_history: 10 }
    }
}

/// A rule that cannot hold, naming the field as written in the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RulesError {
    pub field: String,
    pub reason: &'static str,
}

fn invalid(field: impl Into<String>, reason: &'static str) -> Result<(), RulesError> {
    Err(RulesError {
        field: field.into(),
        reason,
    })
}

impl PressureRules {
    pub fn validate(&self) -> Result<(), RulesError> {
        if !(0.0..=MAX_CONTROL_GROUP_SHARE).contains(&self.control_group_share) {
            return invalid("control_group_share", "must be between 0 and 0.15");
        }
        check_caps("caps", self.caps.per_day, self.caps.per_week)?;
        for (channel, caps) in &self.caps.per_channel {
            check_caps(
                &format!("caps.per_channel.{channel}"),
                caps.per_day,
                caps.per_week,
            )?;
        }
        if self.quiet_hours.is_some_and(|q| q.start == q.end) {
            return invalid(
                "quiet_hours",
                "start and end must differ (null turns quiet hours off)",
            );
        }
        if !(0.0..=1.0).contains(&self.ad_ratio.max_share) {
            return invalid("ad_ratio.max_share", "must be between 0 and 1");
        }
        if self.ad_ratio.window.is_zero() || self.ad_ratio.window > MAX_AD_WINDOW {
            return invalid(
                "ad_ratio.window",
                "must be longer than 0 and at most 31 days",
            );
        }
        Ok(())
    }

    /// How far back the caller must load the user's sends for `decide`: the current ISO week
    /// began at most 7 days (and a DST hour) ago, and the ad-ratio window may be longer.
    pub fn history_horizon(&self) -> Duration {
        (8 * DAY).max(self.ad_ratio.window)
    }
}

fn check_caps(field: &str, per_day: Option<u32>, per_week: Option<u32>) -> Result<(), RulesError> {
    const REASON: &str = "must be at least 1 (pause the campaigns to send nothing)";
    if per_day == Some(0) {
        return invalid(format!("{field}.per_day"), REASON);
    }
    if per_week == Some(0) {
        return invalid(format!("{field}.per_week"), REASON);
    }
    Ok(())
}

/// A time of day as `"22:00"` (or `"22:00:30"`).
pub(crate) mod clock_time {
    use chrono::{NaiveTime, Timelike};
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(time: &NaiveTime, serializer: S) -> Result<S::Ok, S::Error> {
        let format = if time.second() == 0 && time.nanosecond() == 0 {
            "%H:%M"
        } else {
            "%H:%M:%S"
        };
        serializer.collect_str(&time.format(format))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        NaiveTime::parse_from_str(&text, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(&text, "%H:%M:%S"))
            .map_err(|_| de::Error::custom(format!("{text:?} is not a time of day like \"22:00\"")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_is_the_defaults() {
        let rules: PressureRules = serde_json::from_str("{}").unwrap();
        assert_eq!(rules, PressureRules::default());
        rules.validate().unwrap();
        let quiet = rules.quiet_hours.unwrap();
        assert_eq!(quiet.start, NaiveTime::from_hms_opt(22, 0, 0).unwrap());
        assert_eq!(quiet.end, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
        assert_eq!(quiet.action, QuietAction::Hold);
        assert!(rules.caps.service_exempt);
        assert_eq!(rules.caps.action, CapAction::Delay);
        assert_eq!(rules.ad_ratio.window, 7 * DAY);
        assert_eq!(rules.time_zone, chrono_tz::Asia::Shanghai);
        assert_eq!(rules.best_time.min_history, 10);
        assert_eq!(rules.history_horizon(), 8 * DAY);
    }

    #[test]
    fn a_full_document_reads_and_round_trips() {
        let rules: PressureRules = serde_json::from_str(
            r#"{
                "caps": {"per_day": 3, "per_week": 10, "action": "drop", "service_exempt": false,
                         "per_channel": {"sms": {"per_day": 1}}},
                "quiet_hours": {"start": "21:30", "end": "07:00", "action": "drop",
                                "applies_to_service": true},
                "ad_ratio": {"max_share": 0.25, "window": "14d", "free_ads": 0, "action": "drop"},
                "control_group_share": 0.05,
                "time_zone": "America/New_York",
                "best_time": {"min_history": 20}
            }"#,
        )
        .unwrap();
        rules.validate().unwrap();
        assert_eq!(rules.caps.per_channel[&Channel::Sms].per_day, Some(1));
        assert_eq!(
            rules.quiet_hours.unwrap().start,
            NaiveTime::from_hms_opt(21, 30, 0).unwrap()
        );
        assert_eq!(rules.ad_ratio.window, 14 * DAY);
        assert_eq!(rules.history_horizon(), 14 * DAY);
        assert_eq!(rules.time_zone, chrono_tz::America::New_York);
        let json = serde_json::to_value(&rules).unwrap();
        assert_eq!(json["quiet_hours"]["start"], "21:30");
        assert_eq!(json["caps"]["per_channel"]["sms"]["per_day"], 1);
        let back: PressureRules = serde_json::from_value(json).unwrap();
        assert_eq!(back, rules);
    }

    #[test]
    fn null_quiet_hours_turns_them_off() {
        let rules: PressureRules = serde_json::from_str(r#"{"quiet_hours": null}"#).unwrap();
        assert_eq!(rules.quiet_hours, None);
        let back: PressureRules =
            serde_json::from_str(&serde_json::to_string(&rules).unwrap()).unwrap();
        assert_eq!(back.quiet_hours, None);
    }

    #[test]
    fn unreadable_documents_are_refused() {
        for bad in [
            r#"{"quiet_hours": {"start": "10pm"}}"#,
            r#"{"time_zone": "Mars/Olympus"}"#,
            r#"{"caps": {"per_channel": {"billboard": {"per_day": 1}}}}"#,
            r#"{"ad_ratio": {"window": "a week"}}"#,
            r#"{"cap": {}}"#,
        ] {
            assert!(serde_json::from_str::<PressureRules>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let field = |json: &str| {
            let rules: PressureRules = serde_json::from_str(json).unwrap();
            rules.validate().unwrap_err().field
        };
        assert_eq!(
            field(r#"{"control_group_share": 0.2}"#),
            "control_group_share"
        );
        assert_eq!(
            field(r#"{"control_group_share": -0.01}"#),
            "control_group_share"
        );
        assert_eq!(field(r#"{"caps": {"per_week": 0}}"#), "caps.per_week");
        assert_eq!(
            field(r#"{"caps": {"per_channel": {"push": {"per_day": 0}}}}"#),
            "caps.per_channel.push.per_day"
        );
        assert_eq!(
            field(r#"{"quiet_hours": {"start": "08:00", "end": "08:00"}}"#),
            "quiet_hours"
        );
        assert_eq!(
            field(r#"{"ad_ratio": {"max_share": 1.5}}"#),
            "ad_ratio.max_share"
        );
        assert_eq!(
            field(r#"{"ad_ratio": {"window": "60d"}}"#),
            "ad_ratio.window"
        );
        let error = PressureRules {
            control_group_share: 0.5,
            ..PressureRules::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "control_group_share: must be between 0 and 0.15"
        );
    }
}
