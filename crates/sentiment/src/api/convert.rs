//! Store and domain types to and from their wire form.

use socialops_proto::Timestamp;
use socialops_proto::sentiment::v1 as wire;

use crate::domain::{Label, Score};
use crate::error::SentimentError;
use crate::store::LabelCounts;
use crate::store::crises::{Crisis, Step};
use crate::store::mentions::Mention;
use crate::store::replies::UserMessage;
use crate::store::watchlists::Watchlist;
use socialops_proto::{micros_of as micros, timestamp};

pub fn label(label: Label) -> i32 {
    match label {
        Label::Negative => wire::Label::Negative as i32,
        Label::Neutral => wire::Label::Neutral as i32,
        Label::Positive => wire::Label::Positive as i32,
    }
}

pub fn score(score: &Score) -> wire::TextScore {
    wire::TextScore {
        polarity: score.polarity,
        label: label(score.label),
        confidence: score.confidence,
    }
}

pub fn watchlist(w: &Watchlist) -> wire::Watchlist {
    wire::Watchlist {
        watchlist_id: w.watchlist_id.clone(),
        tenant_id: w.tenant_id.clone(),
        name: w.name.clone(),
        brands: w.terms.brands.clone(),
        products: w.terms.products.clone(),
        risk_words: w.terms.risk_words.clone(),
        created_at: Some(timestamp(w.created_at_us)),
        updated_at: Some(timestamp(w.updated_at_us)),
    }
}

pub fn crisis(c: &Crisis, steps: &[Step]) -> wire::Crisis {
    wire::Crisis {
        crisis_id: c.crisis_id.clone(),
        tenant_id: c.tenant_id.clone(),
        watchlist_id: c.watchlist_id.clone(),
        watchlist_name: c.watchlist_name.clone(),
        state: c.state.code(),
        severity: c.severity.code(),
        detected_at: Some(timestamp(c.clock.detected_at_us)),
        respond_by: Some(timestamp(c.clock.respond_by_us)),
        num_mentions: c.num_mentions,
        num_negative: c.num_negative,
        total_reach: c.total_reach,
        half_time_reminded: c.clock.half_time_reminded,
        breached: c.clock.breached,
        steps: steps.iter().map(step).collect(),
        reason: c.reason.clone(),
        negative_share: c.negative_share(),
        updated_at: Some(timestamp(c.updated_at_us)),
    }
}

fn step(s: &Step) -> wire::CrisisStep {
    wire::CrisisStep {
        kind: s.kind,
        actor: s.actor.clone(),
        note: s.note.clone(),
        severity: s.severity.code(),
        at: Some(timestamp(s.at_us)),
    }
}

pub fn mention(m: &Mention) -> wire::CrisisMention {
    wire::CrisisMention {
        event_id: m.event_id.clone(),
        platform: m.platform,
        author: m.author.clone(),
        text: m.text.clone(),
        polarity: m.polarity,
        label: label(m.label),
        reach: m.reach,
        occurred_at: Some(timestamp(m.occurred_at_us)),
        risk: m.risk,
    }
}

pub fn unanswered(m: &UserMessage, now_us: i64) -> wire::UnansweredMessage {
    wire::UnansweredMessage {
        message_id: m.message_id.clone(),
        event_id: m.event_id.clone(),
        platform: m.platform,
        user_id: m.user_id.clone(),
        text: m.text.clone(),
        polarity: m.polarity,
        label: label(m.label),
        reach: m.reach,
        occurred_at: Some(timestamp(m.occurred_at_us)),
        waiting_seconds: u64::try_from((now_us - m.occurred_at_us) / 1_000_000).unwrap_or(0),
        conversation_id: m.conversation_id.clone(),
    }
}

pub fn window(start_us: i64, counts: &LabelCounts) -> wire::TimelineWindow {
    wire::TimelineWindow {
        start: Some(timestamp(start_us)),
        negative: counts.negative,
        neutral: counts.neutral,
        positive: counts.positive,
    }
}

pub fn hour(start_us: i64, counts: &LabelCounts) -> wire::HourCount {
    wire::HourCount {
        hour: Some(timestamp(start_us)),
        negative: counts.negative,
        neutral: counts.neutral,
        positive: counts.positive,
    }
}

/// A page size: `default` when unset, at most `max`.
pub fn limit(requested: u32, default: usize, max: usize) -> usize {
    match requested {
        0 => default,
        n => (n as usize).min(max),
    }
}

/// A half-open time range from optional bounds; `to` must come after `from`.
pub fn range(
    from: Option<&Timestamp>,
    to: Option<&Timestamp>,
    default_from: i64,
    default_to: i64,
) -> Result<(i64, i64), SentimentError> {
    let from_us = micros(from).unwrap_or(default_from);
    let to_us = micros(to).unwrap_or(default_to);
    if to_us <= from_us {
        return Err(SentimentError::InvalidArgument(
            "to: must be after from".into(),
        ));
    }
    Ok((from_us, to_us))
}

/// Windows for a crisis timeline over `span_us`: whole buckets, at most `max_windows` of them.
pub fn timeline_window_us(bucket_us: i64, span_us: i64, max_windows: i64) -> i64 {
    let per_window = bucket_us.max(1) * max_windows.max(1);
    let buckets = (span_us.max(1) + per_window - 1) / per_window;
    bucket_us.max(1) * buckets.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_windows_are_whole_buckets_and_few() {
        let five_minutes = 300_000_000;
        assert_eq!(timeline_window_us(five_minutes, 1, 96), five_minutes);
        assert_eq!(
            timeline_window_us(five_minutes, 96 * five_minutes, 96),
            five_minutes
        );
        assert_eq!(
            timeline_window_us(five_minutes, 96 * five_minutes + 1, 96),
            2 * five_minutes
        );
    }

    #[test]
    fn ranges_default_and_must_be_ordered() {
        assert_eq!(range(None, None, 5, 10).unwrap(), (5, 10));
        let at = |s| Timestamp {
            seconds: s,
            nanos: 0,
        };
        assert!(range(Some(&at(10)), Some(&at(10)), 0, 0).is_err());
        assert_eq!(
            range(Some(&at(1)), None, 0, 9_000_000).unwrap(),
            (1_000_000, 9_000_000)
        );
    }

    #[test]
    fn limits_default_and_cap() {
        assert_eq!(limit(0, 100, 500), 100);
        assert_eq!(limit(7, 100, 500), 7);
        assert_eq!(limit(9_000, 100, 500), 500);
    }
}
