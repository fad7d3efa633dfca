//! Events as a brand's connectors would send them, and sums over what the services report.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socialops_proto::Timestamp;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Comment, Follow, OrderPlaced, Platform, SocialEvent};
use socialops_proto::sentiment::v1::HourCount;

/// `minutes` before now.
pub fn ago(minutes: u64) -> Timestamp {
    let at = SystemTime::now() - Duration::from_secs(minutes * 60);
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap();
    Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap(),
        nanos: 0,
    }
}

fn event(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    platform: Platform,
    at: Timestamp,
    payload: Payload,
) -> SocialEvent {
    SocialEvent {
        event_id: event_id.into(),
        tenant_id: tenant.into(),
        platform: platform as i32,
        user_id: user_id.into(),
        occurred_at: Some(at),
        payload: Some(payload),
        ..Default::default()
    }
}

pub fn follow(tenant: &str, event_id: &str, user_id: &str, at: Timestamp) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        Platform::Xiaohongshu,
        at,
        Payload::Follow(Follow::default()),
    )
}

pub fn comment(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    at: Timestamp,
    text: &str,
) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        Platform::Xiaohongshu,
        at,
        Payload::Comment(Comment {
            comment_id: format!("cmt-{event_id}"),
            post_id: "post-65a1f3".into(),
            text: text.into(),
            author_follower_count: 1_284,
            ..Default::default()
        }),
    )
}

pub fn order(
    tenant: &str,
    event_id: &str,
    user_id: &str,
    at: Timestamp,
    amount_cents: i64,
) -> SocialEvent {
    event(
        tenant,
        event_id,
        user_id,
        Platform::Wechat,
        at,
        Payload::OrderPlaced(OrderPlaced {
            order_id: format!("ord-{event_id}"),
            amount_cents,
            currency: "CNY".into(),
            ..Default::default()
        }),
    )
}

/// Label counts summed over a sentiment timeline: (negative, neutral, positive).
pub fn total(hours: &[HourCount]) -> (u64, u64, u64) {
    hours.iter().fold((0, 0, 0), |(n, u, p), h| {
        (n + h.negative, u + h.neutral, p + h.positive)
    })
}
