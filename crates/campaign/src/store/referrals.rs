//! Referral programmes, invite codes, referrals, the ledger and users' aliases.

use socialops_storage::Row;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{corrupt, count};
use crate::domain::referral::ProgrammeSpec;
use crate::error::CampaignError;

const PROGRAMME_COLUMNS: &str = "programme_id, name, reward_pool_id, invitee_pool_id, \
     reward_every, reversal_window_us, burst_limit, burst_window_us, created_at_us";

pub async fn insert_programme(
    conn: &mut AnyConnection,
    tenant_id: &str,
    spec: &ProgrammeSpec,
    now_us: i64,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO referral_programmes (tenant_id, programme_id, name, reward_pool_id, \
         invitee_pool_id, reward_every, reversal_window_us, burst_limit, burst_window_us, \
         created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant_id)
    .bind(&spec.programme_id)
    .bind(&spec.name)
    .bind(&spec.reward_pool_id)
    .bind(&spec.invitee_pool_id)
    .bind(i64::from(spec.reward_every))
    .bind(spec.reversal_window_us)
    .bind(i64::from(spec.burst_limit))
    .bind(spec.burst_window_us)
    .bind(now_us)
    .execute(conn)
    .await
    .map_err(|e| {
        CampaignError::on_unique(e, || {
            format!("referral programme {} exists", spec.programme_id)
        })
    })?;
    Ok(())
}

fn programme_of(row: &AnyRow) -> Result<(ProgrammeSpec, i64), CampaignError> {
    let small = |value: i64, what: &str| u32::try_from(value).map_err(|e| corrupt(what, e));
    Ok((
        ProgrammeSpec {
            programme_id: row.try_get(0)?,
            name: row.try_get(1)?,
            reward_pool_id: row.try_get(2)?,
            invitee_pool_id: row.try_get(3)?,
            reward_every: small(row.try_get(4)?, "reward_every")?,
            reversal_window_us: row.try_get(5)?,
            burst_limit: small(row.try_get(6)?, "burst_limit")?,
            burst_window_us: row.try_get(7)?,
        },
        row.try_get(8)?,
    ))
}

