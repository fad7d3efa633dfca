//! Lifecycle stages, computed from a profile and the clock.
//!
//! A stage is a function of the profile and `now`, never stored state that events push around, so a
//! transition caused by the passage of time (a quiet customer becoming churned) is found by
//! evaluating the same profile at a later `now`, and [`next_stage_change_at`] says when that will be.
//!
//! Rules, first match wins:
//! 1. never ordered → **potential** (interacted or seen, never bought);
//! 2. no order and no interaction for `churn_after_days` → **churned**;
//! 3. `loyal_min_orders` or more orders in the last `loyal_window_days` → **loyal**;
//! 4. first order less than `new_within_days` ago → **new**;
//! 5. otherwise → **active** (a buyer who ordered or interacted within `churn_after_days`).
//!
//! Churn is a customer state: someone who never bought stays potential however long they are quiet.
//! A churned customer who comes back — an order or an interaction — is active again (or loyal, if
//! the return brings them to enough recent orders).

use std::fmt;

use super::DAY_US;
use super::profile::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Stage {
    #[default]
    Potential,
    New,
    Active,
    Loyal,
    Churned,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Potential,
        Stage::New,
        Stage::Active,
        Stage::Loyal,
        Stage::Churned,
    ];

    /// The name used on the wire and in segment rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Potential => "potential",
            Stage::New => "new",
            Stage::Active => "active",
            Stage::Loyal => "loyal",
            Stage::Churned => "churned",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-tenant stage thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleThresholds {
    pub new_within_days: u32,
    pub loyal_min_orders: u32,
    pub loyal_window_days: u32,
    pub churn_after_days: u32,
}

impl Default for LifecycleThresholds {
    fn default() -> Self {
        Self {
            new_within_days: 30,
            loyal_min_orders: 3,
            loyal_window_days: 180,
            churn_after_days: 90,
        }
    }
}

fn days_us(days: u32) -> i64 {
    i64::from(days) * DAY_US
}

/// The stage `profile` is in at `now_us`. `profile.orders` must hold at least the orders of the last
/// `loyal_window_days`.
pub fn stage_at(profile: &Profile, thresholds: &LifecycleThresholds, now_us: i64) -> Stage {
    let Some(first_order_us) = profile.first_order_at_us else {
        return Stage::Potential;
    };
    let last_activity_us = profile.last_activity_at_us().unwrap_or(first_order_us);
    if now_us.saturating_sub(last_activity_us) >= days_us(thresholds.churn_after_days) {
        return Stage::Churned;
    }
    let loyal_since_us = now_us.saturating_sub(days_us(thresholds.loyal_window_days));
    let recent_orders = profile
        .orders
        .iter()
        .filter(|o| o.at_us > loyal_since_us && o.at_us <= now_us)
        .count();
    if thresholds.loyal_min_orders > 0 && recent_orders >= thresholds.loyal_min_orders as usize {
        return Stage::Loyal;
    }
    if now_us.saturating_sub(first_order_us) < days_us(thresholds.new_within_days) {
        return Stage::New;
    }
    Stage::Active
}

/// The earliest moment after `now_us` at which [`stage_at`] gives a different stage if nothing else
/// happens to the profile, or `None` if the stage is settled (potential, or churned). A sweep can
/// index profiles by this instead of re-evaluating every profile on every tick.
pub fn next_stage_change_at(
    profile: &Profile,
    thresholds: &LifecycleThresholds,
    now_us: i64,
) -> Option<i64> {
    let first_order_us = profile.first_order_at_us?;
    let current = stage_at(profile, thresholds, now_us);
    let last_activity_us = profile.last_activity_at_us().unwrap_or(first_order_us);
    let mut candidates: Vec<i64> = profile
        .orders
        .iter()
        .map(|o| {
            o.at_us
                .saturating_add(days_us(thresholds.loyal_window_days))
        })
        .collect();
    candidates.push(first_order_us.saturating_add(days_us(thresholds.new_within_days)));
    candidates.push(last_activity_us.saturating_add(days_us(thresholds.churn_after_days)));
    candidates.retain(|&at| at > now_us);
    candidates.sort_unstable();
    candidates.dedup();
    // The stage only changes at one of these instants, so the first one that differs is the answer.
    candidates
        .into_iter()
        .find(|&at| stage_at(profile, thresholds, at) != current)
}

/// A move between two stages, published on the profiles topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    pub from: Stage,
    pub to: Stage,
}

impl Transition {
    /// A churned customer coming back.
    pub fn is_return(&self) -> bool {
        self.from == Stage::Churned
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.from, self.to)
    }
}

