//! Sends and the decisions about them.

use socialops_storage::{Backend, Row};
use sqlx::AnyConnection;

use super::corrupt;
use crate::domain::campaign::{Channel, Kind};
use crate::domain::pressure::PastSend;
use crate::error::CampaignError;

/// Where a send is: decided to go out later (`Delayed`), published (`Sent`), dropped by a rule, or
/// held while its campaign is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    Delayed,
    Sent,
    Dropped,
    Held,
}

impl SendState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delayed => "delayed",
            Self::Sent => "sent",
            Self::Dropped => "dropped",
            Self::Held => "held",
        }
    }

    fn parse(name: &str) -> Result<Self, CampaignError> {
        match name {
            "delayed" => Ok(Self::Delayed),
            "sent" => Ok(Self::Sent),
            "dropped" => Ok(Self::Dropped),
            "held" => Ok(Self::Held),
            other => Err(corrupt("send state", other)),
        }
    }
}

/// What the send says and whom it goes to; `body` is the published `Send` message as JSON, so a held
/// or delayed send goes out exactly as it was decided.
#[derive(Debug, Clone)]
pub struct SendRecord {
    pub send_key: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub user_id: String,
    pub step_id: String,
    pub occurrence: u32,
    pub variant_id: String,
    pub channel: Channel,
    pub kind: Kind,
    pub body: String,
    pub state: SendState,
    pub rule: Option<String>,
    pub first_ready_at_us: i64,
    pub due_at_us: Option<i64>,
    pub decided_at_us: Option<i64>,
    pub created_at_us: i64,
}

const COLUMNS: &str = "send_key, tenant_id, campaign_id, user_id, step_id, occurrence, variant_id, \
     channel, kind, body, state, rule, first_ready_at_us, due_at_us, decided_at_us, created_at_us";

fn from_row(row: &sqlx::any::AnyRow) -> Result<SendRecord, CampaignError> {
    let occurrence: i64 = row.try_get(5)?;
    let channel: String = row.try_get(7)?;
    let kind: String = row.try_get(8)?;
    let state: String = row.try_get(10)?;
    Ok(SendRecord {
        send_key: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        campaign_id: row.try_get(2)?,
        user_id: row.try_get(3)?,
        step_id: row.try_get(4)?,
        occurrence: u32::try_from(occurrence).map_err(|e| corrupt("send occurrence", e))?,
        variant_id: row.try_get(6)?,
        channel: channel.parse().map_err(|e| corrupt("send channel", e))?,
        kind: kind.parse().map_err(|e| corrupt("send kind", e))?,
        body: row.try_get(9)?,
        state: SendState::parse(&state)?,
        rule: row.try_get(11)?,
        first_ready_at_us: row.try_get(12)?,
        due_at_us: row.try_get(13)?,
        decided_at_us: row.try_get(14)?,
        created_at_us: row.try_get(15)?,
    })
}

/// Inserts a send not seen before; false (nothing written) if its key exists: the send was already
/// made, so a redelivered message or a second replica never makes it twice.
pub async fn insert_new(
    conn: &mut AnyConnection,
    send: &SendRecord,
) -> Result<bool, CampaignError> {
    Ok(sqlx::query(
        "INSERT INTO sends (send_key, tenant_id, campaign_id, user_id, step_id, occurrence, \
         variant_id, channel, kind, body, state, rule, first_ready_at_us, due_at_us, decided_at_us, \
         created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (send_key) DO NOTHING",
    )
    .bind(&send.send_key)
    .bind(&send.tenant_id)
    .bind(&send.campaign_id)
    .bind(&send.user_id)
    .bind(&send.step_id)
    .bind(i64::from(send.occurrence))
    .bind(&send.variant_id)
    .bind(send.channel.as_str())
    .bind(send.kind.as_str())
    .bind(&send.body)
    .bind(send.state.as_str())
    .bind(send.rule.as_deref())
    .bind(send.first_ready_at_us)
    .bind(send.due_at_us)
    .bind(send.decided_at_us)
    .bind(send.created_at_us)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Records the decision on a send. Only a send not yet sent or dropped changes, so a decision made
/// twice (two sweeps) publishes once: the caller publishes only when this returns true.
pub async fn decide(
    conn: &mut AnyConnection,
    send_key: &str,
    state: SendState,
    rule: Option<&str>,
    due_at_us: Option<i64>,
    decided_at_us: i64,
) -> Result<bool, CampaignError> {
    Ok(sqlx::query(
        "UPDATE sends SET state = $1, rule = $2, due_at_us = $3, decided_at_us = $4 \
         WHERE send_key = $5 AND state IN ('delayed', 'held')",
    )
    .bind(state.as_str())
    .bind(rule)
    .bind(due_at_us)
    .bind(decided_at_us)
    .bind(send_key)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// The user's sends published at or after `since_us`, oldest first: the history the pressure rules
/// read.
pub async fn history(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    since_us: i64,
) -> Result<Vec<PastSend>, CampaignError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT decided_at_us, channel, kind FROM sends WHERE tenant_id = $1 AND user_id = $2 \
         AND state = 'sent' AND decided_at_us >= $3 ORDER BY decided_at_us",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(since_us)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(at_us, channel, kind)| {
            Ok(PastSend {
                at: crate::time::from_micros(at_us),
                channel: channel.parse().map_err(|e| corrupt("send channel", e))?,
                kind: kind.parse().map_err(|e| corrupt("send kind", e))?,
            })
        })
        .collect()
}

/// Delayed sends now due, oldest first; on PostgreSQL skipping rows another sweep holds.
pub async fn due(
    conn: &mut AnyConnection,
    now_us: i64,
    limit: usize,
) -> Result<Vec<SendRecord>, CampaignError> {
    let lock = match Backend::of(conn) {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM sends WHERE state = 'delayed' AND due_at_us <= $1 \
         ORDER BY due_at_us LIMIT $2{lock}"
    )))
    .bind(now_us)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Makes the campaign's held sends due now; returns how many.
