//! The campaign store: campaigns and their transitions, journeys, sends and the decisions about
//! them, what the service knows of users, tenant settings, FAQ entries and open crises. Everything the
//! service publishes goes to the bus outbox in the same transaction as the send it describes.
//!
//! Functions take a connection (or a transaction, through `&mut *tx`) so that one consumer batch, one
//! sweep step or one API action is one transaction.

pub mod campaigns;
pub mod journeys;
pub mod sends;
pub mod tenants;
pub mod users;

use socialops_storage::Db;

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
