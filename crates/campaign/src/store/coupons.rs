//! Coupon pools, codes and what happened to each code. Issuing and redeeming read the pool (and
//! the code) with [`pool`] and [`coupon`] under `lock`, which on PostgreSQL holds the rows until the
//! transaction ends: concurrent issuers and redeemers of a pool take turns, so its budgets are
//! never exceeded. A code's row is always locked before its pool's. (SQLite has one writer.)

use socialops_storage::rows::{ColumnType, Rows};
use socialops_storage::{Backend, Row, SqlText};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{corrupt, count};
use crate::domain::coupon::{Coupon, Pool, PoolSpec, Redeemed};
use crate::error::CampaignError;

const POOL_COLUMNS: &str = "pool_id, name, code_prefix, value_cents, currency, max_issued, \
     value_budget_cents, per_user_limit, min_order_cents, valid_for_us, ends_at_us, \
     restore_window_us, num_issued, num_redeemed, redeemed_value_cents, created_at_us";

const COUPON_COLUMNS: &str = "code, pool_id, user_id, issue_key, campaign_id, value_cents, \
     currency, issued_at_us, expires_at_us, redeemed_at_us, order_id, order_amount_cents, \
     discount_cents";

fn lock_clause(conn: &AnyConnection, lock: bool) -> &'static str {
    match (Backend::of(conn), lock) {
        (Backend::Postgres, true) => " FOR UPDATE",
        _ => "",
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub async fn insert_pool(
    conn: &mut AnyConnection,
    tenant_id: &str,
    spec: &PoolSpec,
    now_us: i64,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO coupon_pools (tenant_id, pool_id, name, code_prefix, value_cents, currency, \
         max_issued, value_budget_cents, per_user_limit, min_order_cents, valid_for_us, ends_at_us, \
         restore_window_us, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(tenant_id)
    .bind(&spec.pool_id)
    .bind(&spec.name)
    .bind(&spec.code_prefix)
    .bind(spec.value_cents)
    .bind(&spec.currency)
    .bind(to_i64(spec.max_issued))
    .bind(spec.value_budget_cents)
    .bind(i64::from(spec.per_user_limit))
    .bind(spec.min_order_cents)
    .bind(spec.valid_for_us)
    .bind(spec.ends_at_us)
    .bind(spec.restore_window_us)
    .bind(now_us)
    .execute(conn)
    .await
    .map_err(|e| {
        CampaignError::on_unique(e, || format!("coupon pool {} exists", spec.pool_id))
    })?;
    Ok(())
}

fn pool_of(row: &AnyRow) -> Result<Pool, CampaignError> {
    let per_user_limit: i64 = row.try_get(7)?;
    Ok(Pool {
        spec: PoolSpec {
            pool_id: row.try_get(0)?,
            name: row.try_get(1)?,
            code_prefix: row.try_get(2)?,
            value_cents: row.try_get(3)?,
            currency: row.try_get(4)?,
            max_issued: count(row.try_get(5)?),
            value_budget_cents: row.try_get(6)?,
            per_user_limit: u32::try_from(per_user_limit)
                .map_err(|e| corrupt("coupon pool limit", e))?,
            min_order_cents: row.try_get(8)?,
            valid_for_us: row.try_get(9)?,
            ends_at_us: row.try_get(10)?,
            restore_window_us: row.try_get(11)?,
        },
        num_issued: count(row.try_get(12)?),
        num_redeemed: count(row.try_get(13)?),
        redeemed_value_cents: row.try_get(14)?,
        created_at_us: row.try_get(15)?,
    })
}

/// The pool, its row locked until the transaction ends when `lock` is set.
pub async fn pool(
    conn: &mut AnyConnection,
    tenant_id: &str,
    pool_id: &str,
    lock: bool,
) -> Result<Option<Pool>, CampaignError> {
    let sql = format!(
        "SELECT {POOL_COLUMNS} FROM coupon_pools WHERE tenant_id = $1 AND pool_id = $2{}",
        lock_clause(conn, lock)
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(pool_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(pool_of).transpose()
}

pub async fn pools(conn: &mut AnyConnection, tenant_id: &str) -> Result<Vec<Pool>, CampaignError> {
    let sql =
        format!("SELECT {POOL_COLUMNS} FROM coupon_pools WHERE tenant_id = $1 ORDER BY pool_id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(pool_of).collect()
}

/// Adds to the pool's counters: codes issued, codes redeemed and the value redeemed.
pub async fn add_to_pool(
    conn: &mut AnyConnection,
    tenant_id: &str,
    pool_id: &str,
    issued: i64,
    redeemed: i64,
    value_cents: i64,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE coupon_pools SET num_issued = num_issued + $3, num_redeemed = num_redeemed + $4, \
         redeemed_value_cents = redeemed_value_cents + $5 WHERE tenant_id = $1 AND pool_id = $2",
    )
    .bind(tenant_id)
    .bind(pool_id)
    .bind(issued)
    .bind(redeemed)
    .bind(value_cents)
    .execute(conn)
    .await?;
    Ok(())
}

fn coupon_of(row: &AnyRow) -> Result<Coupon, CampaignError> {
    let redeemed_at: Option<i64> = row.try_get(9)?;
    let order_id: Option<String> = row.try_get(10)?;
    let redemption = match (redeemed_at, order_id) {
        (Some(at_us), Some(order_id)) => Some(Redeemed {
            at_us,
            order_id,
            order_amount_cents: row.try_get(11)?,
            discount_cents: row.try_get(12)?,
        }),
        _ => None,
    };
    Ok(Coupon {
        code: row.try_get(0)?,
        pool_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        issue_key: row.try_get(3)?,
        campaign_id: row.try_get(4)?,
        value_cents: row.try_get(5)?,
        currency: row.try_get(6)?,
        issued_at_us: row.try_get(7)?,
        expires_at_us: row.try_get(8)?,
        redemption,
    })
}

/// The code, its row locked until the transaction ends when `lock` is set.
pub async fn coupon(
    conn: &mut AnyConnection,
    tenant_id: &str,
    code: &str,
    lock: bool,
) -> Result<Option<Coupon>, CampaignError> {
    let sql = format!(
        "SELECT {COUPON_COLUMNS} FROM coupons WHERE tenant_id = $1 AND code = $2{}",
        lock_clause(conn, lock)
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(code)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(coupon_of).transpose()
}

/// The code issued from the pool under `issue_key`, if one was.
pub async fn by_issue_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    pool_id: &str,
    issue_key: &str,
) -> Result<Option<Coupon>, CampaignError> {
    let sql = format!(
        "SELECT {COUPON_COLUMNS} FROM coupons \
         WHERE tenant_id = $1 AND pool_id = $2 AND issue_key = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(pool_id)
        .bind(issue_key)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(coupon_of).transpose()
}

/// The codes redeemed for an order, locked when `lock` is set.
pub async fn redeemed_for_order(
    conn: &mut AnyConnection,
    tenant_id: &str,
    order_id: &str,
    lock: bool,
) -> Result<Vec<Coupon>, CampaignError> {
    let sql = format!(
        "SELECT {COUPON_COLUMNS} FROM coupons WHERE tenant_id = $1 AND order_id = $2 \
         ORDER BY code{}",
        lock_clause(conn, lock)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(order_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(coupon_of).collect()
}

/// A user's codes, newest first.
pub async fn of_user(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<Vec<Coupon>, CampaignError> {
    let sql = format!(
        "SELECT {COUPON_COLUMNS} FROM coupons WHERE tenant_id = $1 AND user_id = $2 \
         ORDER BY issued_at_us DESC, code"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(coupon_of).collect()
}

/// How many codes the user holds from the pool.
pub async fn num_held(
    conn: &mut AnyConnection,
    tenant_id: &str,
    pool_id: &str,
    user_id: &str,
) -> Result<u64, CampaignError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM coupons WHERE tenant_id = $1 AND pool_id = $2 AND user_id = $3",
    )
    .bind(tenant_id)
    .bind(pool_id)
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok(count(n))
}

/// Stores a new code; false if the code is taken (by another pool's code, or a code issued under
/// the same key).
pub async fn insert_coupon(
    conn: &mut AnyConnection,
    tenant_id: &str,
    coupon: &Coupon,
) -> Result<bool, CampaignError> {
    Ok(sqlx::query(
        "INSERT INTO coupons (tenant_id, code, pool_id, user_id, issue_key, campaign_id, \
         value_cents, currency, issued_at_us, expires_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(&coupon.code)
    .bind(&coupon.pool_id)
    .bind(&coupon.user_id)
    .bind(&coupon.issue_key)
    .bind(&coupon.campaign_id)
    .bind(coupon.value_cents)
    .bind(&coupon.currency)
    .bind(coupon.issued_at_us)
    .bind(coupon.expires_at_us)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Records the code's redemption, or with `None` makes it usable again.
pub async fn set_redemption(
    conn: &mut AnyConnection,
    tenant_id: &str,
    code: &str,
    redemption: Option<&Redeemed>,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE coupons SET redeemed_at_us = $3, order_id = $4, order_amount_cents = $5, \
         discount_cents = $6 WHERE tenant_id = $1 AND code = $2",
    )
    .bind(tenant_id)
    .bind(code)
    .bind(redemption.map(|r| r.at_us))
    .bind(redemption.map(|r| r.order_id.as_str()))
    .bind(redemption.and_then(|r| r.order_amount_cents))
    .bind(redemption.map_or(0, |r| r.discount_cents))
    .execute(conn)
    .await?;
    Ok(())
}

/// One entry of a code's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponEvent {
    pub kind: String,
    pub order_id: Option<String>,
    pub amount_cents: i64,
    pub reason: Option<String>,
    pub at_us: i64,
}

pub async fn record_event(
    conn: &mut AnyConnection,
    tenant_id: &str,
    code: &str,
    user_id: &str,
    event: &CouponEvent,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO coupon_events (tenant_id, code, user_id, kind, order_id, amount_cents, \
         reason, at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant_id)
    .bind(code)
    .bind(user_id)
    .bind(&event.kind)
    .bind(event.order_id.as_deref())
    .bind(event.amount_cents)
    .bind(event.reason.as_deref())
    .bind(event.at_us)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn history(
    conn: &mut AnyConnection,
    tenant_id: &str,
    code: &str,
) -> Result<Vec<CouponEvent>, CampaignError> {
    let rows = sqlx::query(
        "SELECT kind, order_id, amount_cents, reason, at_us FROM coupon_events \
         WHERE tenant_id = $1 AND code = $2 ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(code)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CouponEvent {
                kind: row.try_get(0)?,
                order_id: row.try_get(1)?,
                amount_cents: row.try_get(2)?,
                reason: row.try_get(3)?,
                at_us: row.try_get(4)?,
            })
        })
        .collect()
}

/// The codes, `(tenant, code)`, their rows locked until the transaction ends when `lock` is set,
/// in `(tenant, code)` order (so two groups never deadlock on each other's codes).
pub async fn coupons_locked(
    conn: &mut AnyConnection,
    keys: &[(String, String)],
) -> Result<Vec<(String, Coupon)>, CampaignError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let backend = Backend::of(conn);
    let mut sql = SqlText::new(
        backend,
        &format!(
            "SELECT {COUPON_COLUMNS}, tenant_id FROM coupons WHERE (tenant_id, code) IN (VALUES "
        ),
    );
    sql.value_rows(keys.len(), 2)
        .push(") ORDER BY tenant_id, code")
        .push(lock_clause(conn, true));
    let mut query = sqlx::query(sql.into_sql());
    for (tenant_id, code) in keys {
        query = query.bind(tenant_id.as_str()).bind(code.as_str());
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter()
        .map(|row| Ok((row.try_get(13)?, coupon_of(row)?)))
        .collect()
}

/// Writes the codes' redemptions in one statement.
pub async fn save_redemptions(
    conn: &mut AnyConnection,
    coupons: &[(&str, &Coupon)],
) -> Result<(), CampaignError> {
    if coupons.is_empty() {
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
        ColumnType::Text,
        ColumnType::Int,
        ColumnType::Int,
        ColumnType::Int,
        ColumnType::Text,
        ColumnType::Int,
        ColumnType::Int,
    ]);
    for (tenant_id, coupon) in coupons {
        let done = coupon.redemption.as_ref();
        rows.push(*tenant_id)
            .push(coupon.code.as_str())
            .push(coupon.pool_id.as_str())
            .push(coupon.user_id.as_str())
            .push(coupon.issue_key.as_str())
            .push(coupon.campaign_id.as_str())
            .push(coupon.value_cents)
            .push(coupon.currency.as_str())
            .push(coupon.issued_at_us)
            .push(coupon.expires_at_us)
            .push(done.map(|r| r.at_us))
            .push(super::text(done.map(|r| r.order_id.as_str())))
            .push(done.and_then(|r| r.order_amount_cents))
            .push(done.map_or(0, |r| r.discount_cents));
    }
    rows.insert(
        conn,
        "INSERT INTO coupons (tenant_id, code, pool_id, user_id, issue_key, campaign_id, \
         value_cents, currency, issued_at_us, expires_at_us, redeemed_at_us, order_id, \
         order_amount_cents, discount_cents) ",
        " ON CONFLICT (tenant_id, code) DO UPDATE SET redeemed_at_us = excluded.redeemed_at_us, \
         order_id = excluded.order_id, order_amount_cents = excluded.order_amount_cents, \
         discount_cents = excluded.discount_cents",
    )
    .await?;
    Ok(())
}

/// Appends history entries, `(tenant, code, user, event)`, in one statement.
pub async fn record_events(
    conn: &mut AnyConnection,
    events: &[(&str, &str, &str, CouponEvent)],
) -> Result<(), CampaignError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut rows = Rows::new(&[
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Int,
        ColumnType::Text,
        ColumnType::Int,
    ]);
    for (tenant_id, code, user_id, event) in events {
        rows.push(*tenant_id)
            .push(*code)
            .push(*user_id)
            .push(event.kind.as_str())
            .push(super::text(event.order_id.as_deref()))
            .push(event.amount_cents)
            .push(super::text(event.reason.as_deref()))
            .push(event.at_us);
    }
    rows.insert(
        conn,
        "INSERT INTO coupon_events (tenant_id, code, user_id, kind, order_id, amount_cents, \
         reason, at_us) ",
        "",
    )
    .await?;
    Ok(())
}
