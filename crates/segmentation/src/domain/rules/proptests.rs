use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::domain::DAY_US;
use crate::domain::lifecycle::Stage;
use crate::domain::profile::{EVENT_TYPES, PLATFORMS};
use crate::domain::rfm::{RfmScore, ValueTier};

const NOW: i64 = 1_700_000_000_000_000;
const TAGS: &[&str] = &[
    "vip",
    "need:sensitive-skin",
    "gender:female",
    "say \"hi\"",
    "a\\b",
];

fn int_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        select(EVENT_TYPES).prop_map(|t| Field::Count(t.to_owned())),
        Just(Field::OrdersCount),
        Just(Field::OrdersTotalCents),
        Just(Field::RefundedCents),
    ]
}

fn score_field() -> impl Strategy<Value = Field> {
    select(vec![Field::Recency, Field::Frequency, Field::Monetary])
}

/// A field with a strategy for literals of its type, and whether it takes ordering operators.
fn typed_field() -> impl Strategy<Value = (Field, BoxedStrategy<Value>, bool)> {
    prop_oneof![
        Just((
            Field::Stage,
            select(Stage::ALL.to_vec()).prop_map(Value::Stage).boxed(),
            false
        )),
        Just((
            Field::Tier,
            select(ValueTier::ALL.to_vec())
                .prop_map(Value::Tier)
                .boxed(),
            false
        )),
        Just((
            Field::Following,
            any::<bool>().prop_map(Value::Bool).boxed(),
            false
        )),
        score_field().prop_map(|f| (f, (1i64..=5).prop_map(Value::Int).boxed(), true)),
        int_field().prop_map(|f| (f, any::<i64>().prop_map(Value::Int).boxed(), true)),
    ]
}

fn ago() -> impl Strategy<Value = Ago> {
    (
        prop_oneof![0u32..1_000, any::<u32>()],
        select(vec![TimeUnit::Hours, TimeUnit::Days, TimeUnit::Weeks]),
    )
        .prop_map(|(amount, unit)| Ago { amount, unit })
}

fn condition() -> impl Strategy<Value = Condition> {
    let compare = typed_field().prop_flat_map(|(field, values, ordered)| {
        let ops = if ordered {
            CmpOp::ALL.to_vec()
        } else {
            vec![CmpOp::Eq, CmpOp::Ne]
        };
        (Just(field), select(ops), values).prop_map(|(field, op, value)| Condition::Compare {
            field,
            op,
            value,
        })
    });
    let list = typed_field().prop_flat_map(|(field, values, _)| {
        (Just(field), prop::collection::vec(values, 1..4))
            .prop_map(|(field, values)| Condition::In { field, values })
    });
    let time = (
        select(TimeField::ALL.to_vec()),
        select(vec![TimeRelation::Within, TimeRelation::Before]),
        ago(),
    )
        .prop_map(|(field, relation, ago)| Condition::Time {
            field,
            relation,
            ago,
        });
    prop_oneof![
        compare,
        list,
        time,
        prop_oneof![select(TAGS).prop_map(str::to_owned), "\\PC{1,8}"].prop_map(Condition::HasTag),
        select(PLATFORMS).prop_map(|p| Condition::HasPlatform(p.to_owned())),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    condition()
        .prop_map(Rule::Condition)
        .prop_recursive(5, 48, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| a.or(b)),
                inner.prop_map(|a| !a),
            ]
        })
}

