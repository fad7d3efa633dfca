//! Crises and their numbered steps. Every step is one published alert; the crisis row counts its steps
//! so the next one's number is known without a query.

use socialops_storage::Row;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::count;
use crate::domain::crisis::{CrisisState, ResponseClock};
use crate::domain::severity::Severity;
use crate::error::SentimentError;

#[derive(Debug, Clone, PartialEq)]
pub struct Crisis {
    pub tenant_id: String,
    pub crisis_id: String,
    pub watchlist_id: String,
    pub watchlist_name: String,
    pub state: CrisisState,
    pub severity: Severity,
    pub reason: String,
    /// Mentions at or after this time belong to the crisis.
    pub window_start_us: i64,
    pub clock: ResponseClock,
    pub num_mentions: u64,
    pub num_negative: u64,
    pub total_reach: u64,
    pub num_steps: u64,
    pub updated_at_us: i64,
}

impl Crisis {
    pub fn negative_share(&self) -> f64 {
        if self.num_mentions == 0 {
            0.0
        } else {
            self.num_negative as f64 / self.num_mentions as f64
        }
    }
}

/// One change of a crisis; `kind` is the `socialops.alerts.v1.AlertKind` number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub seq: u64,
    pub kind: i32,
    pub state: CrisisState,
    pub severity: Severity,
    pub actor: String,
    pub note: String,
    pub at_us: i64,
}

const COLUMNS: &str = "tenant_id, crisis_id, watchlist_id, watchlist_name, state, severity, reason, \
    window_start_us, detected_at_us, respond_by_us, half_time_reminded, breached, num_mentions, \
    num_negative, total_reach, num_steps, updated_at_us";

fn unsigned(row: &AnyRow, column: &str) -> Result<u64, sqlx::Error> {
    Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
}

fn decode(row: &AnyRow) -> Result<Crisis, SentimentError> {
    let state: i64 = row.try_get("state")?;
    let severity: i64 = row.try_get("severity")?;
    Ok(Crisis {
        tenant_id: row.try_get("tenant_id")?,
        crisis_id: row.try_get("crisis_id")?,
        watchlist_id: row.try_get("watchlist_id")?,
        watchlist_name: row.try_get("watchlist_name")?,
        state: CrisisState::from_code(state)
            .ok_or_else(|| SentimentError::Corrupt(format!("crisis state {state}")))?,
        severity: Severity::from_code(severity)
            .ok_or_else(|| SentimentError::Corrupt(format!("crisis severity {severity}")))?,
        reason: row.try_get("reason")?,
        window_start_us: row.try_get("window_start_us")?,
        clock: ResponseClock {
            detected_at_us: row.try_get("detected_at_us")?,
            respond_by_us: row.try_get("respond_by_us")?,
            half_time_reminded: row.try_get::<i64, _>("half_time_reminded")? != 0,
            breached: row.try_get::<i64, _>("breached")? != 0,
        },
        num_mentions: unsigned(row, "num_mentions")?,
        num_negative: unsigned(row, "num_negative")?,
        total_reach: unsigned(row, "total_reach")?,
        num_steps: unsigned(row, "num_steps")?,
        updated_at_us: row.try_get("updated_at_us")?,
    })
}

/// Inserts a new open crisis. Fails with a unique violation when the watchlist already has an open
/// one (another replica opened it first): the caller's transaction rolls back and the batch is retried,
/// and then finds that crisis open.
pub async fn insert(conn: &mut AnyConnection, c: &Crisis) -> Result<(), SentimentError> {
    sqlx::query(
        "INSERT INTO crises (tenant_id, crisis_id, watchlist_id, watchlist_name, state, severity, reason, \
         window_start_us, detected_at_us, half_time_at_us, respond_by_us, half_time_reminded, breached, \
         num_mentions, num_negative, total_reach, num_steps, updated_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(c.tenant_id.as_str())
    .bind(c.crisis_id.as_str())
    .bind(c.watchlist_id.as_str())
    .bind(c.watchlist_name.as_str())
    .bind(i64::from(c.state.code()))
    .bind(i64::from(c.severity.code()))
    .bind(c.reason.as_str())
    .bind(c.window_start_us)
    .bind(c.clock.detected_at_us)
    .bind(c.clock.half_time_us())
    .bind(c.clock.respond_by_us)
    .bind(i64::from(c.clock.half_time_reminded))
    .bind(i64::from(c.clock.breached))
    .bind(count(c.num_mentions))
    .bind(count(c.num_negative))
    .bind(count(c.total_reach))
    .bind(count(c.num_steps))
    .bind(c.updated_at_us)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    crisis_id: &str,
) -> Result<Option<Crisis>, SentimentError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM crises WHERE tenant_id = $1 AND crisis_id = $2"
    )))
    .bind(tenant_id)
    .bind(crisis_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode).transpose()
}

/// The watchlist's open crisis, if any.
pub async fn open_for(
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
) -> Result<Option<Crisis>, SentimentError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM crises WHERE tenant_id = $1 AND watchlist_id = $2 AND state <= 3"
    )))
    .bind(tenant_id)
    .bind(watchlist_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode).transpose()
}

/// The tenant's open crises, by watchlist.
pub async fn open_by_watchlist(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<std::collections::HashMap<String, Crisis>, SentimentError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM crises WHERE tenant_id = $1 AND state <= 3"
    )))
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| decode(row).map(|c| (c.watchlist_id.clone(), c)))
        .collect()
}

