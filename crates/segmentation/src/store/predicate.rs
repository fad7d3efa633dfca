//! A segment rule as a SQL condition over the `profiles` table, so that previews and membership
//! reconciliation run in the database instead of loading every profile.
//!
//! It means what [`crate::domain::evaluate`] means for the stored profile: a comparison with a value
//! the profile does not have is false (never SQL's NULL), so `NOT` negates it as the rule language
//! does. Stage and tier are the stored ones; the sweep keeps them current with the clock.

use socialops_storage::SqlText;

use super::profiles::{count_column, platform_bit, stage_code, tier_code};
use crate::domain::Rule;
use crate::domain::rules::{CmpOp, Condition, Field, TimeField, TimeRelation, Value};
use crate::error::SegmentationError;

/// A value bound to a placeholder of the condition, in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Int(i64),
    Text(String),
}

/// Appends the rule as a condition to `sql`, pushing the values of its placeholders onto `binds`.
/// `now_us` fixes what relative times (`within 30d`) mean.
pub fn push_rule(
    sql: &mut SqlText,
    binds: &mut Vec<Bind>,
    tenant_id: &str,
    rule: &Rule,
    now_us: i64,
) -> Result<(), SegmentationError> {
    match rule {
        Rule::And(a, b) | Rule::Or(a, b) => {
            sql.push("(");
            push_rule(sql, binds, tenant_id, a, now_us)?;
            sql.push(if matches!(rule, Rule::And(..)) {
                " AND "
            } else {
                " OR "
            });
            push_rule(sql, binds, tenant_id, b, now_us)?;
            sql.push(")");
        }
        Rule::Not(a) => {
            sql.push("(NOT ");
            push_rule(sql, binds, tenant_id, a, now_us)?;
            sql.push(")");
        }
        Rule::Condition(condition) => push_condition(sql, binds, tenant_id, condition, now_us)?,
    }
    Ok(())
}

fn push_condition(
    sql: &mut SqlText,
    binds: &mut Vec<Bind>,
    tenant_id: &str,
    condition: &Condition,
    now_us: i64,
) -> Result<(), SegmentationError> {
    match condition {
        Condition::Compare { field, op, value } => {
            let column = column(field)?;
            sql.push("(").push(&column).push(" IS NOT NULL AND ");
            sql.push(&column).push(sql_op(*op)).param().push(")");
            binds.push(bind(value));
        }
        Condition::In { field, values } => {
            let column = column(field)?;
            sql.push("(").push(&column).push(" IS NOT NULL AND ");
            sql.push(&column).push(" IN (");
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    sql.push(",");
                }
                sql.param();
                binds.push(bind(value));
            }
            sql.push("))");
        }
        Condition::Time {
            field,
            relation,
            ago,
        } => {
            let column = time_column(*field);
            let cutoff_us = now_us.saturating_sub(ago.micros());
            let op = match relation {
                TimeRelation::Within => " >= ",
                TimeRelation::Before => " < ",
            };
            sql.push("(").push(column).push(" IS NOT NULL AND ");
            sql.push(column).push(op).param().push(")");
            binds.push(Bind::Int(cutoff_us));
        }
        Condition::HasTag(tag) => {
            // A semi-join on the tag index: the database reads the tag's profiles once instead of
            // probing the tags of every profile.
            sql.push("profile_id IN (SELECT profile_id FROM profile_tags WHERE tenant_id = ")
                .param()
                .push(" AND tag = ")
                .param()
                .push(")");
            binds.push(Bind::Text(tenant_id.to_owned()));
            binds.push(Bind::Text(tag.clone()));
        }
        Condition::HasPlatform(platform) => {
            let bit = platform_bit(platform).ok_or_else(|| {
                SegmentationError::InvalidArgument(format!("unknown platform `{platform}`"))
            })?;
            sql.push("(platforms & ").param().push(") <> 0");
            binds.push(Bind::Int(bit));
        }
    }
    Ok(())
}

fn column(field: &Field) -> Result<String, SegmentationError> {
    Ok(match field {
        Field::Stage => "stage".into(),
        Field::Tier => "tier".into(),
        Field::Recency => "rfm_r".into(),
        Field::Frequency => "rfm_f".into(),
        Field::Monetary => "rfm_m".into(),
        Field::Count(event_type) => count_column(event_type).ok_or_else(|| {
            SegmentationError::InvalidArgument(format!("unknown event type `{event_type}`"))
        })?,
        Field::OrdersCount => "orders_count".into(),
        Field::OrdersTotalCents => "orders_total_cents".into(),
        Field::RefundedCents => "refunded_cents".into(),
        Field::Following => "following".into(),
    })
}

fn time_column(field: TimeField) -> &'static str {
    match field {
        TimeField::FirstSeenAt => "first_seen_at_us",
        TimeField::LastSeenAt => "last_seen_at_us",
        TimeField::LastInteractionAt => "last_interaction_at_us",
        TimeField::FirstOrderAt => "first_order_at_us",
        TimeField::LastOrderAt => "last_order_at_us",
    }
}

fn sql_op(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => " = ",
        CmpOp::Ne => " <> ",
        CmpOp::Lt => " < ",
        CmpOp::Le => " <= ",
        CmpOp::Gt => " > ",
        CmpOp::Ge => " >= ",
    }
}

fn bind(value: &Value) -> Bind {
    Bind::Int(match value {
        Value::Int(n) => *n,
        Value::Stage(stage) => stage_code(*stage),
        Value::Tier(tier) => tier_code(*tier),
        Value::Bool(b) => i64::from(*b),
    })
}

/// Binds `binds` to `query` in order.
pub fn apply<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for value in binds {
        query = match value {
            Bind::Int(n) => query.bind(*n),
            Bind::Text(s) => query.bind(s.as_str()),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use socialops_storage::Backend;

    use super::*;
    use crate::domain::parse;

    fn compile(src: &str) -> (String, Vec<Bind>) {
        let mut sql = SqlText::new(Backend::Postgres, "");
        let mut binds = Vec::new();
        push_rule(&mut sql, &mut binds, "t1", &parse(src).unwrap(), 1_000).unwrap();
        (sql.into_sql().0, binds)
    }

    #[test]
    fn conditions_never_yield_null() {
        let (sql, binds) = compile("not r >= 4 and stage in [new, loyal]");
        assert_eq!(
            sql,
            "((NOT (rfm_r IS NOT NULL AND rfm_r >= $1)) AND \
             (stage IS NOT NULL AND stage IN ($2,$3)))"
        );
        assert_eq!(binds, [Bind::Int(4), Bind::Int(2), Bind::Int(4)]);
    }

    #[test]
    fn times_tags_platforms_and_counts() {
        let (sql, binds) = compile(
            r#"last_order_at within 1h or has tag "need:x" or has platform weibo or count.comment > 2"#,
        );
        assert!(
            sql.contains("(last_order_at_us IS NOT NULL AND last_order_at_us >= $1)"),
            "{sql}"
        );
        assert!(sql.contains(
            "profile_id IN (SELECT profile_id FROM profile_tags WHERE tenant_id = $2 AND tag = $3)"
        ));
        assert!(sql.contains("(platforms & $4) <> 0"));
        assert!(sql.contains("count_comment > $5"));
        assert_eq!(binds[0], Bind::Int(1_000 - 3_600_000_000));
        assert_eq!(binds[3], Bind::Int(2), "weibo is the second platform");
    }
}
