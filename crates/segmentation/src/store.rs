//! The segmentation store: profiles with their orders and aliases, processed event ids, erasures,
//! tag rules and tags, segments and memberships with their size history, the stage-transition log,
//! each tenant's RFM edges, audience counters and KPI targets. Everything the service publishes is
//! written to the bus outbox in the same transaction as the rows it describes.
//!
//! Functions take a connection (or a transaction, through `&mut *tx`) so that one consumer batch or
//! one sweep step is one transaction.

pub mod audience;
pub mod predicate;
pub mod profiles;
pub mod segments;
pub mod tags;

use socialops_storage::{Db, Row, SqlText};
use sqlx::AnyConnection;

use crate::domain::{DAY_US, RfmScore, RfmValues, Rule, ValueTier};
use crate::error::SegmentationError;
use predicate::Bind;
pub use profiles::StoredProfile;
use profiles::{PROFILE_SELECT, decode_profile, stage_code, tier_from_code};

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store's schema, run at start-up.
pub const MIGRATIONS: socialops_storage::Migrations = socialops_storage::Migrations {
    postgres: &POSTGRES_MIGRATIONS,
    sqlite: &SQLITE_MIGRATIONS,
};

#[derive(Debug, Clone)]
pub struct ProfileStore {
    db: Db,
}

/// Which profiles to list: after `after` in profile id order, optionally only one stage.
#[derive(Debug, Clone, Default)]
pub struct ProfileQuery<'a> {
    pub tenant_id: &'a str,
    pub after: Option<&'a str>,
    pub stage: Option<crate::domain::Stage>,
    pub limit: usize,
}

/// What a rule matches among a tenant's profiles.
#[derive(Debug, Clone)]
pub struct Preview {
    pub count: u64,
    pub evaluated: u64,
    /// The first matching profiles in profile id order.
    pub sample: Vec<StoredProfile>,
}

/// One buyer's RFM inputs as of a moment, and the score and tier stored for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerValues<'a> {
    pub profile_id: &'a str,
    pub values: RfmValues,
    pub stored: Option<RfmScore>,
    pub stored_tier: ValueTier,
}