/// The tenant's crises, newest first.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    open_only: bool,
    watchlist_id: Option<&str>,
    limit: usize,
) -> Result<Vec<Crisis>, SentimentError> {
    let mut sql = format!("SELECT {COLUMNS} FROM crises WHERE tenant_id = $1");
    if open_only {
        sql.push_str(" AND state <= 3");
    }
    if watchlist_id.is_some() {
        sql.push_str(" AND watchlist_id = $3");
    }
    sql.push_str(" ORDER BY detected_at_us DESC, crisis_id LIMIT $2");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
    if let Some(watchlist_id) = watchlist_id {
        query = query.bind(watchlist_id);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(decode).collect()
}

/// Adds newly attached mentions to the crisis's totals.
pub async fn add_totals(
    conn: &mut AnyConnection,
    c: &Crisis,
    mentions: u64,
    negative: u64,
    reach: u64,
    now_us: i64,
) -> Result<(), SentimentError> {
    sqlx::query(
        "UPDATE crises SET num_mentions = num_mentions + $1, num_negative = num_negative + $2, \
         total_reach = total_reach + $3, updated_at_us = $4 WHERE tenant_id = $5 AND crisis_id = $6",
    )
    .bind(count(mentions))
    .bind(count(negative))
    .bind(count(reach))
    .bind(now_us)
    .bind(c.tenant_id.as_str())
    .bind(c.crisis_id.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Raises the severity; false when it already was at least `severity` (another writer got there
/// first), in which case nothing is announced.
pub async fn raise_severity(
    conn: &mut AnyConnection,
    c: &Crisis,
    severity: Severity,
    now_us: i64,
) -> Result<bool, SentimentError> {
    let updated = sqlx::query(
        "UPDATE crises SET severity = $1, updated_at_us = $2 \
         WHERE tenant_id = $3 AND crisis_id = $4 AND severity < $5",
    )
    .bind(i64::from(severity.code()))
    .bind(now_us)
    .bind(c.tenant_id.as_str())
    .bind(c.crisis_id.as_str())
    .bind(i64::from(severity.code()))
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Moves the crisis from `from` to `to`; false when its state is no longer `from` (a concurrent
/// action won).
pub async fn set_state(
    conn: &mut AnyConnection,
    c: &Crisis,
    from: CrisisState,
    to: CrisisState,
    now_us: i64,
) -> Result<bool, SentimentError> {
    let updated = sqlx::query(
        "UPDATE crises SET state = $1, updated_at_us = $2 \
         WHERE tenant_id = $3 AND crisis_id = $4 AND state = $5",
    )
    .bind(i64::from(to.code()))
    .bind(now_us)
    .bind(c.tenant_id.as_str())
    .bind(c.crisis_id.as_str())
    .bind(i64::from(from.code()))
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Marks a reminder as sent; false when it already was (another sweep sent it).
pub async fn mark_reminded(
    conn: &mut AnyConnection,
    c: &Crisis,
    breach: bool,
    now_us: i64,
) -> Result<bool, SentimentError> {
    let sql = if breach {
        "UPDATE crises SET breached = 1, half_time_reminded = 1, updated_at_us = $1 \
         WHERE tenant_id = $2 AND crisis_id = $3 AND breached = 0 AND state = 1"
    } else {
        "UPDATE crises SET half_time_reminded = 1, updated_at_us = $1 \
         WHERE tenant_id = $2 AND crisis_id = $3 AND half_time_reminded = 0 AND state = 1"
    };
    let updated = sqlx::query(sql)
        .bind(now_us)
        .bind(c.tenant_id.as_str())
        .bind(c.crisis_id.as_str())
        .execute(conn)
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// Crises still only detected whose half time has come and which have not breached yet: those the
/// sweep checks for reminders.
pub async fn due_for_reminder(
    conn: &mut AnyConnection,
    now_us: i64,
    limit: usize,
) -> Result<Vec<Crisis>, SentimentError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM crises WHERE state = 1 AND breached = 0 AND half_time_at_us <= $1 \
         ORDER BY half_time_at_us LIMIT $2"
    )))
    .bind(now_us)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode).collect()
}

/// Appends a step and counts it on the crisis. The number comes from an atomic increment, so two
/// writers never take the same one.
pub async fn add_step(
    conn: &mut AnyConnection,
    tenant_id: &str,
    crisis_id: &str,
    step: &Step,
) -> Result<u64, SentimentError> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE crises SET num_steps = num_steps + 1 WHERE tenant_id = $1 AND crisis_id = $2 \
         RETURNING num_steps",
    )
    .bind(tenant_id)
    .bind(crisis_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO crisis_steps (tenant_id, crisis_id, seq, kind, state, severity, actor, note, at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant_id)
    .bind(crisis_id)
    .bind(seq)
    .bind(i64::from(step.kind))
    .bind(i64::from(step.state.code()))
    .bind(i64::from(step.severity.code()))
    .bind(step.actor.as_str())
    .bind(step.note.as_str())
    .bind(step.at_us)
    .execute(&mut *conn)
    .await?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

pub async fn steps(
    conn: &mut AnyConnection,
    tenant_id: &str,
    crisis_id: &str,
) -> Result<Vec<Step>, SentimentError> {
    let rows = sqlx::query(
        "SELECT seq, kind, state, severity, actor, note, at_us FROM crisis_steps \
         WHERE tenant_id = $1 AND crisis_id = $2 ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(crisis_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let state: i64 = row.try_get(2)?;
            let severity: i64 = row.try_get(3)?;
            Ok(Step {
                seq: u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0),
                kind: i32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
                state: CrisisState::from_code(state)
                    .ok_or_else(|| SentimentError::Corrupt(format!("step state {state}")))?,
                severity: Severity::from_code(severity)
                    .ok_or_else(|| SentimentError::Corrupt(format!("step severity {severity}")))?,
                actor: row.try_get(4)?,
                note: row.try_get(5)?,
                at_us: row.try_get(6)?,
            })
        })
        .collect()
}
