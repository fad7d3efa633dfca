//! Campaigns, their lifecycle transitions and accepted review findings.

use socialops_storage::Row;
use sqlx::AnyConnection;

use super::{corrupt, count};
use crate::domain::campaign::Status;
use crate::domain::definition::{CampaignSpec, Entry};
use crate::error::CampaignError;

/// A stored campaign with its parsed definition.
#[derive(Debug, Clone)]
pub struct CampaignRecord {
    pub tenant_id: String,
    pub campaign_id: String,
    pub status: Status,
    pub spec: CampaignSpec,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    /// `manual` or `crisis` while paused.
    pub paused_by: Option<String>,
    pub pause_reason: Option<String>,
    pub crisis_id: Option<String>,
    pub num_sent: u64,
    pub next_entry_at_us: Option<i64>,
    /// The variant the experiment rolled out to every new entrant, and when.
    pub winner: Option<String>,
    pub rolled_out_at_us: Option<i64>,
}

/// How an incoming message finds the running campaigns it may start: the entry's type and key.
pub fn entry_index(entry: &Entry) -> (&'static str, String) {
    match entry {
        Entry::SegmentEntered { segment_id } => ("segment_entered", segment_id.clone()),
        Entry::SegmentLeft { segment_id } => ("segment_left", segment_id.clone()),
        Entry::StageChanged { to, .. } => ("stage_changed", to.as_str().to_owned()),
        Entry::Event { event } => ("event", event.event.as_str().to_owned()),
        Entry::Schedule { .. } => ("schedule", String::new()),
        Entry::Launch { .. } => ("launch", String::new()),
    }
}

const COLUMNS: &str = "tenant_id, campaign_id, status, definition, created_at_us, updated_at_us, \
     paused_by, pause_reason, crisis_id, num_sent, next_entry_at_us, winner, rolled_out_at_us";

fn from_row(row: &sqlx::any::AnyRow) -> Result<CampaignRecord, CampaignError> {
    let status: String = row.try_get(2)?;
    let definition: String = row.try_get(3)?;
    Ok(CampaignRecord {
        tenant_id: row.try_get(0)?,
        campaign_id: row.try_get(1)?,
        status: status.parse().map_err(|e| corrupt("campaign status", e))?,
        spec: serde_json::from_str(&definition).map_err(|e| corrupt("campaign definition", e))?,
        created_at_us: row.try_get(4)?,
        updated_at_us: row.try_get(5)?,
        paused_by: row.try_get(6)?,
        pause_reason: row.try_get(7)?,
        crisis_id: row.try_get(8)?,
        num_sent: count(row.try_get(9)?),
        next_entry_at_us: row.try_get(10)?,
        winner: row.try_get(11)?,
        rolled_out_at_us: row.try_get(12)?,
    })
}

pub async fn insert(
    conn: &mut AnyConnection,
    record: &CampaignRecord,
) -> Result<(), CampaignError> {
    let (entry_type, entry_key) = entry_index(&record.spec.entry);
    let definition = serde_json::to_string(&record.spec).map_err(|e| corrupt("definition", e))?;
    let result = sqlx::query(
        "INSERT INTO campaigns (tenant_id, campaign_id, name, status, channel, kind, definition, \
         entry_type, entry_key, created_at_us, updated_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(&record.tenant_id)
    .bind(&record.campaign_id)
    .bind(&record.spec.name)
    .bind(record.status.as_str())
    .bind(record.spec.channel.as_str())
    .bind(record.spec.kind.as_str())
    .bind(definition)
    .bind(entry_type)
    .bind(entry_key)
    .bind(record.created_at_us)
    .execute(conn)
    .await;
    result.map(|_| ()).map_err(|e| {
        CampaignError::on_unique(e, || format!("campaign {} exists", record.campaign_id))
    })
}

/// Replaces the definition while the campaign is in one of `statuses`; false if it is not.
pub async fn update_definition(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    spec: &CampaignSpec,
    statuses: &[Status],
    now_us: i64,
) -> Result<bool, CampaignError> {
    let (entry_type, entry_key) = entry_index(&spec.entry);
    let definition = serde_json::to_string(spec).map_err(|e| corrupt("definition", e))?;
    let mut updated = false;
    for status in statuses {
        updated |= sqlx::query(
            "UPDATE campaigns SET name = $1, channel = $2, kind = $3, definition = $4, \
             entry_type = $5, entry_key = $6, updated_at_us = $7 \
             WHERE tenant_id = $8 AND campaign_id = $9 AND status = $10",
        )
        .bind(&spec.name)
        .bind(spec.channel.as_str())
        .bind(spec.kind.as_str())
        .bind(&definition)
        .bind(entry_type)
        .bind(&entry_key)
        .bind(now_us)
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(status.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected()
            > 0;
    }
    Ok(updated)
}

pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<Option<CampaignRecord>, CampaignError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND campaign_id = $2"
    )))
    .bind(tenant_id)
    .bind(campaign_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The tenant's campaigns in `status` (every status but archived when `None`), newest first.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    status: Option<Status>,
) -> Result<Vec<CampaignRecord>, CampaignError> {
    let rows = match status {
        Some(status) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND status = $2 \
                 ORDER BY created_at_us DESC, campaign_id"
            )))
            .bind(tenant_id)
            .bind(status.as_str())
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND status <> 'archived' \
                 ORDER BY created_at_us DESC, campaign_id"
            )))
            .bind(tenant_id)
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// The running campaigns of the tenant whose entry has this type and key.
pub async fn running_by_entry(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entry_type: &str,
    entry_key: &str,
) -> Result<Vec<CampaignRecord>, CampaignError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND status = 'running' \
         AND entry_type = $2 AND entry_key = $3 ORDER BY campaign_id"
    )))
    .bind(tenant_id)
    .bind(entry_type)
    .bind(entry_key)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The tenant's campaigns of `kind` in `status`.