impl ProfileStore {
    /// Migrates `db` and opens the store on it.
    pub async fn open(db: Db) -> Result<Self, SegmentationError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(Self::new(db))
    }

    /// The store on an already migrated `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, SegmentationError> {
        Ok(self.db.pool().acquire().await?)
    }

    /// The profile an alias (`user:<id>` or an identify alias) points to.
    pub async fn profile_by_alias(
        &self,
        tenant_id: &str,
        alias: &str,
    ) -> Result<Option<StoredProfile>, SegmentationError> {
        let sql = format!(
            "{} WHERE tenant_id = $1 AND profile_id = \
             (SELECT profile_id FROM aliases WHERE tenant_id = $2 AND alias = $3)",
            *PROFILE_SELECT
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(tenant_id)
            .bind(alias)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(decode_profile).transpose()
    }

    /// One page of profiles in profile id order (without their orders).
    pub async fn list_profiles(
        &self,
        query: &ProfileQuery<'_>,
    ) -> Result<Vec<StoredProfile>, SegmentationError> {
        let mut sql = SqlText::new(self.db.backend(), &PROFILE_SELECT);
        sql.push(" WHERE tenant_id = ").param();
        if query.after.is_some() {
            sql.push(" AND profile_id > ").param();
        }
        if query.stage.is_some() {
            sql.push(" AND stage = ").param();
        }
        sql.push(" ORDER BY profile_id LIMIT ").param();
        let mut select = sqlx::query(sql.into_sql()).bind(query.tenant_id);
        if let Some(after) = query.after {
            select = select.bind(after);
        }
        if let Some(stage) = query.stage {
            select = select.bind(stage_code(stage));
        }
        let rows = select
            .bind(query.limit as i64)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(decode_profile).collect()
    }

    /// How many of the tenant's profiles `rule` matches at `now_us`, out of how many, and the first
    /// `sample` of them. Two scans in the database; no profile but the sample leaves it.
    pub async fn preview(
        &self,
        tenant_id: &str,
        rule: &Rule,
        now_us: i64,
        sample: usize,
    ) -> Result<Preview, SegmentationError> {
        let backend = self.db.backend();
        let mut sql = SqlText::new(backend, "SELECT COUNT(*), COALESCE(SUM(CASE WHEN ");
        let mut count_binds = Vec::new();
        predicate::push_rule(&mut sql, &mut count_binds, tenant_id, rule, now_us)?;
        sql.push(" THEN 1 ELSE 0 END), 0) FROM profiles WHERE tenant_id = ")
            .param();
        count_binds.push(Bind::Text(tenant_id.to_owned()));
        let row = predicate::apply(sqlx::query(sql.into_sql()), &count_binds)
            .fetch_one(self.db.pool())
            .await?;
        let evaluated: i64 = row.try_get(0)?;
        let count: i64 = row.try_get(1)?;

        let mut sql = SqlText::new(backend, &PROFILE_SELECT);
        sql.push(" WHERE tenant_id = ").param().push(" AND ");
        let mut sample_binds = vec![Bind::Text(tenant_id.to_owned())];
        predicate::push_rule(&mut sql, &mut sample_binds, tenant_id, rule, now_us)?;
        sql.push(" ORDER BY profile_id LIMIT ").param();
        sample_binds.push(Bind::Int(sample as i64));
        let rows = if sample == 0 || count == 0 {
            Vec::new()
        } else {
            predicate::apply(sqlx::query(sql.into_sql()), &sample_binds)
                .fetch_all(self.db.pool())
                .await?
        };
        Ok(Preview {
            count: count.max(0) as u64,
            evaluated: evaluated.max(0) as u64,
            sample: rows.iter().map(decode_profile).collect::<Result<_, _>>()?,
        })
    }

    /// The profiles whose membership of the segment disagrees with `rule` at `now_us`: those that
    /// match and are not members, and members that no longer match. One scan.
    pub async fn membership_mismatches(
        &self,
        tenant_id: &str,
        segment_id: &str,
        rule: &Rule,
        now_us: i64,
    ) -> Result<Vec<String>, SegmentationError> {
        let mut sql = SqlText::new(
            self.db.backend(),
            "SELECT profile_id FROM profiles WHERE tenant_id = ",
        );
        let mut binds = vec![Bind::Text(tenant_id.to_owned())];
        sql.param().push(" AND (");
        predicate::push_rule(&mut sql, &mut binds, tenant_id, rule, now_us)?;
        sql.push(") <> (profile_id IN (SELECT profile_id FROM segment_members WHERE tenant_id = ")
            .param()
            .push(" AND segment_id = ")
            .param()
            .push(")) ORDER BY profile_id");
        binds.push(Bind::Text(tenant_id.to_owned()));
        binds.push(Bind::Text(segment_id.to_owned()));
        let rows = predicate::apply(sqlx::query(sql.into_sql()), &binds)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// Every buyer's RFM inputs at `now_us` with a window of `window_days`, computed in the
    /// database from the orders, passed to `each` one at a time.
    pub async fn buyer_values(
        &self,
        tenant_id: &str,
        window_days: u32,
        now_us: i64,
        mut each: impl FnMut(BuyerValues<'_>),
    ) -> Result<(), SegmentationError> {
        use futures::TryStreamExt;
        let since_us = now_us.saturating_sub(i64::from(window_days) * DAY_US);
        let mut rows = sqlx::query(
            "SELECT p.profile_id, p.last_order_at_us, p.rfm_r, p.rfm_f, p.rfm_m, p.tier, \
             COALESCE(o.frequency, 0), COALESCE(o.monetary_cents, 0) \
             FROM profiles p LEFT JOIN ( \
                 SELECT profile_id, COUNT(*) AS frequency, \
                 CAST(SUM(amount_cents - refunded_cents) AS BIGINT) AS monetary_cents FROM orders \
                 WHERE tenant_id = $1 AND at_us > $2 AND at_us <= $3 GROUP BY profile_id \
             ) o ON o.profile_id = p.profile_id \
             WHERE p.tenant_id = $4 AND p.last_order_at_us IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(since_us)
        .bind(now_us)
        .bind(tenant_id)
        .fetch(self.db.pool());
        while let Some(row) = rows.try_next().await? {
            let profile_id: String = row.try_get(0)?;
            let last_order_at_us: i64 = row.try_get(1)?;
            let stored = match (
                row.try_get::<Option<i64>, _>(2)?,
                row.try_get::<Option<i64>, _>(3)?,
                row.try_get::<Option<i64>, _>(4)?,
            ) {
                (Some(r), Some(f), Some(m)) => Some(RfmScore {
                    recency: r as u8,
                    frequency: f as u8,
                    monetary: m as u8,
                }),
                _ => None,
            };
            each(BuyerValues {
                profile_id: &profile_id,
                values: RfmValues {
                    recency_days: now_us.saturating_sub(last_order_at_us).max(0) / DAY_US,
                    frequency: row.try_get(6)?,
                    monetary_cents: row.try_get(7)?,
                },
                stored,
                stored_tier: tier_from_code(row.try_get(5)?),
            });
        }
        Ok(())
    }

    pub async fn count_profiles(&self, tenant_id: &str) -> Result<i64, SegmentationError> {
        let row = sqlx::query("SELECT COUNT(*) FROM profiles WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(self.db.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Every alias of a profile, `user:` ones included.
    pub async fn aliases_of(
        &self,
        tenant_id: &str,
        profile_id: &str,
    ) -> Result<Vec<String>, SegmentationError> {
        let rows = sqlx::query(
            "SELECT alias FROM aliases WHERE tenant_id = $1 AND profile_id = $2 ORDER BY alias",
        )
        .bind(tenant_id)
        .bind(profile_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?)
    }
}

/// Makes sure the tenant has its row (where its RFM edges go).
pub async fn ensure_tenant(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<(), SegmentationError> {
    sqlx::query("INSERT INTO tenants (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING")
        .bind(tenant_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
