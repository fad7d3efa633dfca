//! A tenant's own settings: pressure rules, banned words, when a crisis pauses what, the FAQ
//! cooldown. Stored as one JSON document; every field has a default, so `{}` is valid.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::campaign::Kind;
use super::pressure::PressureRules;

/// Crisis severity as `socialops.alerts.v1` numbers it (low 1 … critical 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

impl Severity {
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Low),
            2 => Some(Self::Medium),
            3 => Some(Self::High),
            4 => Some(Self::Critical),
            _ => None,
        }
    }

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    pub pressure: PressureRules,
    /// Words no variant of this tenant may contain, matched like the built-in review list.
    pub banned_words: Vec<String>,
    /// The lowest crisis severity that pauses `ad` campaigns.
    pub pause_ads_at: Severity,
    /// The lowest crisis severity that pauses `content` campaigns too; `None` never pauses them.
    pub pause_content_at: Option<Severity>,
    /// An FAQ answer is not repeated in the same conversation for the same question within this.
    #[serde(with = "humantime_serde")]
    pub faq_cooldown: Duration,
    /// An order counts as a conversion of the user's last touch within this long before it.
    #[serde(with = "humantime_serde")]
    pub attribution_window: Duration,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            pressure: PressureRules::default(),
            banned_words: Vec::new(),
            pause_ads_at: Severity::High,
            pause_content_at: Some(Severity::Critical),
            faq_cooldown: Duration::from_secs(24 * 3_600),
            attribution_window: Duration::from_secs(7 * 24 * 3_600),
        }
    }
}

impl TenantSettings {
    /// Whether an open crisis of `severity` pauses campaigns of `kind`. Service messages never pause.
    pub fn pauses(&self, kind: Kind, severity: Severity) -> bool {
        match kind {
            Kind::Service => false,
            Kind::Ad => severity >= self.pause_ads_at,
            Kind::Content => self.pause_content_at.is_some_and(|at| severity >= at),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.pressure
            .validate()
            .map_err(|e| format!("pressure: {e}"))?;
        if self.banned_words.len() > 10_000 {
            return Err("banned_words: at most 10000 words".into());
        }
        if let Some(word) = self
            .banned_words
            .iter()
            .find(|w| w.trim().is_empty() || w.chars().count() > 64)
        {
            return Err(format!("banned_words: {word:?} must be 1 to 64 characters"));
        }
        if self
            .pause_content_at
            .is_some_and(|at| at < self.pause_ads_at)
        {
            return Err("pause_content_at: must not be below pause_ads_at".into());
        }
        Ok(())
    }
}

/// The key a send is known by everywhere, and passed to the platform as its idempotency key:
/// `tenant:campaign:step:user:occurrence`.
pub fn send_key(tenant: &str, campaign: &str, step: &str, user: &str, occurrence: &str) -> String {
    format!("{tenant}:{campaign}:{step}:{user}:{occurrence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crisis_pauses_ads_at_high_content_at_critical_never_service() {
        let settings = TenantSettings::default();
        assert!(!settings.pauses(Kind::Ad, Severity::Medium));
        assert!(settings.pauses(Kind::Ad, Severity::High));
        assert!(!settings.pauses(Kind::Content, Severity::High));
        assert!(settings.pauses(Kind::Content, Severity::Critical));
        assert!(!settings.pauses(Kind::Service, Severity::Critical));
    }

    #[test]
    fn empty_document_is_the_defaults() {
        let settings: TenantSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(
            serde_json::to_value(&settings).unwrap(),
            serde_json::to_value(TenantSettings::default()).unwrap()
        );
        settings.validate().unwrap();
        let bad: TenantSettings =
            serde_json::from_str(r#"{"pause_ads_at":"critical","pause_content_at":"high"}"#)
                .unwrap();
        assert!(bad.validate().unwrap_err().contains("pause_content_at"));
    }
}
