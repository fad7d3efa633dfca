//! What the campaign knows of a user: time zone, stage and tier as last announced, activity by local
//! hour, and whether they have ordered.

use std::collections::HashMap;

use socialops_storage::rows::{ColumnType, Rows};
use socialops_storage::{Backend, Row};
use sqlx::AnyConnection;

use super::{UserKey, corrupt};
use crate::domain::definition::{Stage, Tier};
use crate::domain::pressure::HourHistogram;
use crate::error::CampaignError;

#[derive(Debug, Clone, Default)]
pub struct UserRecord {
    /// IANA name, from the `time_zone` attribute of the user's events.
    pub time_zone: Option<String>,
    pub stage: Option<Stage>,
    pub tier: Option<Tier>,
    pub hours: HourHistogram,
    pub first_order_at_us: Option<i64>,
}

type UserRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn from_row(row: UserRow) -> Result<UserRecord, CampaignError> {
    let (time_zone, stage, tier, hours, first_order_at_us) = row;
    let hours = match hours {
        Some(hours) => {
            let counts: Vec<u32> =
                serde_json::from_str(&hours).map_err(|e| corrupt("user hours", e))?;
            let counts: [u32; 24] = counts
                .try_into()
                .map_err(|_| corrupt("user hours", "not 24 hours"))?;
            HourHistogram(counts)
        }
        None => HourHistogram::default(),
    };
    Ok(UserRecord {
        time_zone,
        stage: stage
            .map(|s| s.parse().map_err(|e| corrupt("user stage", e)))
            .transpose()?,
        tier: tier
            .map(|t| t.parse().map_err(|e| corrupt("user tier", e)))
            .transpose()?,
        hours,
        first_order_at_us,
    })
}

/// Every named user's record, created when never seen, in three statements for the whole set. On
/// PostgreSQL the rows stay locked until the transaction ends: everything deciding sends for these
/// users waits for the holder, so two deciders never both see room under a cap; rows are locked
/// in `(tenant, user)` order, so two batches never deadlock on each other. (SQLite has one writer.)
pub async fn lock_all(
    conn: &mut AnyConnection,
    keys: &[UserKey],
) -> Result<HashMap<UserKey, UserRecord>, CampaignError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let mut rows = Rows::new(&[ColumnType::Text, ColumnType::Text]);
    for (tenant_id, user_id) in keys {
        rows.push(tenant_id.as_str()).push(user_id.as_str());
    }
    rows.insert(
        conn,
        "INSERT INTO users (tenant_id, user_id) ",
        " ON CONFLICT (tenant_id, user_id) DO NOTHING",
    )
    .await?;
    let lock = match Backend::of(conn) {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let found = super::fetch_for_users(
        conn,
        keys,
        "SELECT time_zone, stage, tier, hours, first_order_at_us, tenant_id, user_id FROM users \
         WHERE ",
        " ORDER BY tenant_id, user_id",
        None,
        lock,
    )
    .await?;
    let mut users = HashMap::with_capacity(found.len());
    for row in &found {
        let record = from_row((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        ))?;
        users.insert((row.try_get(5)?, row.try_get(6)?), record);
    }
    Ok(users)
}

/// Writes the users' records, one statement for all.
pub async fn save_all(
    conn: &mut AnyConnection,
    users: &[(&UserKey, &UserRecord)],
) -> Result<(), CampaignError> {
    if users.is_empty() {
        return Ok(());
    }
    let mut rows = Rows::new(&[
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Int,
    ]);
    for ((tenant_id, user_id), user) in users {
        let hours = serde_json::to_string(&user.hours.0).map_err(|e| corrupt("user hours", e))?;
        rows.push(tenant_id.as_str())
            .push(user_id.as_str())
            .push(super::text(user.time_zone.as_deref()))
            .push(super::text(user.stage.map(|s| s.as_str())))
            .push(super::text(user.tier.map(|t| t.as_str())))
            .push(hours)
            .push(user.first_order_at_us);
    }
    rows.insert(
        conn,
        "INSERT INTO users (tenant_id, user_id, time_zone, stage, tier, hours, first_order_at_us) ",
        " ON CONFLICT (tenant_id, user_id) DO UPDATE SET time_zone = excluded.time_zone, \
         stage = excluded.stage, tier = excluded.tier, hours = excluded.hours, \
         first_order_at_us = excluded.first_order_at_us",
    )
    .await?;
    Ok(())
}

/// Removes everything the service keeps of one user: journeys, sends, decisions, FAQ replies, coupon
/// codes and their history, and the user's record (a pool's counters keep the totals). Returns the
/// rows removed.
pub async fn erase(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<u64, CampaignError> {
    let mut removed = 0;
    for table in [
        "journeys",
        "sends",
        "decisions",
        "faq_replies",
        "launch_members",
        "segment_members",
        "coupons",
        "coupon_events",
        "users",
    ] {
        removed += sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant_id = $1 AND user_id = $2"
        )))
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(removed)
}
