//! Per-tenant state: settings, FAQ entries and the replies given, open crises, activity by hour.

use socialops_storage::Row;
use sqlx::AnyConnection;

use super::corrupt;
use crate::domain::faq::FaqEntry;
use crate::domain::tenant::{Severity, TenantSettings};
use crate::error::CampaignError;

pub async fn settings(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<TenantSettings, CampaignError> {
    let document: Option<String> =
        sqlx::query_scalar("SELECT settings FROM tenant_settings WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(conn)
            .await?;
    match document {
        Some(document) => {
            serde_json::from_str(&document).map_err(|e| corrupt("tenant settings", e))
        }
        None => Ok(TenantSettings::default()),
    }
}

pub async fn set_settings(
    conn: &mut AnyConnection,
    tenant_id: &str,
    settings: &TenantSettings,
) -> Result<(), CampaignError> {
    let document = serde_json::to_string(settings).map_err(|e| corrupt("tenant settings", e))?;
    sqlx::query(
        "INSERT INTO tenant_settings (tenant_id, settings) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings",
    )
    .bind(tenant_id)
    .bind(document)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn put_faq(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entry: &FaqEntry,
    now_us: i64,
) -> Result<(), CampaignError> {
    let patterns = serde_json::to_string(&entry.patterns).map_err(|e| corrupt("faq", e))?;
    sqlx::query(
        "INSERT INTO faqs (tenant_id, faq_id, patterns, answer, updated_at_us) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, faq_id) DO UPDATE SET \
         patterns = excluded.patterns, answer = excluded.answer, updated_at_us = excluded.updated_at_us",
    )
    .bind(tenant_id)
    .bind(&entry.id)
    .bind(patterns)
    .bind(&entry.answer)
    .bind(now_us)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tenant's FAQ entries in id order, with when each was last changed.
pub async fn faqs(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<(FaqEntry, i64)>, CampaignError> {
    let rows = sqlx::query(
        "SELECT faq_id, patterns, answer, updated_at_us FROM faqs WHERE tenant_id = $1 \
         ORDER BY faq_id",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let patterns: String = row.try_get(1)?;
            Ok((
                FaqEntry {
                    id: row.try_get(0)?,
                    patterns: serde_json::from_str(&patterns).map_err(|e| corrupt("faq", e))?,
                    answer: row.try_get(2)?,
                },
                row.try_get(3)?,
            ))
        })
        .collect()
}

pub async fn delete_faq(
    conn: &mut AnyConnection,
    tenant_id: &str,
    faq_id: &str,
) -> Result<bool, CampaignError> {
    Ok(
        sqlx::query("DELETE FROM faqs WHERE tenant_id = $1 AND faq_id = $2")
            .bind(tenant_id)
            .bind(faq_id)
            .execute(conn)
            .await?
            .rows_affected()
            > 0,
    )
}

/// Records an answer in the conversation unless the same question was answered there after
/// `cooldown_from_us`; true when the answer may go out.
pub async fn claim_faq_reply(
    conn: &mut AnyConnection,
    tenant_id: &str,
    conversation_id: &str,
    faq_id: &str,
    user_id: &str,
    now_us: i64,
    cooldown_from_us: i64,
) -> Result<bool, CampaignError> {
    Ok(sqlx::query(
        "INSERT INTO faq_replies (tenant_id, conversation_id, faq_id, user_id, num_replies, \
         replied_at_us) VALUES ($1, $2, $3, $4, 1, $5) \
         ON CONFLICT (tenant_id, conversation_id, faq_id) DO UPDATE SET \
         num_replies = faq_replies.num_replies + 1, replied_at_us = excluded.replied_at_us \
         WHERE faq_replies.replied_at_us < $6",
    )
    .bind(tenant_id)
    .bind(conversation_id)
    .bind(faq_id)
    .bind(user_id)
    .bind(now_us)
    .bind(cooldown_from_us)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Records a crisis's severity and whether it is open.
pub async fn set_crisis(
    conn: &mut AnyConnection,
    tenant_id: &str,
    crisis_id: &str,
    severity: Severity,
    open: bool,
    at_us: i64,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO crises (tenant_id, crisis_id, severity, open, at_us) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, crisis_id) DO UPDATE SET severity = excluded.severity, \
         open = excluded.open, at_us = excluded.at_us",
    )
    .bind(tenant_id)
    .bind(crisis_id)
    .bind(severity.code())
    .bind(i64::from(open))
    .bind(at_us)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tenant's open crises, most severe first.
pub async fn open_crises(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<(String, Severity)>, CampaignError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT crisis_id, severity FROM crises WHERE tenant_id = $1 AND open = 1 \
         ORDER BY severity DESC, crisis_id",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, code)| {
            Ok((
                id,
                Severity::from_code(code).ok_or_else(|| corrupt("crisis severity", code))?,
            ))
        })
        .collect()
}

/// Adds events to the tenant's activity by local hour.
pub async fn add_hours(
    conn: &mut AnyConnection,
    tenant_id: &str,
    hours: &[u32; 24],
) -> Result<(), CampaignError> {
    for (hour, n) in hours.iter().enumerate().filter(|(_, n)| **n > 0) {
        sqlx::query(
            "INSERT INTO tenant_hours (tenant_id, hour, num_events) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, hour) DO UPDATE SET \
             num_events = tenant_hours.num_events + excluded.num_events",
        )
        .bind(tenant_id)
        .bind(hour as i64)
        .bind(i64::from(*n))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The local hour the tenant's users are most active in, if any activity was seen.
pub async fn peak_hour(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<u8>, CampaignError> {
    let hour: Option<i64> = sqlx::query_scalar(
        "SELECT hour FROM tenant_hours WHERE tenant_id = $1 ORDER BY num_events DESC, hour LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?;
    Ok(hour.and_then(|h| u8::try_from(h).ok()))
}
