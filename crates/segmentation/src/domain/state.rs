//! A profile as the service keeps it, and how one canonical event changes it.
//!
//! [`ProfileState`] is the domain [`Profile`] (what rules, stages and RFM look at) plus what only the
//! service needs: order ids for refunds and merges, product categories, the active-hours histogram
//! and the user ids merged into it. [`ProfileState::apply`] folds one event in; the caller has
//! already made sure the event is new, so nothing here deduplicates events.

use std::collections::BTreeSet;

use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Platform, SocialEvent};

use super::profile::{Order, PLATFORMS, Profile};
use super::tags::{Behaviour, NeedTagRule, apply_attribute_tags, behaviour_tag, need_tags};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileState {
    pub profile: Profile,
    /// `order_ids[i]` is the id of `profile.orders[i]`.
    pub order_ids: Vec<String>,
    pub categories_bought: BTreeSet<String>,
    pub categories_clicked: BTreeSet<String>,
    /// Interactions per hour of the day in the tenant's time zone.
    pub active_hours: [u64; 24],
    pub merged_user_ids: Vec<String>,
}

/// What an event did beyond the profile, for the audience KPIs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Not following before, following now.
    pub new_follower: bool,
    pub unfollowed: bool,
    pub interaction: bool,
    pub impression: bool,
    /// The tenant-local day of the event (days since 1970-01-01).
    pub local_day: i64,
}

/// Microseconds since the epoch of a protobuf timestamp; 0 when unset.
pub fn micros(at: Option<&socialops_proto::Timestamp>) -> i64 {
    socialops_proto::micros_of(at).unwrap_or(0)
}

/// The tenant-local calendar day of `at_us`, as days since 1970-01-01.
pub fn local_day(at_us: i64, tz: Tz) -> i64 {
    let local = tz.timestamp_micros(at_us).single().map(|t| t.naive_local());
    local.map_or(at_us.div_euclid(super::DAY_US), |t| {
        t.and_utc().timestamp().div_euclid(86_400)
    })
}

/// The tenant-local hour of the day of `at_us`.
pub fn local_hour(at_us: i64, tz: Tz) -> usize {
    tz.timestamp_micros(at_us)
        .single()
        .map_or(0, |t| t.hour() as usize)
}

/// The UTC instant at which the tenant-local day `day` starts.
pub fn local_day_start_us(day: i64, tz: Tz) -> i64 {
    let naive = chrono::DateTime::from_timestamp(day * 86_400, 0)
        .unwrap_or_default()
        .naive_utc();
    tz.from_local_datetime(&naive)
        .earliest()
        .map_or(day * super::DAY_US, |t| t.timestamp_micros())
}

fn platform_name(platform: i32) -> Option<&'static str> {
    let index = match Platform::try_from(platform).ok()? {
        Platform::Unspecified => return None,
        Platform::Wechat => 0,
        Platform::Weibo => 1,
        Platform::Douyin => 2,
        Platform::Xiaohongshu => 3,
        Platform::Bilibili => 4,
        Platform::Zhihu => 5,
        Platform::Other => 6,
    };
    Some(PLATFORMS[index])
}

/// Whether an event is the user doing something with the brand (as opposed to being shown content,
/// being identified, leaving, or getting money back: none of those keeps a customer active).
fn is_interaction(payload: &Payload) -> bool {
    !matches!(
        payload,
        Payload::ContentImpression(_)
            | Payload::Identify(_)
            | Payload::Unfollow(_)
            | Payload::OrderRefunded(_)
    )
}

impl ProfileState {
    pub fn new(tenant_id: &str, user_id: &str) -> Self {
        Self {
            profile: Profile::new(tenant_id, user_id),
            ..Self::default()
        }
    }

