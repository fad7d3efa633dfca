//! The segment rule language: [`parse`] text into a type-checked [`Rule`], [`evaluate`] it against a
//! [`Profile`] at a given time. The syntax, with examples, is in the crate documentation.

mod ast;
mod error;
mod lexer;
mod parser;
#[cfg(test)]
mod proptests;

pub use ast::{
    Ago, CmpOp, Condition, Field, FieldKind, Rule, TimeField, TimeRelation, TimeUnit, Value,
};
pub use error::ParseError;
pub use parser::{MAX_CONDITIONS, MAX_DEPTH, parse};

use super::profile::Profile;

/// Whether `profile` matches `rule` at `now_us`. A comparison with a value the profile does not have
/// (no RFM score yet, never ordered) is false, and `not` of it is true.
pub fn evaluate(rule: &Rule, profile: &Profile, now_us: i64) -> bool {
    match rule {
        Rule::And(a, b) => evaluate(a, profile, now_us) && evaluate(b, profile, now_us),
        Rule::Or(a, b) => evaluate(a, profile, now_us) || evaluate(b, profile, now_us),
        Rule::Not(a) => !evaluate(a, profile, now_us),
        Rule::Condition(c) => matches(c, profile, now_us),
    }
}

/// The earliest moment after `now_us` at which `rule` gives a different answer for `profile` if the
/// profile does not change, or `None` if only a profile change can change it. Only `within` and
/// `before` move with the clock, and each flips at one instant, so the sweep can schedule a
/// re-evaluation instead of re-checking every member on every tick.
pub fn next_membership_change_at(rule: &Rule, profile: &Profile, now_us: i64) -> Option<i64> {
    let mut flips = Vec::new();
    collect_flips(rule, profile, &mut flips);
    flips.retain(|&at| at > now_us);
    flips.sort_unstable();
    flips.dedup();
    let current = evaluate(rule, profile, now_us);
    flips
        .into_iter()
        .find(|&at| evaluate(rule, profile, at) != current)
}

/// `t within d` holds while `now <= t + d`, `t before d` from `now > t + d`: both flip at `t + d + 1`.
fn collect_flips(rule: &Rule, profile: &Profile, flips: &mut Vec<i64>) {
    match rule {
        Rule::And(a, b) | Rule::Or(a, b) => {
            collect_flips(a, profile, flips);
            collect_flips(b, profile, flips);
        }
        Rule::Not(a) => collect_flips(a, profile, flips),
        Rule::Condition(Condition::Time { field, ago, .. }) => {
            if let Some(at_us) = time_value(*field, profile) {
                flips.push(at_us.saturating_add(ago.micros()).saturating_add(1));
            }
        }
        Rule::Condition(_) => {}
    }
}

fn matches(condition: &Condition, profile: &Profile, now_us: i64) -> bool {
    match condition {
        Condition::Compare { field, op, value } => {
            field_value(field, profile).is_some_and(|actual| compare(&actual, *op, value))
        }
        Condition::In { field, values } => field_value(field, profile)
            .is_some_and(|actual| values.iter().any(|v| compare(&actual, CmpOp::Eq, v))),
        Condition::Time {
            field,
            relation,
            ago,
        } => {
            let Some(at_us) = time_value(*field, profile) else {
                return false;
            };
            let cutoff_us = now_us.saturating_sub(ago.micros());
            match relation {
                TimeRelation::Within => at_us >= cutoff_us,
                TimeRelation::Before => at_us < cutoff_us,
            }
        }
        Condition::HasTag(tag) => profile.tags.contains(tag),
        Condition::HasPlatform(platform) => profile.platforms.contains(platform),
    }
}

fn field_value(field: &Field, profile: &Profile) -> Option<Value> {
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let score = |f: fn(&crate::domain::RfmScore) -> u8| {
        profile.rfm.as_ref().map(|s| Value::Int(i64::from(f(s))))
    };
    match field {
        Field::Stage => Some(Value::Stage(profile.stage)),
        Field::Tier => Some(Value::Tier(profile.tier)),
        Field::Recency => score(|s| s.recency),
        Field::Frequency => score(|s| s.frequency),
        Field::Monetary => score(|s| s.monetary),
        Field::Count(event_type) => Some(int(profile.count(event_type))),
        Field::OrdersCount => Some(int(profile.orders_count)),
        Field::OrdersTotalCents => Some(Value::Int(profile.orders_total_cents)),
        Field::RefundedCents => Some(Value::Int(profile.refunded_cents)),
        Field::Following => Some(Value::Bool(profile.following)),
    }
}