pub async fn by_kind(
    conn: &mut AnyConnection,
    tenant_id: &str,
    kind: &str,
    status: Status,
) -> Result<Vec<CampaignRecord>, CampaignError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND kind = $2 AND status = $3 \
         ORDER BY campaign_id"
    )))
    .bind(tenant_id)
    .bind(kind)
    .bind(status.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Running campaigns whose scheduled entry or launch is due.
pub async fn due_entries(
    conn: &mut AnyConnection,
    now_us: i64,
    limit: usize,
) -> Result<Vec<CampaignRecord>, CampaignError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE next_entry_at_us IS NOT NULL \
         AND next_entry_at_us <= $1 AND status = 'running' ORDER BY next_entry_at_us LIMIT $2"
    )))
    .bind(now_us)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn set_next_entry(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    next_entry_at_us: Option<i64>,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE campaigns SET next_entry_at_us = $1 WHERE tenant_id = $2 AND campaign_id = $3",
    )
    .bind(next_entry_at_us)
    .bind(tenant_id)
    .bind(campaign_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a lifecycle change writes besides the status.
#[derive(Debug, Clone, Default)]
pub struct Pause {
    pub paused_by: Option<String>,
    pub reason: Option<String>,
    pub crisis_id: Option<String>,
}

/// Moves the campaign from `from` to `to` and records who and why; false (and nothing written) if
/// it is no longer in `from`.
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    from: Status,
    to: Status,
    pause: &Pause,
    actor: &str,
    reason: &str,
    now_us: i64,
) -> Result<bool, CampaignError> {
    let moved = sqlx::query(
        "UPDATE campaigns SET status = $1, paused_by = $2, pause_reason = $3, crisis_id = $4, \
         updated_at_us = $5 WHERE tenant_id = $6 AND campaign_id = $7 AND status = $8",
    )
    .bind(to.as_str())
    .bind(pause.paused_by.as_deref())
    .bind(pause.reason.as_deref())
    .bind(pause.crisis_id.as_deref())
    .bind(now_us)
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if moved {
        sqlx::query(
            "INSERT INTO campaign_transitions (tenant_id, campaign_id, from_status, to_status, \
             actor, reason, at_us) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(actor)
        .bind(reason)
        .bind(now_us)
        .execute(conn)
        .await?;
    }
    Ok(moved)
}

/// Records the experiment's roll-out of `winner` (once: false if the campaign had one) and a
/// transition, running to running, whose reason holds the numbers.
pub async fn roll_out(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    winner: &str,
    reason: &str,
    now_us: i64,
) -> Result<bool, CampaignError> {
    let done = sqlx::query(
        "UPDATE campaigns SET winner = $1, rolled_out_at_us = $2, updated_at_us = $2 \
         WHERE tenant_id = $3 AND campaign_id = $4 AND winner IS NULL AND status = 'running'",
    )
    .bind(winner)
    .bind(now_us)
    .bind(tenant_id)
    .bind(campaign_id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if done {
        sqlx::query(
            "INSERT INTO campaign_transitions (tenant_id, campaign_id, from_status, to_status, \
             actor, reason, at_us) VALUES ($1, $2, 'running', 'running', 'experiment', $3, $4)",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(reason)
        .bind(now_us)
        .execute(conn)
        .await?;
    }
    Ok(done)
}

/// Running campaigns without a rolled-out winner, across tenants: `(tenant, campaign)`.
pub async fn running_undecided(
    conn: &mut AnyConnection,
) -> Result<Vec<CampaignRecord>, CampaignError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM campaigns WHERE status = 'running' AND winner IS NULL \
         ORDER BY tenant_id, campaign_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    pub from: String,
    pub to: String,
    pub actor: String,
    pub reason: String,
    pub at_us: i64,
}

pub async fn transitions(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<Vec<TransitionRecord>, CampaignError> {
    let rows = sqlx::query(
        "SELECT from_status, to_status, actor, reason, at_us FROM campaign_transitions \
         WHERE tenant_id = $1 AND campaign_id = $2 ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TransitionRecord {
                from: row.try_get(0)?,
                to: row.try_get(1)?,
                actor: row.try_get(2)?,
                reason: row.try_get(3)?,
                at_us: row.try_get(4)?,
            })
        })
        .collect()
}

