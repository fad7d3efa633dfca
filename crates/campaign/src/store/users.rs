//! What the campaign knows of a user: time zone, stage and tier as last announced, activity by local
//! hour, and whether they have ordered.

use sqlx::AnyConnection;

use super::corrupt;
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

/// The user's record; a user never seen is the default.
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<UserRecord, CampaignError> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT time_zone, stage, tier, hours, first_order_at_us FROM users \
         WHERE tenant_id = $1 AND user_id = $2",
    )
    .bind(tenant_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.map_or_else(|| Ok(UserRecord::default()), from_row)
}

/// The user's record, locked until the transaction ends: everything deciding sends for this user
/// waits for the holder, so two deciders never both see room under a cap. (SQLite has one writer.)
pub async fn lock(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<UserRecord, CampaignError> {
    sqlx::query(
        "INSERT INTO users (tenant_id, user_id) VALUES ($1, $2) \
         ON CONFLICT (tenant_id, user_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    let lock = match socialops_storage::Backend::of(conn) {
        socialops_storage::Backend::Postgres => " FOR UPDATE",
        socialops_storage::Backend::Sqlite => "",
    };
    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT time_zone, stage, tier, hours, first_order_at_us FROM users \
         WHERE tenant_id = $1 AND user_id = $2{lock}"
    )))
    .bind(tenant_id)
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    from_row(row)
}

pub async fn save(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    user: &UserRecord,
) -> Result<(), CampaignError> {
    let hours = serde_json::to_string(&user.hours.0).map_err(|e| corrupt("user hours", e))?;
    sqlx::query(
        "INSERT INTO users (tenant_id, user_id, time_zone, stage, tier, hours, first_order_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, user_id) DO UPDATE SET \
         time_zone = excluded.time_zone, stage = excluded.stage, tier = excluded.tier, \
         hours = excluded.hours, first_order_at_us = excluded.first_order_at_us",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(user.time_zone.as_deref())
    .bind(user.stage.map(|s| s.as_str()))
    .bind(user.tier.map(|t| t.as_str()))
    .bind(hours)
    .bind(user.first_order_at_us)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes everything the service keeps of one user: journeys, sends, decisions, FAQ replies and
/// the user's record. Returns the rows removed.
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
