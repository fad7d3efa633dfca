//! The sentiment store: processed event ids, the hourly sentiment timeline, watchlists, mentions and
//! their buckets, crises and their steps, user messages and brand replies. Everything the service
//! publishes is written to the bus outbox in the same transaction as the rows it describes.
//!
//! Functions take a connection (or a transaction, through `&mut *tx`) so that one consumer batch, one
//! sweep step or one API action is one transaction.

pub mod crises;
pub mod mentions;
pub mod replies;
pub mod watchlists;

use std::collections::BTreeMap;

use socialops_storage::{Db, Row, SqlText};
use sqlx::AnyConnection;

use crate::domain::Label;
use crate::error::SentimentError;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store's schema, run at start-up.
pub const MIGRATIONS: socialops_storage::Migrations = socialops_storage::Migrations {
    postgres: &POSTGRES_MIGRATIONS,
    sqlite: &SQLITE_MIGRATIONS,
};

/// Rows per multi-row statement: at most 14 columns each keeps a statement under SQLite's 32,766
/// bound parameters.
pub(crate) const ROWS_PER_INSERT: usize = 2_000;

pub const HOUR_US: i64 = 3_600_000_000;

#[derive(Debug, Clone)]
pub struct SentimentStore {
    db: Db,
}

impl SentimentStore {
    /// Migrates `db` and opens the store on it.
    pub async fn open(db: Db) -> Result<Self, SentimentError> {
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

    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, SentimentError> {
        Ok(self.db.pool().acquire().await?)
    }
}

/// The stored number of a label.
pub fn label_code(label: Label) -> i64 {
    match label {
        Label::Negative => 1,
        Label::Neutral => 2,
        Label::Positive => 3,
    }
}

pub fn label_from_code(code: i64) -> Result<Label, SentimentError> {
    match code {
        1 => Ok(Label::Negative),
        2 => Ok(Label::Neutral),
        3 => Ok(Label::Positive),
        other => Err(SentimentError::Corrupt(format!("label {other}"))),
    }
}

/// Counts by label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelCounts {
    pub negative: u64,
    pub neutral: u64,
    pub positive: u64,
}

impl LabelCounts {
    pub fn add(&mut self, label: Label) {
        match label {
            Label::Negative => self.negative += 1,
            Label::Neutral => self.neutral += 1,
            Label::Positive => self.positive += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.negative + self.neutral + self.positive
    }

    pub(crate) fn from_row(row: &sqlx::any::AnyRow, first: usize) -> Result<Self, sqlx::Error> {
        let get = |i: usize| -> Result<u64, sqlx::Error> {
            Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
        };
        Ok(Self {
            negative: get(first)?,
            neutral: get(first + 1)?,
            positive: get(first + 2)?,
        })
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Adds scored texts to the hourly timeline.
pub async fn add_to_timeline(
    conn: &mut AnyConnection,
    counts: &BTreeMap<(String, i64), LabelCounts>,
) -> Result<(), SentimentError> {
    let rows: Vec<_> = counts.iter().collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = SqlText::new(
            socialops_storage::Backend::of(conn),
            "INSERT INTO sentiment_hours (tenant_id, hour_us, negative, neutral, positive) VALUES ",
        );
        sql.value_rows(chunk.len(), 5).push(
            " ON CONFLICT (tenant_id, hour_us) DO UPDATE SET \
             negative = sentiment_hours.negative + excluded.negative, \
             neutral = sentiment_hours.neutral + excluded.neutral, \
             positive = sentiment_hours.positive + excluded.positive",
        );
        let mut query = sqlx::query(sql.into_sql());
        for ((tenant, hour), c) in chunk {
            query = query
                .bind(tenant.as_str())
                .bind(*hour)
                .bind(count(c.negative))
                .bind(count(c.neutral))
                .bind(count(c.positive));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Scored texts per hour in `[from_us, to_us)`, oldest first; hours without any are left out.
pub async fn timeline(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, LabelCounts)>, SentimentError> {
    let rows = sqlx::query(
        "SELECT hour_us, negative, neutral, positive FROM sentiment_hours \
         WHERE tenant_id = $1 AND hour_us >= $2 AND hour_us < $3 ORDER BY hour_us",
    )
    .bind(tenant_id)
    .bind(from_us)
    .bind(to_us)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, LabelCounts::from_row(row, 1)?)))
        .collect()
}

/// Removes a user's personal data: their mentions and their messages waiting for or given a reply.
/// Counts already aggregated (timeline, buckets, crisis totals) stay. Returns the rows removed.
pub async fn erase_user(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<u64, SentimentError> {
    let mentions = sqlx::query("DELETE FROM mentions WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let messages = sqlx::query("DELETE FROM user_messages WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(mentions + messages)
}

/// How many text-bearing events of the tenant have been handled.
pub async fn processed_count(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<u64, SentimentError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_events WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// How many text-bearing events have been handled, over every tenant.
pub async fn processed_total(conn: &mut AnyConnection) -> Result<u64, SentimentError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_events")
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