/// Counts one send against the budget; false when the budget is spent.
pub async fn spend_budget(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    budget: Option<u64>,
) -> Result<bool, CampaignError> {
    let limit = budget.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
    Ok(sqlx::query(
        "UPDATE campaigns SET num_sent = num_sent + 1 \
         WHERE tenant_id = $1 AND campaign_id = $2 AND num_sent < $3",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(limit)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Gives back a send counted by [`spend_budget`] that did not go out after all.
pub async fn unspend_budget(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE campaigns SET num_sent = num_sent - 1 \
         WHERE tenant_id = $1 AND campaign_id = $2 AND num_sent > 0",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub finding_id: String,
    pub actor: String,
    pub reason: String,
}

pub async fn accept_finding(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    acceptance: &Acceptance,
    now_us: i64,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO finding_acceptances (tenant_id, campaign_id, finding_id, actor, reason, at_us) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, campaign_id, finding_id) \
         DO UPDATE SET actor = excluded.actor, reason = excluded.reason, at_us = excluded.at_us",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(&acceptance.finding_id)
    .bind(&acceptance.actor)
    .bind(&acceptance.reason)
    .bind(now_us)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn acceptances(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<Vec<Acceptance>, CampaignError> {
    let rows = sqlx::query(
        "SELECT finding_id, actor, reason FROM finding_acceptances \
         WHERE tenant_id = $1 AND campaign_id = $2 ORDER BY finding_id",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Acceptance {
                finding_id: row.try_get(0)?,
                actor: row.try_get(1)?,
                reason: row.try_get(2)?,
            })
        })
        .collect()
}

/// Copies a launch's members (idempotent: a member copied twice is one row).
pub async fn add_launch_members(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    user_ids: &[String],
) -> Result<(), CampaignError> {
    restart_queue(conn, tenant_id, campaign_id).await?;
    for chunk in user_ids.chunks(5_000) {
        let mut sql = socialops_storage::SqlText::new(
            socialops_storage::Backend::of(conn),
            "INSERT INTO launch_members (tenant_id, campaign_id, user_id) VALUES ",
        );
        sql.value_rows(chunk.len(), 3)
            .push(" ON CONFLICT (tenant_id, campaign_id, user_id) DO NOTHING");
        let mut query = sqlx::query(sql.into_sql());
        for user in chunk {
            query = query.bind(tenant_id).bind(campaign_id).bind(user.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Takes the next `limit` members of a launch's queue, in user order after the campaign's
/// `launch_cursor`, and moves the cursor past them; the queue's rows go once it is worked through.
/// Reading from the cursor costs the same at the millionth member as at the first, where deleting
/// each batch would leave the next read to step over every row deleted before it. On PostgreSQL the
/// campaign's row stays locked until the transaction ends, so two sweeps never take the same members.
pub async fn take_launch_members(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    limit: usize,
) -> Result<Vec<String>, CampaignError> {
    let lock = match socialops_storage::Backend::of(conn) {
        socialops_storage::Backend::Postgres => " FOR UPDATE",
        socialops_storage::Backend::Sqlite => "",
    };
    let cursor: Option<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT launch_cursor FROM campaigns WHERE tenant_id = $1 AND campaign_id = $2{lock}"
    )))
    .bind(tenant_id)
    .bind(campaign_id)
    .fetch_optional(&mut *conn)
    .await?;
    let cursor = cursor.flatten().unwrap_or_default();
    let users: Vec<String> = sqlx::query_scalar(
        "SELECT user_id FROM launch_members WHERE tenant_id = $1 AND campaign_id = $2 \
         AND user_id > $3 ORDER BY user_id LIMIT $4",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(&cursor)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    if users.len() < limit {
        // Worked through: the queue is emptied and the cursor starts again.
        sqlx::query("DELETE FROM launch_members WHERE tenant_id = $1 AND campaign_id = $2")
            .bind(tenant_id)
            .bind(campaign_id)
            .execute(&mut *conn)
            .await?;
        set_launch_cursor(conn, tenant_id, campaign_id, None).await?;
    } else {
        set_launch_cursor(
            conn,
            tenant_id,
            campaign_id,
            users.last().map(String::as_str),
        )
        .await?;
    }
    Ok(users)
}

async fn set_launch_cursor(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    cursor: Option<&str>,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE campaigns SET launch_cursor = $1 WHERE tenant_id = $2 AND campaign_id = $3",
    )
    .bind(cursor)
    .bind(tenant_id)
    .bind(campaign_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Before members are queued again: the members already entered leave the queue and the cursor
/// starts from the beginning, so a member queued anew enters again and none still waiting is lost.
async fn restart_queue(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<(), CampaignError> {
    sqlx::query(
        "DELETE FROM launch_members WHERE tenant_id = $1 AND campaign_id = $2 AND user_id <= \
         (SELECT launch_cursor FROM campaigns WHERE tenant_id = $3 AND campaign_id = $4)",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(tenant_id)
    .bind(campaign_id)
    .execute(&mut *conn)
    .await?;
    set_launch_cursor(conn, tenant_id, campaign_id, None).await
}

/// Running campaigns with members still queued to enter, at most `limit`.
pub async fn with_queued_members(
    conn: &mut AnyConnection,
    limit: usize,
) -> Result<Vec<(String, String)>, CampaignError> {
    Ok(sqlx::query_as(
        "SELECT c.tenant_id, c.campaign_id FROM campaigns c WHERE c.status = 'running' \
         AND EXISTS (SELECT 1 FROM launch_members m WHERE m.tenant_id = c.tenant_id \
         AND m.campaign_id = c.campaign_id AND m.user_id > COALESCE(c.launch_cursor, '')) \
         ORDER BY c.tenant_id, c.campaign_id LIMIT $1",
    )
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?)
}

/// Queues every member of the segment as the campaign's service knows it to enter the campaign.
pub async fn queue_segment_members(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    segment_id: &str,
) -> Result<u64, CampaignError> {
    restart_queue(conn, tenant_id, campaign_id).await?;
    Ok(sqlx::query(
        "INSERT INTO launch_members (tenant_id, campaign_id, user_id) \
         SELECT tenant_id, $1, user_id FROM segment_members WHERE tenant_id = $2 AND segment_id = $3 \
         ON CONFLICT (tenant_id, campaign_id, user_id) DO NOTHING",
    )
    .bind(campaign_id)
    .bind(tenant_id)
    .bind(segment_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Remembers a segment membership change.
pub async fn set_segment_member(
    conn: &mut AnyConnection,
    tenant_id: &str,
    segment_id: &str,
    user_id: &str,
    member: bool,
) -> Result<(), CampaignError> {
    let sql = if member {
        "INSERT INTO segment_members (tenant_id, segment_id, user_id) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, segment_id, user_id) DO NOTHING"
    } else {
        "DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 AND user_id = $3"
    };
    sqlx::query(sql)
        .bind(tenant_id)
        .bind(segment_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a batch's segment entries and exits: a user's last change to a segment holds; the
/// members who entered are inserted in one statement, each who left is deleted.
pub async fn set_segment_members(
    conn: &mut AnyConnection,
    changes: &[(String, String, String, bool)],
) -> Result<(), CampaignError> {
    // A user's last change in the batch is what holds.
    let mut last: std::collections::BTreeMap<(&str, &str, &str), bool> = Default::default();
    for (tenant_id, segment_id, user_id, member) in changes {
        last.insert((tenant_id, segment_id, user_id), *member);
    }
    let mut rows =
        socialops_storage::rows::Rows::new(&[socialops_storage::rows::ColumnType::Text; 3]);
    for ((tenant_id, segment_id, user_id), member) in &last {
        if *member {
            rows.push(*tenant_id).push(*segment_id).push(*user_id);
        } else {
            set_segment_member(conn, tenant_id, segment_id, user_id, false).await?;
        }
    }
    if !rows.is_empty() {
        rows.insert(
            conn,
            "INSERT INTO segment_members (tenant_id, segment_id, user_id) ",
            " ON CONFLICT (tenant_id, segment_id, user_id) DO NOTHING",
        )
        .await?;
    }
    Ok(())
}

/// Ends every journey of the campaign still under way.
pub async fn exit_journeys(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_id: &str,
    reason: &str,
    now_us: i64,
) -> Result<u64, CampaignError> {
    Ok(sqlx::query(
        "UPDATE journeys SET exited_at_us = $1, exit_reason = $2, due_at_us = NULL, step_id = '' \
         WHERE tenant_id = $3 AND campaign_id = $4 AND exited_at_us IS NULL",
    )
    .bind(now_us)
    .bind(reason)
    .bind(tenant_id)
    .bind(campaign_id)
    .execute(conn)
    .await?
    .rows_affected())
}