pub async fn release_held(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    now_us: i64,
) -> Result<u64, CampaignError> {
    Ok(sqlx::query(
        "UPDATE sends SET state = 'delayed', due_at_us = $1, rule = NULL \
         WHERE tenant_id = $2 AND campaign_id = $3 AND state = 'held'",
    )
    .bind(now_us)
    .bind(tenant_id)
    .bind(campaign_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Sends of a campaign or of a user (or both), newest first, after the page token.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: Option<&str>,
    user_id: Option<&str>,
    after: Option<(i64, &str)>,
    limit: usize,
) -> Result<Vec<SendRecord>, CampaignError> {
    let backend = Backend::of(conn);
    let mut sql = socialops_storage::SqlText::new(
        backend,
        &format!("SELECT {COLUMNS} FROM sends WHERE tenant_id = "),
    );
    sql.param();
    if campaign_id.is_some() {
        sql.push(" AND campaign_id = ").param();
    }
    if user_id.is_some() {
        sql.push(" AND user_id = ").param();
    }
    if after.is_some() {
        sql.push(" AND (created_at_us < ")
            .param()
            .push(" OR (created_at_us = ")
            .param()
            .push(" AND send_key > ")
            .param()
            .push("))");
    }
    sql.push(" ORDER BY created_at_us DESC, send_key LIMIT ")
        .param();
    let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
    if let Some(campaign_id) = campaign_id {
        query = query.bind(campaign_id);
    }
    if let Some(user_id) = user_id {
        query = query.bind(user_id);
    }
    if let Some((at_us, key)) = after {
        query = query.bind(at_us).bind(at_us).bind(key);
    }
    let rows = query
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// One recorded decision about a user in a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub send_key: Option<String>,
    pub step_id: Option<String>,
    /// entered, not_entered, sent, delayed, dropped, held, exited.
    pub outcome: String,
    pub rule: Option<String>,
    pub detail: Option<String>,
    pub until_us: Option<i64>,
    pub at_us: i64,
}

pub async fn record_decision(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    user_id: &str,
    decision: &DecisionRecord,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO decisions (tenant_id, campaign_id, user_id, send_key, step_id, outcome, rule, \
         detail, until_us, at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(user_id)
    .bind(decision.send_key.as_deref())
    .bind(decision.step_id.as_deref())
    .bind(&decision.outcome)
    .bind(decision.rule.as_deref())
    .bind(decision.detail.as_deref())
    .bind(decision.until_us)
    .bind(decision.at_us)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn decisions(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    user_id: &str,
) -> Result<Vec<DecisionRecord>, CampaignError> {
    let rows = sqlx::query(
        "SELECT send_key, step_id, outcome, rule, detail, until_us, at_us FROM decisions \
         WHERE tenant_id = $1 AND campaign_id = $2 AND user_id = $3 ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DecisionRecord {
                send_key: row.try_get(0)?,
                step_id: row.try_get(1)?,
                outcome: row.try_get(2)?,
                rule: row.try_get(3)?,
                detail: row.try_get(4)?,
                until_us: row.try_get(5)?,
                at_us: row.try_get(6)?,
            })
        })
        .collect()
}

/// Sends of a campaign by state and rule.
pub async fn counts(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<Vec<(SendState, Option<String>, u64)>, CampaignError> {
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT state, rule, COUNT(*) FROM sends WHERE tenant_id = $1 AND campaign_id = $2 \
         GROUP BY state, rule ORDER BY state, rule",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(state, rule, n)| Ok((SendState::parse(&state)?, rule, super::count(n))))
        .collect()
}