fn time_value(field: TimeField, profile: &Profile) -> Option<i64> {
    match field {
        TimeField::FirstSeenAt => profile.first_seen_at_us,
        TimeField::LastSeenAt => profile.last_seen_at_us,
        TimeField::LastInteractionAt => profile.last_interaction_at_us,
        TimeField::FirstOrderAt => profile.first_order_at_us,
        TimeField::LastOrderAt => profile.last_order_at_us,
    }
}

/// Numbers order; stages, tiers and booleans only compare equal or not (the parser allows nothing
/// else for them).
fn compare(actual: &Value, op: CmpOp, expected: &Value) -> bool {
    match (op, actual, expected) {
        (CmpOp::Eq, a, b) => a == b,
        (CmpOp::Ne, a, b) => a != b,
        (op, Value::Int(a), Value::Int(b)) => match op {
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Eq | CmpOp::Ne => unreachable!("handled above"),
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::DAY_US;
    use crate::domain::lifecycle::Stage;
    use crate::domain::rfm::{RfmScore, ValueTier};

    const NOW: i64 = 1_700_000_000_000_000;

    fn buyer() -> Profile {
        let mut p = Profile::new("t1", "u1");
        p.stage = Stage::Loyal;
        p.tier = ValueTier::HighValue;
        p.rfm = Some(RfmScore {
            recency: 5,
            frequency: 4,
            monetary: 3,
        });
        p.tags = BTreeSet::from(["need:sensitive-skin".to_owned(), "gender:female".to_owned()]);
        p.counts.insert("comment".into(), 7);
        p.orders_count = 4;
        p.orders_total_cents = 250_000;
        p.refunded_cents = 10_000;
        p.first_seen_at_us = Some(NOW - 400 * DAY_US);
        p.last_seen_at_us = Some(NOW - DAY_US);
        p.last_interaction_at_us = Some(NOW - 2 * DAY_US);
        p.first_order_at_us = Some(NOW - 200 * DAY_US);
        p.last_order_at_us = Some(NOW - 10 * DAY_US);
        p.platforms = BTreeSet::from(["douyin".to_owned(), "wechat".to_owned()]);
        p.following = true;
        p
    }

    fn check(src: &str, profile: &Profile) -> bool {
        evaluate(&parse(src).unwrap(), profile, NOW)
    }

    #[test]
    fn every_construct_against_a_buyer() {
        let p = buyer();
        let truths = [
            ("stage = loyal", true),
            ("stage != loyal", false),
            ("stage in [new, active, loyal]", true),
            ("stage in [churned]", false),
            ("tier = high_value", true),
            ("tier in [regular, low_value]", false),
            ("r = 5 and f >= 4 and m < 4", true),
            ("m > 3", false),
            ("r in [4, 5]", true),
            ("count.comment >= 7", true),
            ("count.comment > 7", false),
            ("count.like = 0", true),
            ("orders_count >= 3", true),
            ("orders_total_cents >= 200000", true),
            ("refunded_cents <= 9999", false),
            ("following = true", true),
            ("following != true", false),
            ("last_order_at within 30d", true),
            ("last_order_at within 10d", true),
            ("last_order_at within 239h", false),
            ("last_order_at before 1w", true),
            ("first_seen_at before 90d", true),
            ("first_seen_at within 58w", true),
            ("first_seen_at within 57w", false),
            ("last_seen_at within 1d", true),
            ("last_interaction_at within 1d", false),
            ("first_order_at before 200d", false),
            (r#"has tag "need:sensitive-skin""#, true),
            (r#"has tag "need:oily-skin""#, false),
            ("has platform douyin", true),
            ("has platform weibo", false),
            ("not has platform weibo", true),
            ("stage = new or tier = high_value", true),
            ("stage = new or tier = regular", false),
            ("not (stage = new or tier = regular)", true),
        ];
        for (src, expected) in truths {
            assert_eq!(check(src, &p), expected, "{src}");
        }
    }

    #[test]
    fn the_crate_documentation_examples_hold() {
        for src in [
            r#"stage in [active, loyal] and has tag "need:sensitive-skin""#,
            "tier = high_value or (r >= 4 and m >= 4)",
            "count.comment >= 3 and not last_order_at within 30d",
            "has platform douyin and following = true and first_seen_at before 90d",
            "orders_total_cents >= 100000 and refunded_cents = 0",
        ] {
            let rule = parse(src).unwrap();
            assert_eq!(rule.to_string(), src);
        }
        assert_eq!(
            parse("stage ~ loyal").unwrap_err().to_string(),
            "at 6 (line 1, column 7): expected `=`, `!=` or `in` after `stage`, found `~`"
        );
        assert_eq!(
            parse("stage = 5").unwrap_err().to_string(),
            "at 8 (line 1, column 9): expected a stage (potential, new, active, loyal, churned) after `=`, found `5`"
        );
    }

    #[test]
    fn missing_values_compare_false() {
        let p = Profile::new("t1", "u1");
        for src in [
            "r >= 1",
            "r != 3",
            "m in [1, 2, 3, 4, 5]",
            "last_order_at within 100000d",
            "last_order_at before 1h",
        ] {
            assert!(!check(src, &p), "{src}");
            assert!(check(&format!("not ({src})"), &p), "not ({src})");
        }
        assert!(check("stage = potential and tier = unscored", &p));
        assert!(check("orders_count = 0 and following = false", &p));
    }

    #[test]
    fn relative_times_move_with_the_clock() {
        let p = buyer();
        let rule = parse("last_order_at within 30d").unwrap();
        assert!(evaluate(&rule, &p, NOW));
        assert!(evaluate(&rule, &p, NOW + 20 * DAY_US));
        assert!(!evaluate(&rule, &p, NOW + 20 * DAY_US + 1));
        assert!(rule.is_time_dependent());
        assert!(
            !parse("stage = new or not r = 1")
                .unwrap()
                .is_time_dependent()
        );
        assert!(
            parse("stage = new or not (r = 1 and first_seen_at before 1d)")
                .unwrap()
                .is_time_dependent()
        );
    }

    #[test]
    fn next_membership_change_follows_the_clock() {
        let p = buyer();
        let rule = parse("last_order_at within 30d and not first_order_at within 100d").unwrap();
        assert!(evaluate(&rule, &p, NOW));
        let leaves_at = next_membership_change_at(&rule, &p, NOW).unwrap();
        assert_eq!(leaves_at, NOW + 20 * DAY_US + 1);
        assert!(!evaluate(&rule, &p, leaves_at));
        assert!(evaluate(&rule, &p, leaves_at - 1));
        assert_eq!(next_membership_change_at(&rule, &p, leaves_at), None);

        let lapsed = parse("last_order_at before 60d").unwrap();
        let enters_at = next_membership_change_at(&lapsed, &p, NOW).unwrap();
        assert_eq!(enters_at, NOW + 50 * DAY_US + 1);
        assert!(evaluate(&lapsed, &p, enters_at));

        assert_eq!(
            next_membership_change_at(&parse("stage = loyal").unwrap(), &p, NOW),
            None
        );
        assert_eq!(
            next_membership_change_at(
                &parse("stage = new and last_order_at within 30d").unwrap(),
                &p,
                NOW
            ),
            None,
            "a flip that cannot change the answer is skipped"
        );
    }

    #[test]
    fn printing_uses_canonical_syntax() {
        let cases = [
            ("stage=loyal AND r>=4", "stage = loyal and r >= 4"),
            (
                "(stage = new or stage = active) and not (r = 1 or r = 2)",
                "(stage = new or stage = active) and not (r = 1 or r = 2)",
            ),
            ("r = 1 or (r = 2 or r = 3)", "r = 1 or (r = 2 or r = 3)"),
            ("(r = 1 or r = 2) or r = 3", "r = 1 or r = 2 or r = 3"),
            ("r = 1 and r = 2 or r = 3", "(r = 1 and r = 2) or r = 3"),
            (
                "r = 1 or r = 2 and not r = 3",
                "r = 1 or (r = 2 and not r = 3)",
            ),
            ("NOT NOT following = TRUE", "not not following = true"),
            (
                "tier IN [high_value,regular]",
                "tier in [high_value, regular]",
            ),
            (r#"has tag "a\"b\\c""#, r#"has tag "a\"b\\c""#),
            ("has platform \"zhihu\"", "has platform zhihu"),
            ("last_order_at within 30d", "last_order_at within 30d"),
            ("count.content_click>=-2", "count.content_click >= -2"),
        ];
        for (src, printed) in cases {
            let rule = parse(src).unwrap();
            assert_eq!(rule.to_string(), printed, "{src}");
            assert_eq!(parse(printed).unwrap(), rule, "{printed}");
        }
    }
}