fn time_opt() -> impl Strategy<Value = Option<i64>> {
    prop::option::of((-400 * DAY_US..DAY_US).prop_map(|offset| NOW + offset))
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        (
            select(Stage::ALL.to_vec()),
            select(ValueTier::ALL.to_vec()),
            prop::option::of((1u8..=5, 1u8..=5, 1u8..=5)),
            prop::collection::btree_set(select(TAGS).prop_map(str::to_owned), 0..3),
            prop::collection::btree_map(
                select(EVENT_TYPES).prop_map(str::to_owned),
                0u64..20,
                0..4,
            ),
            prop::collection::btree_set(select(PLATFORMS).prop_map(str::to_owned), 0..3),
            any::<bool>(),
        ),
        (0u64..10, -1_000i64..1_000_000, 0i64..1_000),
        [time_opt(), time_opt(), time_opt(), time_opt(), time_opt()],
    )
        .prop_map(
            |((stage, tier, rfm, tags, counts, platforms, following), amounts, times)| {
                let counts: BTreeMap<String, u64> = counts;
                let tags: BTreeSet<String> = tags;
                Profile {
                    tenant_id: "t1".into(),
                    user_id: "u1".into(),
                    stage,
                    tier,
                    rfm: rfm.map(|(recency, frequency, monetary)| RfmScore {
                        recency,
                        frequency,
                        monetary,
                    }),
                    tags,
                    counts,
                    orders_count: amounts.0,
                    orders_total_cents: amounts.1,
                    refunded_cents: amounts.2,
                    orders: Vec::new(),
                    first_seen_at_us: times[0],
                    last_seen_at_us: times[1],
                    last_interaction_at_us: times[2],
                    first_order_at_us: times[3],
                    last_order_at_us: times[4],
                    platforms,
                    following,
                }
            },
        )
}

/// Words and symbols of the language, so that random input gets past the first token.
fn token_soup() -> impl Strategy<Value = String> {
    let pieces = select(vec![
        "stage",
        "tier",
        "r",
        "m",
        "count.comment",
        "count.",
        "last_order_at",
        "has",
        "tag",
        "platform",
        "douyin",
        "and",
        "or",
        "not",
        "in",
        "within",
        "before",
        "(",
        ")",
        "[",
        "]",
        ",",
        "=",
        "!=",
        "<",
        ">=",
        "~",
        "!",
        "-",
        "loyal",
        "high_value",
        "true",
        "5",
        "-7",
        "30d",
        "3x",
        "\"",
        "\"vip\"",
        "\\",
        "敏感肌",
        "\n",
        "99999999999999999999",
    ]);
    prop::collection::vec((pieces, select(vec!["", " "])), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(piece, sep)| [piece, sep])
            .collect()
    })
}

proptest! {
    #[test]
    fn printed_rules_parse_back_to_the_same_rule(rule in rule()) {
        let printed = rule.to_string();
        prop_assert_eq!(parse(&printed), Ok(rule), "{}", printed);
    }

    #[test]
    fn arbitrary_text_never_panics(src in any::<String>()) {
        if let Err(e) = parse(&src) {
            prop_assert!(src.is_char_boundary(e.offset) && e.offset <= src.len());
        }
    }

    #[test]
    fn token_soup_never_panics_and_errors_point_inside(src in token_soup()) {
        match parse(&src) {
            Ok(rule) => prop_assert_eq!(parse(&rule.to_string()), Ok(rule)),
            Err(e) => {
                prop_assert!(src.is_char_boundary(e.offset) && e.offset <= src.len());
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }
    }

    #[test]
    fn double_negation_evaluates_like_the_rule(rule in rule(), profile in profile()) {
        let twice = !!rule.clone();
        prop_assert_eq!(evaluate(&twice, &profile, NOW), evaluate(&rule, &profile, NOW));
    }

    #[test]
    fn membership_holds_until_the_next_change(
        rule in rule(),
        profile in profile(),
        offset in 0..500 * DAY_US,
    ) {
        let current = evaluate(&rule, &profile, NOW);
        let later = NOW + offset;
        match next_membership_change_at(&rule, &profile, NOW) {
            Some(at) => {
                prop_assert!(at > NOW);
                prop_assert_ne!(evaluate(&rule, &profile, at), current);
                if later < at {
                    prop_assert_eq!(evaluate(&rule, &profile, later), current);
                }
            }
            None => prop_assert_eq!(evaluate(&rule, &profile, later), current),
        }
    }

    #[test]
    fn de_morgan_holds(a in rule(), b in rule(), profile in profile()) {
        let not_and = !a.clone().and(b.clone());
        let or_nots = (!a).or(!b);
        prop_assert_eq!(evaluate(&not_and, &profile, NOW), evaluate(&or_nots, &profile, NOW));
    }
}
