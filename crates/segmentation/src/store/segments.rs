//! Segments, their members, their size history and their pending membership rebuilds.

use std::collections::{BTreeSet, HashMap};

use socialops_storage::{Backend, Row, SqlText};
use sqlx::AnyConnection;

use super::profiles::{MAX_PARAMS, push_in};
use crate::error::SegmentationError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub tenant_id: String,
    pub segment_id: String,
    pub name: String,
    pub description: String,
    pub rule: String,
    pub size: i64,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

const SEGMENT_SELECT: &str = "SELECT tenant_id, segment_id, name, description, rule, size, \
     created_at_us, updated_at_us FROM segments";

fn decode(row: &sqlx::any::AnyRow) -> Result<SegmentRow, sqlx::Error> {
    Ok(SegmentRow {
        tenant_id: row.try_get(0)?,
        segment_id: row.try_get(1)?,
        name: row.try_get(2)?,
        description: row.try_get(3)?,
        rule: row.try_get(4)?,
        size: row.try_get(5)?,
        created_at_us: row.try_get(6)?,
        updated_at_us: row.try_get(7)?,
    })
}

pub async fn insert_segment(
    conn: &mut AnyConnection,
    segment: &SegmentRow,
) -> Result<(), SegmentationError> {
    sqlx::query(
        "INSERT INTO segments (tenant_id, segment_id, name, description, rule, size, created_at_us, \
         updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(segment.tenant_id.as_str())
    .bind(segment.segment_id.as_str())
    .bind(segment.name.as_str())
    .bind(segment.description.as_str())
    .bind(segment.rule.as_str())
    .bind(segment.size)
    .bind(segment.created_at_us)
    .bind(segment.updated_at_us)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        SegmentationError::on_unique(e, || {
            format!("name: a segment called `{}` already exists", segment.name)
        })
    })?;
    Ok(())
}

/// Replaces name, description and rule; false when there is no such segment.
pub async fn update_segment(
    conn: &mut AnyConnection,
    segment: &SegmentRow,
) -> Result<bool, SegmentationError> {
    let updated = sqlx::query(
        "UPDATE segments SET name = $1, description = $2, rule = $3, updated_at_us = $4 \
         WHERE tenant_id = $5 AND segment_id = $6",
    )
    .bind(segment.name.as_str())
    .bind(segment.description.as_str())
    .bind(segment.rule.as_str())
    .bind(segment.updated_at_us)
    .bind(segment.tenant_id.as_str())
    .bind(segment.segment_id.as_str())
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        SegmentationError::on_unique(e, || {
            format!("name: a segment called `{}` already exists", segment.name)
        })
    })?;
    Ok(updated.rows_affected() > 0)
}

/// What deleting a segment removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSegment {
    pub name: String,
    /// The profiles that were members.
    pub members: Vec<String>,
}

/// Deletes the segment with its members, size history and any pending rebuild; `None` when there was
/// no such segment.
///
/// The segment row goes first: on PostgreSQL that waits for every transaction evaluating profiles
/// against the segment (they hold it with [`segments_for_evaluation`]), so the members it then
/// deletes include those they added, and evaluations that start later no longer see the segment.
pub async fn delete_segment(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
) -> Result<Option<DeletedSegment>, SegmentationError> {
    let name: Option<String> = sqlx::query_scalar(
        "DELETE FROM segments WHERE tenant_id = $1 AND segment_id = $2 RETURNING name",
    )
    .bind(tenant_id)
    .bind(segment_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(name) = name else {
        return Ok(None);
    };
    let members: Vec<String> = sqlx::query_scalar(
        "DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 RETURNING profile_id",
    )
    .bind(tenant_id)
    .bind(segment_id)
    .fetch_all(&mut *conn)
    .await?;
    for table in ["segment_size_history", "segment_rebuilds"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant_id = $1 AND segment_id = $2"
        )))
        .bind(tenant_id)
        .bind(segment_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(DeletedSegment { name, members }))
}

