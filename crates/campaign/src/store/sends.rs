//! Sends and the decisions about them.

use std::collections::{HashMap, HashSet};

use socialops_storage::rows::{ColumnType, Rows};
use socialops_storage::{Backend, Row, SqlText};
use sqlx::AnyConnection;

use super::{UserKey, corrupt};
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

/// Inserts the sends whose keys are not taken, one statement per chunk, and returns the keys
/// inserted: only those sends are new, so only they are published and recorded.
pub async fn insert_new_all(
    conn: &mut AnyConnection,
    sends: &[SendRecord],
) -> Result<HashSet<String>, CampaignError> {
    let mut inserted = HashSet::with_capacity(sends.len());
    if sends.is_empty() {
        return Ok(inserted);
    }
    use ColumnType::{Int, Text};
    let mut rows = Rows::new(&[
        Text, Text, Text, Text, Text, Int, Text, Text, Text, Text, Text, Text, Int, Int, Int, Int,
    ]);
    for send in sends {
        rows.push(send.send_key.as_str())
            .push(send.tenant_id.as_str())
            .push(send.campaign_id.as_str())
            .push(send.user_id.as_str())
            .push(send.step_id.as_str())
            .push(i64::from(send.occurrence))
            .push(send.variant_id.as_str())
            .push(send.channel.as_str())
            .push(send.kind.as_str())
            .push(send.body.as_str())
            .push(send.state.as_str())
            .push(super::text(send.rule.as_deref()))
            .push(send.first_ready_at_us)
            .push(send.due_at_us)
            .push(send.decided_at_us)
            .push(send.created_at_us);
    }
    let backend = Backend::of(conn);
    for chunk in rows.chunks(backend) {
        let mut sql = SqlText::new(backend, &format!("INSERT INTO sends ({COLUMNS}) "));
        chunk.push_source(&mut sql);
        sql.push(" ON CONFLICT (send_key) DO NOTHING RETURNING send_key");
        for row in chunk
            .bind(backend, sqlx::query(sql.into_sql()))
            .fetch_all(&mut *conn)
            .await?
        {
            inserted.insert(row.try_get(0)?);
        }
    }
    Ok(inserted)
}

/// The named users' sends published at or after `since_us`, oldest first, by user.
pub async fn history_of_users(
    conn: &mut AnyConnection,
    keys: &[UserKey],
    since_us: i64,
) -> Result<HashMap<UserKey, Vec<PastSend>>, CampaignError> {
    let mut history: HashMap<UserKey, Vec<PastSend>> = HashMap::new();
    if keys.is_empty() {
        return Ok(history);
    }
    let rows = super::fetch_for_users(
        conn,
        keys,
        "SELECT tenant_id, user_id, decided_at_us, channel, kind FROM sends WHERE ",
        " AND state = 'sent' AND decided_at_us >= ",
        Some(since_us),
        " ORDER BY tenant_id, user_id, decided_at_us",
    )
    .await?;
    for row in &rows {
        let channel: String = row.try_get(3)?;
        let kind: String = row.try_get(4)?;
        history
            .entry((row.try_get(0)?, row.try_get(1)?))
            .or_default()
            .push(PastSend {
                at: crate::time::from_micros(row.try_get(2)?),
                channel: channel.parse().map_err(|e| corrupt("send channel", e))?,
                kind: kind.parse().map_err(|e| corrupt("send kind", e))?,
            });
    }
    Ok(history)
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

/// Records decisions in their order, one statement for all.
pub async fn record_decisions(
    conn: &mut AnyConnection,
    decisions: &[(&str, &str, &str, &DecisionRecord)],
) -> Result<(), CampaignError> {
    if decisions.is_empty() {
        return Ok(());
    }
    use ColumnType::{Int, Text};
    let mut rows = Rows::new(&[Text, Text, Text, Text, Text, Text, Text, Text, Int, Int]);
    for (tenant_id, campaign_id, user_id, decision) in decisions {
        rows.push(*tenant_id)
            .push(*campaign_id)
            .push(*user_id)
            .push(super::text(decision.send_key.as_deref()))
            .push(super::text(decision.step_id.as_deref()))
            .push(decision.outcome.as_str())
            .push(super::text(decision.rule.as_deref()))
            .push(super::text(decision.detail.as_deref()))
            .push(decision.until_us)
            .push(decision.at_us);
    }
    rows.insert(
        conn,
        "INSERT INTO decisions (tenant_id, campaign_id, user_id, send_key, step_id, outcome, rule, \
         detail, until_us, at_us) ",
        "",
    )
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
