//! The campaign store: campaigns and their transitions, journeys, sends and the decisions about
//! them, what the service knows of users, tenant settings, FAQ entries and open crises. Everything the
//! service publishes goes to the bus outbox in the same transaction as the send it describes.
//!
//! Functions take a connection (or a transaction, through `&mut *tx`) so that one consumer batch, one
//! sweep step or one API action is one transaction.

pub mod attribution;
pub mod campaigns;
pub mod coupons;
pub mod journeys;
pub mod referrals;
pub mod sends;
pub mod tenants;
pub mod users;

use socialops_storage::{Backend, Db, SqlText};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::error::CampaignError;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store's schema, run at start-up.
pub const MIGRATIONS: socialops_storage::Migrations = socialops_storage::Migrations {
    postgres: &POSTGRES_MIGRATIONS,
    sqlite: &SQLITE_MIGRATIONS,
};

#[derive(Debug, Clone)]
pub struct CampaignStore {
    db: Db,
}

impl CampaignStore {
    /// Migrates `db` and opens the store on it.
    pub async fn open(db: Db) -> Result<Self, CampaignError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(Self { db })
    }

    /// The store on an already migrated `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> CampaignError {
    CampaignError::Corrupt(format!("{what}: {error}"))
}

/// A user of a tenant: `(tenant_id, user_id)`.
pub type UserKey = (String, String);

/// Users per lookup statement: two parameters each, within both backends' limits.
const USERS_PER_LOOKUP: usize = 10_000;

/// The rows of `select` (`SELECT … FROM t WHERE `, ending where a condition may follow) whose
/// `(tenant_id, user_id)` is one of `keys`, then `tail`; with `since`, `tail` ends in a comparison
/// whose right side is that value, and `after` follows it. One statement per 10,000 users. The
/// keys are an `IN (VALUES …)` list on both backends: PostgreSQL then plans each statement for the
/// keys it has, where a plan kept for a key set bound as one value may go on scanning as the table
/// grows (see docs/performance.md).
pub(crate) async fn fetch_for_users(
    conn: &mut AnyConnection,
    keys: &[UserKey],
    select: &str,
    tail: &str,
    since: Option<i64>,
    after: &str,
) -> Result<Vec<AnyRow>, CampaignError> {
    let backend = Backend::of(conn);
    let mut found = Vec::new();
    for chunk in keys.chunks(USERS_PER_LOOKUP) {
        let mut sql = SqlText::new(backend, select);
        sql.push("(tenant_id, user_id) IN (VALUES ")
            .value_rows(chunk.len(), 2)
            .push(")")
            .push(tail);
        if since.is_some() {
            sql.param();
        }
        sql.push(after);
        let mut query = sqlx::query(sql.into_sql());
        for (tenant_id, user_id) in chunk {
            query = query.bind(tenant_id.as_str()).bind(user_id.as_str());
        }
        if let Some(since) = since {
            query = query.bind(since);
        }
        found.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// An optional text column's value in [`Rows`].
pub(crate) fn text(value: Option<&str>) -> socialops_storage::rows::Value<'_> {
    value.map_or(socialops_storage::rows::Value::Null, Into::into)
}