    /// Folds one new event into the profile.
    pub fn apply(&mut self, event: &SocialEvent, need_rules: &[NeedTagRule], tz: Tz) -> Applied {
        let at_us = micros(event.occurred_at.as_ref());
        let p = &mut self.profile;
        let mut applied = Applied {
            local_day: local_day(at_us, tz),
            ..Applied::default()
        };
        p.first_seen_at_us = Some(p.first_seen_at_us.map_or(at_us, |t| t.min(at_us)));
        p.last_seen_at_us = Some(p.last_seen_at_us.map_or(at_us, |t| t.max(at_us)));
        if let Some(name) = platform_name(event.platform) {
            p.platforms.insert(name.to_owned());
        }
        let Some(payload) = &event.payload else {
            return applied;
        };
        *p.counts.entry(payload.type_name().to_owned()).or_insert(0) += 1;
        if is_interaction(payload) {
            applied.interaction = true;
            p.last_interaction_at_us =
                Some(p.last_interaction_at_us.map_or(at_us, |t| t.max(at_us)));
            self.active_hours[local_hour(at_us, tz)] += 1;
        }
        match payload {
            Payload::Follow(_) => {
                applied.new_follower = !p.following;
                p.following = true;
            }
            Payload::Unfollow(_) => {
                applied.unfollowed = p.following;
                p.following = false;
            }
            Payload::Comment(c) => {
                if !c.from_brand {
                    p.tags.extend(need_tags(&c.text, need_rules));
                }
            }
            Payload::DirectMessage(m) => {
                if !m.from_brand {
                    p.tags.extend(need_tags(&m.text, need_rules));
                }
            }
            Payload::Mention(m) => p.tags.extend(need_tags(&m.text, need_rules)),
            Payload::ContentImpression(_) => applied.impression = true,
            Payload::ContentClick(click) => {
                if let Some(tag) = behaviour_tag(Behaviour::Clicked, &click.category) {
                    self.categories_clicked.insert(click.category.clone());
                    p.tags.insert(tag);
                }
            }
            Payload::OrderPlaced(order) => {
                // An order id seen before (the same order under two events) counts once; an order
                // without an id is its event.
                let order_id = if order.order_id.is_empty() {
                    &event.event_id
                } else {
                    &order.order_id
                };
                if !self.order_ids.contains(order_id) {
                    self.order_ids.push(order_id.clone());
                    p.orders.push(Order {
                        at_us,
                        amount_cents: order.amount_cents,
                        refunded_cents: 0,
                    });
                    p.orders_count += 1;
                    p.orders_total_cents = p.orders_total_cents.saturating_add(order.amount_cents);
                    p.first_order_at_us = Some(p.first_order_at_us.map_or(at_us, |t| t.min(at_us)));
                    p.last_order_at_us = Some(p.last_order_at_us.map_or(at_us, |t| t.max(at_us)));
                }
                for item in &order.items {
                    if let Some(tag) = behaviour_tag(Behaviour::Bought, &item.category) {
                        self.categories_bought.insert(item.category.clone());
                        p.tags.insert(tag);
                    }
                }
            }
            Payload::OrderRefunded(refund) => {
                p.refunded_cents = p.refunded_cents.saturating_add(refund.amount_cents);
                if let Some(i) = self.order_ids.iter().position(|id| *id == refund.order_id) {
                    let order = &mut p.orders[i];
                    order.refunded_cents = order
                        .refunded_cents
                        .saturating_add(refund.amount_cents)
                        .min(order.amount_cents);
                }
            }
            Payload::Identify(_) => {
                apply_attribute_tags(
                    &mut p.tags,
                    event
                        .attributes
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                );
            }
            Payload::PostPublished(_)
            | Payload::Like(_)
            | Payload::Share(_)
            | Payload::CouponRedeemed(_)
            | Payload::Referral(_) => {}
        }
        applied
    }

    /// Folds `other` (another profile of the same person) into this one. Events are unique per tenant,
    /// so counts add up; an order present in both (same id) counts once.
    pub fn merge(&mut self, other: ProfileState) {
        let (p, o) = (&mut self.profile, other.profile);
        for (event_type, n) in o.counts {
            *p.counts.entry(event_type).or_insert(0) += n;
        }
        for (id, order) in other.order_ids.into_iter().zip(o.orders) {
            if self.order_ids.contains(&id) {
                continue;
            }
            self.order_ids.push(id);
            p.orders.push(order);
            p.orders_count += 1;
            p.orders_total_cents = p.orders_total_cents.saturating_add(order.amount_cents);
        }
        p.refunded_cents = p.refunded_cents.saturating_add(o.refunded_cents);
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        p.first_seen_at_us = min(p.first_seen_at_us, o.first_seen_at_us);
        p.first_order_at_us = min(p.first_order_at_us, o.first_order_at_us);
        p.last_seen_at_us = p.last_seen_at_us.max(o.last_seen_at_us);
        p.last_interaction_at_us = p.last_interaction_at_us.max(o.last_interaction_at_us);
        p.last_order_at_us = p.last_order_at_us.max(o.last_order_at_us);
        p.platforms.extend(o.platforms);
        p.tags.extend(o.tags);
        p.following |= o.following;
        self.categories_bought.extend(other.categories_bought);
        self.categories_clicked.extend(other.categories_clicked);
        for (hour, n) in other.active_hours.iter().enumerate() {
            self.active_hours[hour] += n;
        }
        self.merged_user_ids.push(o.user_id);
        self.merged_user_ids.extend(other.merged_user_ids);
    }
}