/// `None` when the stage did not change.
pub fn transition(old: Stage, new: Stage) -> Option<Transition> {
    (old != new).then_some(Transition { from: old, to: new })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::profile::Order;

    const T0: i64 = 1_700_000_000_000_000;

    fn day(n: i64) -> i64 {
        T0 + n * DAY_US
    }

    fn interact(p: &mut Profile, at_us: i64) {
        p.first_seen_at_us.get_or_insert(at_us);
        p.last_seen_at_us = Some(at_us);
        p.last_interaction_at_us = Some(at_us);
    }

    fn buy(p: &mut Profile, at_us: i64) {
        p.first_seen_at_us.get_or_insert(at_us);
        p.last_seen_at_us = Some(at_us);
        p.first_order_at_us.get_or_insert(at_us);
        p.last_order_at_us = Some(at_us);
        p.orders_count += 1;
        p.orders_total_cents += 10_000;
        p.orders.push(Order {
            at_us,
            amount_cents: 10_000,
            refunded_cents: 0,
        });
    }

    /// Re-evaluates at `now` as both the event path and the sweep do, recording any transition.
    fn step(p: &mut Profile, now: i64, log: &mut Vec<Transition>) {
        let next = stage_at(p, &LifecycleThresholds::default(), now);
        if let Some(t) = transition(p.stage, next) {
            log.push(t);
        }
        p.stage = next;
    }

    #[test]
    fn journey_potential_new_active_loyal_churned_active() {
        let mut p = Profile::new("t1", "u1");
        let mut log = Vec::new();

        interact(&mut p, day(0));
        step(&mut p, day(0), &mut log);
        assert_eq!(p.stage, Stage::Potential);

        buy(&mut p, day(10));
        step(&mut p, day(10), &mut log);
        assert_eq!(p.stage, Stage::New);

        step(&mut p, day(39), &mut log);
        assert_eq!(p.stage, Stage::New, "29 days after the first order");
        step(&mut p, day(40), &mut log);
        assert_eq!(p.stage, Stage::Active, "30 days after the first order");

        buy(&mut p, day(60));
        step(&mut p, day(60), &mut log);
        assert_eq!(p.stage, Stage::Active);
        buy(&mut p, day(100));
        step(&mut p, day(100), &mut log);
        assert_eq!(p.stage, Stage::Loyal, "three orders within 180 days");

        step(&mut p, day(189), &mut log);
        assert_eq!(p.stage, Stage::Loyal, "89 quiet days");
        step(&mut p, day(190), &mut log);
        assert_eq!(p.stage, Stage::Churned, "90 quiet days, no event needed");

        interact(&mut p, day(300));
        step(&mut p, day(300), &mut log);
        assert_eq!(p.stage, Stage::Active, "back on return");

        let stages: Vec<(Stage, Stage)> = log.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(
            stages,
            [
                (Stage::Potential, Stage::New),
                (Stage::New, Stage::Active),
                (Stage::Active, Stage::Loyal),
                (Stage::Loyal, Stage::Churned),
                (Stage::Churned, Stage::Active),
            ]
        );
        assert!(log[4].is_return());
        assert_eq!(log[4].to_string(), "churned → active");
    }

    #[test]
    fn never_buying_stays_potential_however_quiet() {
        let mut p = Profile::new("t1", "u1");
        interact(&mut p, day(0));
        let t = LifecycleThresholds::default();
        assert_eq!(stage_at(&p, &t, day(1_000)), Stage::Potential);
        assert_eq!(next_stage_change_at(&p, &t, day(1)), None);
    }

    #[test]
    fn loyalty_lapses_to_active_as_orders_leave_the_window() {
        let mut p = Profile::new("t1", "u1");
        let t = LifecycleThresholds::default();
        for d in [0, 50, 80] {
            buy(&mut p, day(d));
        }
        interact(&mut p, day(150));
        assert_eq!(stage_at(&p, &t, day(150)), Stage::Loyal);
        assert_eq!(
            stage_at(&p, &t, day(180)),
            Stage::Active,
            "day-0 order left"
        );
        assert_eq!(next_stage_change_at(&p, &t, day(150)), Some(day(180)));
    }

    #[test]
    fn a_burst_of_first_orders_is_loyal_not_new() {
        let mut p = Profile::new("t1", "u1");
        for d in [0, 1, 2] {
            buy(&mut p, day(d));
        }
        let t = LifecycleThresholds::default();
        assert_eq!(stage_at(&p, &t, day(2)), Stage::Loyal);
        let lenient = LifecycleThresholds {
            loyal_min_orders: 4,
            ..t
        };
        assert_eq!(stage_at(&p, &lenient, day(2)), Stage::New);
    }

    #[test]
    fn next_change_walks_the_whole_quiet_path() {
        let mut p = Profile::new("t1", "u1");
        buy(&mut p, day(0));
        let t = LifecycleThresholds::default();
        let mut now = day(0);
        let mut path = vec![stage_at(&p, &t, now)];
        while let Some(at) = next_stage_change_at(&p, &t, now) {
            assert!(at > now);
            now = at;
            path.push(stage_at(&p, &t, now));
        }
        assert_eq!(path, [Stage::New, Stage::Active, Stage::Churned]);
        assert_eq!(now, day(90));
    }

    proptest! {
        #[test]
        fn the_stage_holds_until_the_next_change(
            order_days in prop::collection::vec(-400i64..0, 0..6),
            interaction_day in prop::option::of(-400i64..0),
            later_hours in 0i64..(500 * 24),
        ) {
            let mut p = Profile::new("t1", "u1");
            if let Some(d) = interaction_day {
                interact(&mut p, day(d));
            }
            let mut order_days = order_days;
            order_days.sort_unstable();
            for d in order_days {
                buy(&mut p, day(d));
            }
            let t = LifecycleThresholds::default();
            let now = day(0);
            let current = stage_at(&p, &t, now);
            let later = now + later_hours * (DAY_US / 24);
            match next_stage_change_at(&p, &t, now) {
                Some(at) => {
                    prop_assert!(at > now);
                    prop_assert_ne!(stage_at(&p, &t, at), current);
                    if later < at {
                        prop_assert_eq!(stage_at(&p, &t, later), current);
                    }
                }
                None => prop_assert_eq!(stage_at(&p, &t, later), current),
            }
        }
    }

    #[test]
    fn transition_only_on_change() {
        assert_eq!(transition(Stage::Active, Stage::Active), None);
        assert_eq!(
            transition(Stage::New, Stage::Active),
            Some(Transition {
                from: Stage::New,
                to: Stage::Active,
            })
        );
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.as_str()), Some(stage));
        }
    }
}