/// Holds the segment until the transaction ends, as changing its rule needs: on PostgreSQL this waits
/// for the transactions evaluating profiles against it, and those that start later wait for this one
/// and see the new rule. Returns whether the segment exists.
pub async fn lock_segment(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
) -> Result<bool, SegmentationError> {
    let mut sql = String::from("SELECT 1 FROM segments WHERE tenant_id = $1 AND segment_id = $2");
    if Backend::of(conn) == Backend::Postgres {
        sql.push_str(" FOR UPDATE");
    }
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(segment_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

pub async fn get_segment(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
) -> Result<Option<SegmentRow>, SegmentationError> {
    let sql = format!("{SEGMENT_SELECT} WHERE tenant_id = $1 AND segment_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(segment_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(decode).transpose()?)
}

/// The tenant's segments in name order.
pub async fn list_segments(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<SegmentRow>, SegmentationError> {
    let sql = format!("{SEGMENT_SELECT} WHERE tenant_id = $1 ORDER BY name");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
}

/// The tenant's segments, for a transaction that evaluates profiles against them and writes their
/// memberships. On PostgreSQL each row is held (`FOR KEY SHARE`) until the transaction ends: deleting
/// the segment or changing its rule waits for the evaluation, and an evaluation that starts while one
/// of those is under way waits for it and sees its result, so no membership is written for a segment
/// that is gone or under a rule that has changed. Evaluations do not block each other.
pub async fn segments_for_evaluation(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<SegmentRow>, SegmentationError> {
    let mut sql = format!("{SEGMENT_SELECT} WHERE tenant_id = $1 ORDER BY segment_id");
    if Backend::of(conn) == Backend::Postgres {
        sql.push_str(" FOR KEY SHARE");
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
}

/// Every segment of every tenant; the sweep's view.
pub async fn all_segments(conn: &mut AnyConnection) -> Result<Vec<SegmentRow>, SegmentationError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SEGMENT_SELECT} ORDER BY tenant_id, segment_id"
    )))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
}

/// The segments each of the profiles is a member of.
pub async fn memberships(
    conn: &mut AnyConnection,
    tenant_id: &str,
    profile_ids: &[String],
) -> Result<HashMap<String, BTreeSet<String>>, SegmentationError> {
    let backend = Backend::of(conn);
    let mut found: HashMap<String, BTreeSet<String>> = HashMap::new();
    for chunk in profile_ids.chunks(MAX_PARAMS) {
        let mut sql = SqlText::new(
            backend,
            "SELECT profile_id, segment_id FROM segment_members WHERE tenant_id = ",
        );
        sql.param().push(" AND profile_id");
        push_in(&mut sql, chunk.len());
        let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            found
                .entry(row.try_get(0)?)
                .or_default()
                .insert(row.try_get(1)?);
        }
    }
    Ok(found)
}

/// Adds (segment, profile) memberships and keeps each segment's size in step.
pub async fn add_members(
    conn: &mut AnyConnection,
    tenant_id: &str,
    members: &[(String, String)],
    entered_at_us: i64,
) -> Result<(), SegmentationError> {
    let backend = Backend::of(conn);
    for chunk in members.chunks(MAX_PARAMS / 4) {
        let mut sql = SqlText::new(
            backend,
            "INSERT INTO segment_members (tenant_id, segment_id, profile_id, entered_at_us) VALUES ",
        );
        sql.value_rows(chunk.len(), 4)
            .push(" ON CONFLICT (tenant_id, segment_id, profile_id) DO NOTHING");
        let mut query = sqlx::query(sql.into_sql());
        for (segment_id, profile_id) in chunk {
            query = query
                .bind(tenant_id)
                .bind(segment_id.as_str())
                .bind(profile_id.as_str())
                .bind(entered_at_us);
        }
        query.execute(&mut *conn).await?;
    }
    adjust_sizes(conn, tenant_id, members, 1).await
}

