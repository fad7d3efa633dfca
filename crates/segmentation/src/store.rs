//! The segmentation store: profiles and aliases, processed event ids, tag rules and tags, segments
//! and memberships with their size history, the stage-transition log, RFM edges, audience counters
//! and KPI targets. Everything the service publishes is written to the bus outbox in the same
//! transaction as the rows it describes.
//!
//! Functions take a connection (or a transaction, through `&mut *tx`) so that one consumer batch or
//! one sweep step is one transaction.

pub mod audience;
pub mod profiles;
pub mod segments;
pub mod tags;

use socialops_bus::Outbox;
use socialops_storage::{Backend, Db, Row, SqlText};
use sqlx::AnyConnection;

use crate::error::SegmentationError;
pub use profiles::StoredProfile;
use profiles::{PROFILE_SELECT, decode_profile, stage_code};

pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct ProfileStore {
    db: Db,
}

/// Which profiles to list: after `after` in profile id order, optionally only one stage, optionally
/// only buyers.
#[derive(Debug, Clone, Default)]
pub struct ProfileQuery<'a> {
    pub tenant_id: &'a str,
    pub after: Option<&'a str>,
    pub stage: Option<crate::domain::Stage>,
    pub buyers_only: bool,
    pub limit: usize,
}

impl ProfileStore {
    pub async fn open(db: Db) -> Result<Self, SegmentationError> {
        db.migrate(&POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS).await?;
        Outbox::install(&db).await?;
        Ok(Self { db })
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
            "{PROFILE_SELECT} WHERE tenant_id = $1 AND profile_id = \
             (SELECT profile_id FROM aliases WHERE tenant_id = $2 AND alias = $3)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(tenant_id)
            .bind(alias)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(decode_profile).transpose()
    }

    /// One page of profiles in profile id order.
    pub async fn list_profiles(
        &self,
        conn: &mut AnyConnection,
        query: &ProfileQuery<'_>,
    ) -> Result<Vec<StoredProfile>, SegmentationError> {
        let mut sql = SqlText::new(Backend::of(conn), PROFILE_SELECT);
        sql.push(" WHERE tenant_id = ").param();
        if query.after.is_some() {
            sql.push(" AND profile_id > ").param();
        }
        if query.stage.is_some() {
            sql.push(" AND stage = ").param();
        }
        if query.buyers_only {
            sql.push(" AND first_order_at_us IS NOT NULL");
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
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(decode_profile).collect()
    }

    /// The ids of the tenant's profiles after `after`, in order; for re-evaluating all of them page
    /// by page.
    pub async fn profile_ids(
        &self,
        tenant_id: &str,
        after: &str,
        buyers_only: bool,
        limit: usize,
    ) -> Result<Vec<String>, SegmentationError> {
        let sql = format!(
            "SELECT profile_id FROM profiles WHERE tenant_id = $1 AND profile_id > $2{} \
             ORDER BY profile_id LIMIT $3",
            if buyers_only {
                " AND first_order_at_us IS NOT NULL"
            } else {
                ""
            }
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?)
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
