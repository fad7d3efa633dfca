//! Need-tag rules and the tags each profile carries.

use socialops_storage::{Backend, Row, SqlText};
use sqlx::AnyConnection;

use super::profiles::MAX_PARAMS;
use crate::error::SegmentationError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRuleRow {
    pub rule_id: String,
    pub pattern: String,
    pub tag: String,
    pub created_at_us: i64,
}

pub async fn insert_tag_rule(
    conn: &mut AnyConnection,
    tenant_id: &str,
    rule: &TagRuleRow,
) -> Result<(), SegmentationError> {
    sqlx::query(
        "INSERT INTO tag_rules (tenant_id, rule_id, pattern, tag, created_at_us) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant_id)
    .bind(rule.rule_id.as_str())
    .bind(rule.pattern.as_str())
    .bind(rule.tag.as_str())
    .bind(rule.created_at_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The tenant's rules, oldest first.
pub async fn tag_rules(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<TagRuleRow>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT rule_id, pattern, tag, created_at_us FROM tag_rules WHERE tenant_id = $1 \
         ORDER BY created_at_us, rule_id",
    )
    .bind(tenant_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TagRuleRow {
                rule_id: row.try_get(0)?,
                pattern: row.try_get(1)?,
                tag: row.try_get(2)?,
                created_at_us: row.try_get(3)?,
            })
        })
        .collect()
}

pub async fn delete_tag_rule(
    conn: &mut AnyConnection,
    tenant_id: &str,
    rule_id: &str,
) -> Result<bool, SegmentationError> {
    let deleted = sqlx::query("DELETE FROM tag_rules WHERE tenant_id = $1 AND rule_id = $2")
        .bind(tenant_id)
        .bind(rule_id)
        .execute(&mut *conn)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

/// Writes tag changes: `(profile, tag)` pairs to remove and to add.
pub async fn write_tag_changes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    removed: &[(&str, &str)],
    added: &[(&str, &str)],
) -> Result<(), SegmentationError> {
    let backend = Backend::of(conn);
    for chunk in removed.chunks(MAX_PARAMS / 2) {
        let mut sql = SqlText::new(backend, "DELETE FROM profile_tags WHERE tenant_id = ");
        sql.param()
            .push(" AND (profile_id, tag) IN (VALUES ")
            .value_rows(chunk.len(), 2)
            .push(")");
        let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
        for (profile_id, tag) in chunk {
            query = query.bind(*profile_id).bind(*tag);
        }
        query.execute(&mut *conn).await?;
    }
    for chunk in added.chunks(MAX_PARAMS / 3) {
        let mut sql = SqlText::new(
            backend,
            "INSERT INTO profile_tags (tenant_id, profile_id, tag) VALUES ",
        );
        sql.value_rows(chunk.len(), 3)
            .push(" ON CONFLICT (tenant_id, profile_id, tag) DO NOTHING");
        let mut query = sqlx::query(sql.into_sql());
        for (profile_id, tag) in chunk {
            query = query.bind(tenant_id).bind(*profile_id).bind(*tag);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// How many of the tenant's profiles carry `tag`.
pub async fn count_tagged(
    conn: &mut AnyConnection,
    tenant_id: &str,
    tag: &str,
) -> Result<i64, SegmentationError> {
    let row = sqlx::query("SELECT COUNT(*) FROM profile_tags WHERE tenant_id = $1 AND tag = $2")
        .bind(tenant_id)
        .bind(tag)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}