/// The programme and when it was created.
pub async fn programme(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
) -> Result<Option<(ProgrammeSpec, i64)>, CampaignError> {
    let sql = format!(
        "SELECT {PROGRAMME_COLUMNS} FROM referral_programmes \
         WHERE tenant_id = $1 AND programme_id = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(programme_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(programme_of).transpose()
}

pub async fn programmes(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<(ProgrammeSpec, i64)>, CampaignError> {
    let sql = format!(
        "SELECT {PROGRAMME_COLUMNS} FROM referral_programmes WHERE tenant_id = $1 \
         ORDER BY programme_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(programme_of).collect()
}

/// The user's invite code in the programme, if one was made.
pub async fn code_of(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
    user_id: &str,
) -> Result<Option<String>, CampaignError> {
    Ok(sqlx::query_scalar(
        "SELECT code FROM invite_codes WHERE tenant_id = $1 AND programme_id = $2 AND user_id = $3",
    )
    .bind(tenant_id)
    .bind(programme_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// Stores a new code; false if the code or the user's code in the programme exists already.
pub async fn insert_code(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
    user_id: &str,
    code: &str,
) -> Result<bool, CampaignError> {
    Ok(sqlx::query(
        "INSERT INTO invite_codes (tenant_id, code, programme_id, user_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(code)
    .bind(programme_id)
    .bind(user_id)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// The programme and inviter an invite code belongs to.
pub async fn code_owner(
    conn: &mut AnyConnection,
    tenant_id: &str,
    code: &str,
) -> Result<Option<(String, String)>, CampaignError> {
    let row = sqlx::query(
        "SELECT programme_id, user_id FROM invite_codes WHERE tenant_id = $1 AND code = $2",
    )
    .bind(tenant_id)
    .bind(code)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

pub async fn add_alias(
    conn: &mut AnyConnection,
    tenant_id: &str,
    kind: &str,
    value_hash: &str,
    user_id: &str,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO aliases (tenant_id, kind, value_hash, user_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(kind)
    .bind(value_hash)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// An alias kind the two users share, if any.
pub async fn shared_alias(
    conn: &mut AnyConnection,
    tenant_id: &str,
    a: &str,
    b: &str,
) -> Result<Option<String>, CampaignError> {
    Ok(sqlx::query_scalar(
        "SELECT x.kind FROM aliases x JOIN aliases y ON y.tenant_id = x.tenant_id \
         AND y.kind = x.kind AND y.value_hash = x.value_hash \
         WHERE x.tenant_id = $1 AND x.user_id = $2 AND y.user_id = $3 ORDER BY x.kind LIMIT 1",
    )
    .bind(tenant_id)
    .bind(a)
    .bind(b)
    .fetch_optional(conn)
    .await?)
}

/// A referral as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub programme_id: String,
    pub invitee_user_id: String,
    pub inviter_user_id: String,
    pub state: String,
    pub flag_check: Option<String>,
    pub reason: Option<String>,
    pub referred_at_us: i64,
    pub order_id: Option<String>,
    pub converted_at_us: Option<i64>,
}

const REFERRAL_COLUMNS: &str = "programme_id, invitee_user_id, inviter_user_id, state, \
     flag_check, reason, referred_at_us, order_id, converted_at_us";

fn referral_of(row: &AnyRow) -> Result<Referral, CampaignError> {
    Ok(Referral {
        programme_id: row.try_get(0)?,
        invitee_user_id: row.try_get(1)?,
        inviter_user_id: row.try_get(2)?,
        state: row.try_get(3)?,
        flag_check: row.try_get(4)?,
        reason: row.try_get(5)?,
        referred_at_us: row.try_get(6)?,
        order_id: row.try_get(7)?,
        converted_at_us: row.try_get(8)?,
    })
}

/// Stores the referral unless the invitee was referred in the programme before; true if stored.
pub async fn insert_referral(
    conn: &mut AnyConnection,
    tenant_id: &str,
    referral: &Referral,
) -> Result<bool, CampaignError> {
    Ok(sqlx::query(
        "INSERT INTO referrals (tenant_id, programme_id, invitee_user_id, inviter_user_id, state, \
         flag_check, reason, referred_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(&referral.programme_id)
    .bind(&referral.invitee_user_id)
    .bind(&referral.inviter_user_id)
    .bind(&referral.state)
    .bind(referral.flag_check.as_deref())
    .bind(referral.reason.as_deref())
    .bind(referral.referred_at_us)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Whether `inviter` referred `invitee` in the programme (flagged or not).
pub async fn referred(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
    inviter: &str,
    invitee: &str,
) -> Result<bool, CampaignError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM referrals WHERE tenant_id = $1 AND programme_id = $2 \
         AND inviter_user_id = $3 AND invitee_user_id = $4",
    )
    .bind(tenant_id)
    .bind(programme_id)
    .bind(inviter)
    .bind(invitee)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// The inviter's referrals in the programme after `since_us`.
pub async fn num_recent(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
    inviter: &str,
    since_us: i64,
) -> Result<u64, CampaignError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM referrals WHERE tenant_id = $1 AND programme_id = $2 \
         AND inviter_user_id = $3 AND referred_at_us > $4",
    )
    .bind(tenant_id)
    .bind(programme_id)
    .bind(inviter)
    .bind(since_us)
    .fetch_one(conn)
    .await?;
    Ok(count(n))
}

/// The invitee's referrals in every programme, in a given state.
pub async fn of_invitee(
    conn: &mut AnyConnection,
    tenant_id: &str,
    invitee: &str,
    state: &str,
) -> Result<Vec<Referral>, CampaignError> {
    let sql = format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE tenant_id = $1 AND invitee_user_id = $2 \
         AND state = $3 ORDER BY programme_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(invitee)
        .bind(state)
        .fetch_all(conn)
        .await?;
    rows.iter().map(referral_of).collect()
}

pub async fn set_state(
    conn: &mut AnyConnection,
    tenant_id: &str,
    referral: &Referral,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE referrals SET state = $4, order_id = $5, converted_at_us = $6 \
         WHERE tenant_id = $1 AND programme_id = $2 AND invitee_user_id = $3",
    )
    .bind(tenant_id)
    .bind(&referral.programme_id)
    .bind(&referral.invitee_user_id)
    .bind(&referral.state)
    .bind(referral.order_id.as_deref())
    .bind(referral.converted_at_us)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn flagged(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
) -> Result<Vec<Referral>, CampaignError> {
    let sql = format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE tenant_id = $1 AND programme_id = $2 \
         AND state = 'flagged' ORDER BY referred_at_us, invitee_user_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(programme_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(referral_of).collect()
}

/// One ledger entry; `seq` is given by the store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerEntry {
    pub seq: i64,
    pub programme_id: String,
    pub user_id: String,
    pub kind: String,
    pub invitee_user_id: String,
    pub order_id: Option<String>,
    pub coupon_code: Option<String>,
    pub reverses_seq: Option<i64>,
    pub at_us: i64,
}

/// Appends the entry and returns its sequence number.
pub async fn append(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entry: &LedgerEntry,
) -> Result<i64, CampaignError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO referral_ledger (tenant_id, programme_id, user_id, kind, invitee_user_id, \
         order_id, coupon_code, reverses_seq, at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING seq",
    )
    .bind(tenant_id)
    .bind(&entry.programme_id)
    .bind(&entry.user_id)
    .bind(&entry.kind)
    .bind(&entry.invitee_user_id)
    .bind(entry.order_id.as_deref())
    .bind(entry.coupon_code.as_deref())
    .bind(entry.reverses_seq)
    .bind(entry.at_us)
    .fetch_one(conn)
    .await?)
}

/// The programme's entries, of one beneficiary when `user_id` is given; oldest first.
pub async fn ledger(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
    user_id: Option<&str>,
) -> Result<Vec<LedgerEntry>, CampaignError> {
    let mut sql = "SELECT seq, programme_id, user_id, kind, invitee_user_id, order_id, \
                   coupon_code, reverses_seq, at_us FROM referral_ledger \
                   WHERE tenant_id = $1 AND programme_id = $2"
        .to_owned();
    if user_id.is_some() {
        sql.push_str(" AND user_id = $3");
    }
    sql.push_str(" ORDER BY seq");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(programme_id);
    if let Some(user_id) = user_id {
        query = query.bind(user_id);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            Ok(LedgerEntry {
                seq: row.try_get(0)?,
                programme_id: row.try_get(1)?,
                user_id: row.try_get(2)?,
                kind: row.try_get(3)?,
                invitee_user_id: row.try_get(4)?,
                order_id: row.try_get(5)?,
                coupon_code: row.try_get(6)?,
                reverses_seq: row.try_get(7)?,
                at_us: row.try_get(8)?,
            })
        })
        .collect()
}

/// The inviter's credits in the programme that no reversal points at.
pub async fn num_standing_credits(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
    inviter: &str,
) -> Result<u64, CampaignError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM referral_ledger c WHERE c.tenant_id = $1 AND c.programme_id = $2 \
         AND c.user_id = $3 AND c.kind = 'credit' AND NOT EXISTS (SELECT 1 FROM referral_ledger r \
         WHERE r.tenant_id = c.tenant_id AND r.reverses_seq = c.seq)",
    )
    .bind(tenant_id)
    .bind(programme_id)
    .bind(inviter)
    .fetch_one(conn)
    .await?;
    Ok(count(n))
}

/// The programme's totals: inviters and referrals not flagged, flagged, converted, rewards and
/// what their coupons are worth, reversals.
pub async fn stats(
    conn: &mut AnyConnection,
    tenant_id: &str,
    programme_id: &str,
) -> Result<(u64, u64, u64, u64, u64, i64, u64), CampaignError> {
    let row = sqlx::query(
        "SELECT COUNT(DISTINCT CASE WHEN state <> 'flagged' THEN inviter_user_id END), \
         COALESCE(SUM(CASE WHEN state <> 'flagged' THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN state = 'flagged' THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN state = 'converted' THEN 1 ELSE 0 END), 0) \
         FROM referrals WHERE tenant_id = $1 AND programme_id = $2",
    )
    .bind(tenant_id)
    .bind(programme_id)
    .fetch_one(&mut *conn)
    .await?;
    let (inviters, referrals, flagged, converted): (i64, i64, i64, i64) = (
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    );
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN l.kind IN ('reward', 'invitee_reward') THEN 1 ELSE 0 END), 0), \
         CAST(COALESCE(SUM(CASE WHEN l.kind IN ('reward', 'invitee_reward') \
         THEN c.value_cents ELSE 0 END), 0) AS BIGINT), \
         COALESCE(SUM(CASE WHEN l.kind = 'reversal' THEN 1 ELSE 0 END), 0) \
         FROM referral_ledger l LEFT JOIN coupons c ON c.tenant_id = l.tenant_id \
         AND c.code = l.coupon_code WHERE l.tenant_id = $1 AND l.programme_id = $2",
    )
    .bind(tenant_id)
    .bind(programme_id)
    .fetch_one(conn)
    .await?;
    let (rewards, cost, reversals): (i64, i64, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    Ok((
        count(inviters),
        count(referrals),
        count(flagged),
        count(converted),
        count(rewards),
        cost,
        count(reversals),
    ))
}

/// Removes the user's invite codes and aliases, and replaces their id in referrals and the ledger
/// with an unlinkable one, so that the programme's totals stay.
pub async fn erase(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<u64, CampaignError> {
    let anonymous = format!("erased:{}", uuid::Uuid::new_v4());
    let mut changed = 0;
    for sql in [
        "DELETE FROM invite_codes WHERE tenant_id = $1 AND user_id = $2",
        "DELETE FROM aliases WHERE tenant_id = $1 AND user_id = $2",
    ] {
        changed += sqlx::query(sql)
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    for sql in [
        "UPDATE referrals SET invitee_user_id = $3 WHERE tenant_id = $1 AND invitee_user_id = $2",
        "UPDATE referrals SET inviter_user_id = $3 WHERE tenant_id = $1 AND inviter_user_id = $2",
        "UPDATE referral_ledger SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2",
        "UPDATE referral_ledger SET invitee_user_id = $3 WHERE tenant_id = $1 AND invitee_user_id = $2",
    ] {
        changed += sqlx::query(sql)
            .bind(tenant_id)
            .bind(user_id)
            .bind(&anonymous)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(changed)
}