pub async fn remove_members(
    conn: &mut AnyConnection,
    tenant_id: &str,
    members: &[(String, String)],
) -> Result<(), SegmentationError> {
    let backend = Backend::of(conn);
    for chunk in members.chunks(MAX_PARAMS / 2) {
        let mut sql = SqlText::new(backend, "DELETE FROM segment_members WHERE tenant_id = ");
        sql.param()
            .push(" AND (segment_id, profile_id) IN (VALUES ")
            .value_rows(chunk.len(), 2)
            .push(")");
        let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
        for (segment_id, profile_id) in chunk {
            query = query.bind(segment_id.as_str()).bind(profile_id.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    adjust_sizes(conn, tenant_id, members, -1).await
}

async fn adjust_sizes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    members: &[(String, String)],
    sign: i64,
) -> Result<(), SegmentationError> {
    let mut per_segment: HashMap<&str, i64> = HashMap::new();
    for (segment_id, _) in members {
        *per_segment.entry(segment_id.as_str()).or_insert(0) += sign;
    }
    for (segment_id, delta) in per_segment {
        sqlx::query(
            "UPDATE segments SET size = size + $1 WHERE tenant_id = $2 AND segment_id = $3",
        )
        .bind(delta)
        .bind(tenant_id)
        .bind(segment_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One page of members in profile id order, after `after` when given: (profile id, entered at).
pub async fn list_members(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, i64)>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT profile_id, entered_at_us FROM segment_members \
         WHERE tenant_id = $1 AND segment_id = $2 AND profile_id > $3 ORDER BY profile_id LIMIT $4",
    )
    .bind(tenant_id)
    .bind(segment_id)
    .bind(after.unwrap_or(""))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Appends a size point for every segment whose size differs from its last point.
pub async fn record_sizes(conn: &mut AnyConnection, at_us: i64) -> Result<u64, SegmentationError> {
    let recorded = sqlx::query(
        "INSERT INTO segment_size_history (tenant_id, segment_id, at_us, size) \
         SELECT s.tenant_id, s.segment_id, $1, s.size FROM segments s \
         WHERE s.size IS DISTINCT FROM (SELECT h.size FROM segment_size_history h \
             WHERE h.tenant_id = s.tenant_id AND h.segment_id = s.segment_id \
             ORDER BY h.at_us DESC LIMIT 1) \
         ON CONFLICT (tenant_id, segment_id, at_us) DO UPDATE SET size = excluded.size",
    )
    .bind(at_us)
    .execute(&mut *conn)
    .await?;
    Ok(recorded.rows_affected())
}

pub async fn size_history(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, i64)>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT at_us, size FROM segment_size_history WHERE tenant_id = $1 AND segment_id = $2 \
         AND at_us >= $3 AND at_us < $4 ORDER BY at_us",
    )
    .bind(tenant_id)
    .bind(segment_id)
    .bind(from_us)
    .bind(to_us)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// A segment whose membership is still to be brought in line with its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRebuild {
    pub tenant_id: String,
    pub segment_id: String,
    /// Which request the row stands for now; every rule change replaces it.
    pub request_id: String,
    pub requested_at_us: i64,
    /// The segment's rule as stored when the row was read.
    pub rule: String,
}

/// Records, in the caller's transaction, that the segment's membership is to be rebuilt under the rule
/// being written. A rebuild already pending gets a new request id and keeps its place in the queue.
pub async fn request_rebuild(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
    requested_at_us: i64,
) -> Result<(), SegmentationError> {
    sqlx::query(
        "INSERT INTO segment_rebuilds (tenant_id, segment_id, request_id, requested_at_us) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, segment_id) \
         DO UPDATE SET request_id = excluded.request_id",
    )
    .bind(tenant_id)
    .bind(segment_id)
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(requested_at_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every pending rebuild with its segment's rule (read in the same statement, so the rule is at least
/// as new as the request id), oldest request first.
pub async fn pending_rebuilds(
    conn: &mut AnyConnection,
) -> Result<Vec<PendingRebuild>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT r.tenant_id, r.segment_id, r.request_id, r.requested_at_us, s.rule \
         FROM segment_rebuilds r JOIN segments s \
         ON s.tenant_id = r.tenant_id AND s.segment_id = r.segment_id \
         ORDER BY r.requested_at_us, r.tenant_id, r.segment_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PendingRebuild {
                tenant_id: row.try_get(0)?,
                segment_id: row.try_get(1)?,
                request_id: row.try_get(2)?,
                requested_at_us: row.try_get(3)?,
                rule: row.try_get(4)?,
            })
        })
        .collect()
}

/// Whether the segment has a rebuild pending.
pub async fn is_rebuilding(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
) -> Result<bool, SegmentationError> {
    let found =
        sqlx::query("SELECT 1 FROM segment_rebuilds WHERE tenant_id = $1 AND segment_id = $2")
            .bind(tenant_id)
            .bind(segment_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// The tenant's segments with a rebuild pending.
pub async fn rebuilding_segments(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<BTreeSet<String>, SegmentationError> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT segment_id FROM segment_rebuilds WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(ids.into_iter().collect())
}

/// Deletes the pending rebuild if it still stands for `request_id`; false when a rule change since has
/// replaced it (or it is gone), and the newer request stays pending.
pub async fn finish_rebuild(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
    request_id: &str,
) -> Result<bool, SegmentationError> {
    let deleted = sqlx::query(
        "DELETE FROM segment_rebuilds WHERE tenant_id = $1 AND segment_id = $2 AND request_id = $3",
    )
    .bind(tenant_id)
    .bind(segment_id)
    .bind(request_id)
    .execute(&mut *conn)
    .await?;
    Ok(deleted.rows_affected() > 0)
}
