//! Journeys: one row per user and time through a campaign, with its state and timer.

use socialops_storage::Row;
use socialops_storage::rows::{ColumnType, Rows};
use sqlx::AnyConnection;

use super::{UserKey, corrupt};
use crate::domain::journey::JourneyState;
use crate::error::CampaignError;

#[derive(Debug, Clone)]
pub struct JourneyRecord {
    pub tenant_id: String,
    pub campaign_id: String,
    pub user_id: String,
    pub occurrence: u32,
    pub holdout: bool,
    pub variant_id: String,
    pub step_id: String,
    pub state: JourneyState,
    pub entered_at_us: i64,
    pub due_at_us: Option<i64>,
    pub exited_at_us: Option<i64>,
    pub exit_reason: Option<String>,
}

const COLUMNS: &str = "tenant_id, campaign_id, user_id, occurrence, holdout, variant_id, step_id, \
     state, entered_at_us, due_at_us, exited_at_us, exit_reason";

fn from_row(row: &sqlx::any::AnyRow) -> Result<JourneyRecord, CampaignError> {
    let occurrence: i64 = row.try_get(3)?;
    let holdout: i64 = row.try_get(4)?;
    let state: String = row.try_get(7)?;
    Ok(JourneyRecord {
        tenant_id: row.try_get(0)?,
        campaign_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        occurrence: u32::try_from(occurrence).map_err(|e| corrupt("journey occurrence", e))?,
        holdout: holdout != 0,
        variant_id: row.try_get(5)?,
        step_id: row.try_get(6)?,
        state: serde_json::from_str(&state).map_err(|e| corrupt("journey state", e))?,
        entered_at_us: row.try_get(8)?,
        due_at_us: row.try_get(9)?,
        exited_at_us: row.try_get(10)?,
        exit_reason: row.try_get(11)?,
    })
}

/// Inserts new journeys, one statement for all; an occurrence that already exists is left alone.
pub async fn insert_all(
    conn: &mut AnyConnection,
    journeys: &[&JourneyRecord],
) -> Result<(), CampaignError> {
    if journeys.is_empty() {
        return Ok(());
    }
    use ColumnType::{Int, Text};
    let mut rows = Rows::new(&[
        Text, Text, Text, Int, Int, Text, Text, Text, Int, Int, Int, Text,
    ]);
    for journey in journeys {
        let state =
            serde_json::to_string(&journey.state).map_err(|e| corrupt("journey state", e))?;
        rows.push(journey.tenant_id.as_str())
            .push(journey.campaign_id.as_str())
            .push(journey.user_id.as_str())
            .push(i64::from(journey.occurrence))
            .push(i64::from(journey.holdout))
            .push(journey.variant_id.as_str())
            .push(journey.step_id.as_str())
            .push(state)
            .push(journey.entered_at_us)
            .push(journey.due_at_us)
            .push(journey.exited_at_us)
            .push(super::text(journey.exit_reason.as_deref()));
    }
    rows.insert(
        conn,
        &format!("INSERT INTO journeys ({COLUMNS}) "),
        " ON CONFLICT (tenant_id, campaign_id, user_id, occurrence) DO NOTHING",
    )
    .await?;
    Ok(())
}

/// The named users' journeys still under way and their latest journey through every campaign they
/// have been in, in one statement per chunk of users.
pub async fn of_users(
    conn: &mut AnyConnection,
    keys: &[UserKey],
) -> Result<Vec<JourneyRecord>, CampaignError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows = super::fetch_for_users(
        conn,
        keys,
        &format!("SELECT {COLUMNS} FROM journeys j WHERE "),
        " AND (exited_at_us IS NULL OR occurrence = (SELECT MAX(l.occurrence) FROM journeys l \
         WHERE l.tenant_id = j.tenant_id AND l.campaign_id = j.campaign_id \
         AND l.user_id = j.user_id)) ORDER BY tenant_id, user_id, campaign_id, occurrence",
        None,
        "",
    )
    .await?;
    rows.iter().map(from_row).collect()
}

/// Writes the journey's new state, step, timer and exit.
pub async fn save(conn: &mut AnyConnection, journey: &JourneyRecord) -> Result<(), CampaignError> {
    let state = serde_json::to_string(&journey.state).map_err(|e| corrupt("journey state", e))?;
    sqlx::query(
        "UPDATE journeys SET step_id = $1, state = $2, due_at_us = $3, exited_at_us = $4, \
         exit_reason = $5 WHERE tenant_id = $6 AND campaign_id = $7 AND user_id = $8 \
         AND occurrence = $9",
    )
    .bind(&journey.step_id)
    .bind(state)
    .bind(journey.due_at_us)
    .bind(journey.exited_at_us)
    .bind(journey.exit_reason.as_deref())
    .bind(&journey.tenant_id)
    .bind(&journey.campaign_id)
    .bind(&journey.user_id)
    .bind(i64::from(journey.occurrence))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every journey of the user through the campaign, first first.
pub async fn of_user(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    user_id: &str,
) -> Result<Vec<JourneyRecord>, CampaignError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM journeys WHERE tenant_id = $1 AND campaign_id = $2 AND user_id = $3 \
         ORDER BY occurrence"
    )))
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Journeys whose timer is due, oldest first. On PostgreSQL rows another replica is working on are
/// skipped, so two sweeps never wake the same journey together.
pub async fn due(
    conn: &mut AnyConnection,
    now_us: i64,
    limit: usize,
) -> Result<Vec<JourneyRecord>, CampaignError> {
    let lock = match socialops_storage::Backend::of(conn) {
        socialops_storage::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        socialops_storage::Backend::Sqlite => "",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM journeys WHERE due_at_us IS NOT NULL AND due_at_us <= $1 \
         ORDER BY due_at_us LIMIT $2{lock}"
    )))
    .bind(now_us)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Users in each step of the campaign now, users entered and held out, and exits by reason.
#[derive(Debug, Clone, Default)]
pub struct JourneyCounts {
    pub num_entered: u64,
    pub num_holdout: u64,
    pub steps: Vec<(String, u64)>,
    pub exits: Vec<(String, u64)>,
}

pub async fn counts(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<JourneyCounts, CampaignError> {
    let (entered, holdout): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(holdout), 0) AS BIGINT) FROM journeys \
         WHERE tenant_id = $1 AND campaign_id = $2",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .fetch_one(&mut *conn)
    .await?;
    let steps: Vec<(String, i64)> = sqlx::query_as(
        "SELECT step_id, COUNT(*) FROM journeys WHERE tenant_id = $1 AND campaign_id = $2 \
         AND exited_at_us IS NULL GROUP BY step_id ORDER BY step_id",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .fetch_all(&mut *conn)
    .await?;
    let exits: Vec<(String, i64)> = sqlx::query_as(
        "SELECT exit_reason, COUNT(*) FROM journeys WHERE tenant_id = $1 AND campaign_id = $2 \
         AND exit_reason IS NOT NULL GROUP BY exit_reason ORDER BY exit_reason",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .fetch_all(conn)
    .await?;
    Ok(JourneyCounts {
        num_entered: super::count(entered),
        num_holdout: super::count(holdout),
        steps: steps
            .into_iter()
            .map(|(s, n)| (s, super::count(n)))
            .collect(),
        exits: exits
            .into_iter()
            .map(|(s, n)| (s, super::count(n)))
            .collect(),
    })
}