#[cfg(test)]
mod tests {
    use socialops_proto::Timestamp;
    use socialops_proto::events::v1::{
        Comment, Follow, OrderItem, OrderPlaced, OrderRefunded, Unfollow,
    };

    use super::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn event(id: &str, seconds: i64, payload: Payload) -> SocialEvent {
        SocialEvent {
            event_id: id.into(),
            tenant_id: "t".into(),
            user_id: "u".into(),
            platform: Platform::Douyin as i32,
            occurred_at: Some(Timestamp { seconds, nanos: 0 }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn order(id: &str, seconds: i64, order_id: &str, cents: i64) -> SocialEvent {
        event(
            id,
            seconds,
            Payload::OrderPlaced(OrderPlaced {
                order_id: order_id.into(),
                amount_cents: cents,
                items: vec![OrderItem {
                    category: "Skincare".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        )
    }

    #[test]
    fn orders_refunds_and_follow_state() {
        let mut s = ProfileState::new("t", "u");
        let a = s.apply(
            &event("e1", 100, Payload::Follow(Follow::default())),
            &[],
            SHANGHAI,
        );
        assert!(a.new_follower && a.interaction);
        assert!(
            !s.apply(
                &event("e2", 101, Payload::Follow(Follow::default())),
                &[],
                SHANGHAI
            )
            .new_follower
        );
        s.apply(&order("e3", 200, "o1", 5_000), &[], SHANGHAI);
        s.apply(&order("e4", 300, "o1", 5_000), &[], SHANGHAI);
        s.apply(
            &event(
                "e5",
                400,
                Payload::OrderRefunded(OrderRefunded {
                    order_id: "o1".into(),
                    amount_cents: 1_000,
                    ..Default::default()
                }),
            ),
            &[],
            SHANGHAI,
        );
        let u = s.apply(
            &event("e6", 500, Payload::Unfollow(Unfollow::default())),
            &[],
            SHANGHAI,
        );
        assert!(u.unfollowed && !u.interaction);
        let p = &s.profile;
        assert_eq!(
            (p.orders_count, p.orders_total_cents, p.refunded_cents),
            (1, 5_000, 1_000)
        );
        assert_eq!(p.orders[0].net_cents(), 4_000);
        assert_eq!(p.count("order_placed"), 2);
        assert_eq!(p.first_order_at_us, Some(200_000_000));
        assert!(!p.following);
        assert!(p.tags.contains("bought:skincare"));
        assert!(p.platforms.contains("douyin"));
        assert_eq!(p.last_interaction_at_us, Some(300_000_000));
    }

    #[test]
    fn comments_get_need_tags_and_hours_follow_the_time_zone() {
        let rules = [NeedTagRule::new("敏感肌", "need:sensitive-skin").unwrap()];
        let mut s = ProfileState::new("t", "u");
        // 1970-01-01T01:00Z is 09:00 in Shanghai.
        let comment = Payload::Comment(Comment {
            text: "我是敏感肌".into(),
            ..Default::default()
        });
        s.apply(&event("e1", 3_600, comment), &rules, SHANGHAI);
        assert!(s.profile.tags.contains("need:sensitive-skin"));
        assert_eq!(s.active_hours[9], 1);
        assert_eq!(local_day(23 * 3_600 * 1_000_000, SHANGHAI), 1);
        assert_eq!(local_day_start_us(1, SHANGHAI), 16 * 3_600 * 1_000_000);
    }

    #[test]
    fn merge_adds_counts_and_keeps_shared_orders_once() {
        let mut a = ProfileState::new("t", "a");
        a.apply(&order("e1", 100, "o1", 1_000), &[], SHANGHAI);
        let mut b = ProfileState::new("t", "b");
        b.apply(&order("e2", 50, "o1", 1_000), &[], SHANGHAI);
        b.apply(&order("e3", 300, "o2", 2_000), &[], SHANGHAI);
        a.merge(b);
        let p = &a.profile;
        assert_eq!((p.orders_count, p.orders_total_cents), (2, 3_000));
        assert_eq!(
            p.count("order_placed"),
            3,
            "three distinct events were seen"
        );
        assert_eq!(p.first_seen_at_us, Some(50_000_000));
        assert_eq!(p.last_order_at_us, Some(300_000_000));
        assert_eq!(a.merged_user_ids, ["b"]);
    }
}
