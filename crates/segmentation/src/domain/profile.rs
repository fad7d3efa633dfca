use std::collections::{BTreeMap, BTreeSet};

use super::lifecycle::Stage;
use super::rfm::{RfmScore, ValueTier};

/// Event types as counted in [`Profile::counts`]: the canonical event's payload names.
pub const EVENT_TYPES: &[&str] = &[
    "post_published",
    "comment",
    "mention",
    "like",
    "share",
    "follow",
    "unfollow",
    "direct_message",
    "content_impression",
    "content_click",
    "order_placed",
    "order_refunded",
    "coupon_redeemed",
    "referral",
    "identify",
];

/// Platform names as kept in [`Profile::platforms`]: the canonical `Platform` enum, lower case.
pub const PLATFORMS: &[&str] = &[
    "wechat",
    "weibo",
    "douyin",
    "xiaohongshu",
    "bilibili",
    "zhihu",
    "other",
];

/// One order, as far as scoring needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub at_us: i64,
    pub amount_cents: i64,
    pub refunded_cents: i64,
}

impl Order {
    pub fn net_cents(&self) -> i64 {
        self.amount_cents.saturating_sub(self.refunded_cents)
    }
}

/// Everything the segment rules, the lifecycle and RFM look at for one user of one tenant.
///
/// Lifetime aggregates (`orders_count`, `orders_total_cents`, `refunded_cents`, first and last order)
/// cover every order ever placed; `orders` must hold at least the orders inside the longest window a
/// score or stage looks at (RFM, loyalty), which is what windowed frequency and monetary values need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub tenant_id: String,
    pub user_id: String,
    pub stage: Stage,
    pub tier: ValueTier,
    /// `None` until the user has ordered.
    pub rfm: Option<RfmScore>,
    pub tags: BTreeSet<String>,
    /// Events seen, by event type (see [`EVENT_TYPES`]); an absent type counts zero.
    pub counts: BTreeMap<String, u64>,
    pub orders_count: u64,
    pub orders_total_cents: i64,
    pub refunded_cents: i64,
    pub orders: Vec<Order>,
    pub first_seen_at_us: Option<i64>,
    pub last_seen_at_us: Option<i64>,
    pub last_interaction_at_us: Option<i64>,
    pub first_order_at_us: Option<i64>,
    pub last_order_at_us: Option<i64>,
    /// Platforms the user was seen on (see [`PLATFORMS`]).
    pub platforms: BTreeSet<String>,
    pub following: bool,
}

impl Profile {
    pub fn new(tenant_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            user_id: user_id.into(),
            ..Self::default()
        }
    }

    pub fn count(&self, event_type: &str) -> u64 {
        self.counts.get(event_type).copied().unwrap_or(0)
    }

    /// The later of the last order and the last interaction.
    pub fn last_activity_at_us(&self) -> Option<i64> {
        self.last_order_at_us.max(self.last_interaction_at_us)
    }

    /// Orders placed in `[since_us, until_us]`.
    pub fn orders_between(&self, since_us: i64, until_us: i64) -> impl Iterator<Item = &Order> {
        self.orders
            .iter()
            .filter(move |o| o.at_us >= since_us && o.at_us <= until_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_counts_are_zero_and_activity_is_the_later_time() {
        let mut p = Profile::new("t1", "u1");
        p.counts.insert("comment".into(), 3);
        assert_eq!(p.count("comment"), 3);
        assert_eq!(p.count("like"), 0);
        assert_eq!(p.last_activity_at_us(), None);
        p.last_interaction_at_us = Some(10);
        assert_eq!(p.last_activity_at_us(), Some(10));
        p.last_order_at_us = Some(5);
        assert_eq!(p.last_activity_at_us(), Some(10));
        p.last_order_at_us = Some(20);
        assert_eq!(p.last_activity_at_us(), Some(20));
    }

    #[test]
    fn orders_between_is_inclusive() {
        let mut p = Profile::new("t1", "u1");
        for at_us in [1, 5, 10] {
            p.orders.push(Order {
                at_us,
                amount_cents: 100,
                refunded_cents: 30,
            });
        }
        assert_eq!(p.orders_between(5, 10).count(), 2);
        assert_eq!(p.orders[0].net_cents(), 70);
    }
}
