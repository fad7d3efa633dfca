//! The ingestion store: accepted events with permanent deduplication, written together with their
//! outbox messages in one transaction.

mod page_token;

use std::collections::HashSet;

use prost::Message;
use socialops_bus::{Outbox, OutgoingMessage};
use socialops_proto::events::v1::SocialEvent;
use socialops_storage::{Db, Row, SqlText};

use crate::error::IngestionError;
pub use page_token::PageToken;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store's schema, run at start-up.
pub const MIGRATIONS: socialops_storage::Migrations = socialops_storage::Migrations {
    postgres: &POSTGRES_MIGRATIONS,
    sqlite: &SQLITE_MIGRATIONS,
};

/// Columns bound per row in the batch insert; batches are chunked to stay under SQLite's limit of
/// 32,766 bound parameters (PostgreSQL allows 65,535).
const EVENT_COLUMNS: usize = 8;
const MAX_ROWS_PER_INSERT: usize = 4_000;

/// An event ready to store: its canonical form, encoded once.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: SocialEvent,
    pub encoded: Vec<u8>,
}

impl NewEvent {
    pub fn new(event: SocialEvent) -> Self {
        let encoded = event.encode_to_vec();
        Self { event, encoded }
    }
}

/// Which events to list; times are microseconds since the epoch, `to` exclusive.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub limit: usize,
    pub after: Option<PageToken>,
}

#[derive(Debug, Clone)]
pub struct EventStore {
    db: Db,
}

impl EventStore {
    /// Migrates `db` and opens the store on it.
    pub async fn open(db: Db) -> Result<Self, IngestionError> {
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

    /// Inserts the events that are new and enqueues `publish(event)` for each of them, in one
    /// transaction. Returns, per input, whether it was new. Input must not repeat a (tenant, event id).
    pub async fn insert_new(
        &self,
        events: &[NewEvent],
        publish: impl Fn(&NewEvent) -> OutgoingMessage,
    ) -> Result<Vec<bool>, IngestionError> {
        let mut inserted = vec![false; events.len()];
        if events.is_empty() {
            return Ok(inserted);
        }
        let mut tx = self.db.begin().await?;
        let mut outgoing = Vec::with_capacity(events.len());
        for (chunk_index, chunk) in events.chunks(MAX_ROWS_PER_INSERT).enumerate() {
            let mut sql = SqlText::new(
                self.db.backend(),
                "INSERT INTO events (tenant_id, event_id, user_id, event_type, platform, occurred_at_us, \
                 received_at_us, payload) VALUES ",
            );
            sql.value_rows(chunk.len(), EVENT_COLUMNS).push(
                " ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING tenant_id, event_id",
            );
            let mut insert = sqlx::query(sql.into_sql());
            for new in chunk {
                let event = &new.event;
                insert = insert
                    .bind(event.tenant_id.as_str())
                    .bind(event.event_id.as_str())
                    .bind(event.user_id.as_str())
                    .bind(event.payload.as_ref().map_or("", |p| p.type_name()))
                    .bind(event.platform)
                    .bind(micros_or_zero(event.occurred_at.as_ref()))
                    .bind(micros_or_zero(event.received_at.as_ref()))
                    .bind(new.encoded.as_slice());
            }
            let rows = insert.fetch_all(&mut *tx).await?;
            let new_keys: HashSet<(String, String)> = rows
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?;
            let offset = chunk_index * MAX_ROWS_PER_INSERT;
            for (i, new) in chunk.iter().enumerate() {
                let key = (new.event.tenant_id.clone(), new.event.event_id.clone());
                if new_keys.contains(&key) {
                    inserted[offset + i] = true;
                    outgoing.push(publish(new));
                }
            }
        }
        Outbox::enqueue(&mut tx, &outgoing).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn get(
        &self,
        tenant_id: &str,
        event_id: &str,
    ) -> Result<Option<SocialEvent>, IngestionError> {
        let row = sqlx::query(
            "SELECT payload FROM events WHERE tenant_id = $1 AND event_id = $2 AND erased_at_us IS NULL",
        )
        .bind(tenant_id)
        .bind(event_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| decode(&row)).transpose()
    }

    /// A page of events in (occurred_at, event_id) order, and the token for the next page if any.
    pub async fn list(
        &self,
        query: &EventQuery,
    ) -> Result<(Vec<SocialEvent>, Option<PageToken>), IngestionError> {
        let mut sql = SqlText::new(
            self.db.backend(),
            "SELECT payload, occurred_at_us, event_id FROM events WHERE erased_at_us IS NULL AND tenant_id = ",
        );
        sql.param();
        if query.user_id.is_some() {
            sql.push(" AND user_id = ").param();
        }
        if query.from_us.is_some() {
            sql.push(" AND occurred_at_us >= ").param();
        }
        if query.to_us.is_some() {
            sql.push(" AND occurred_at_us < ").param();
        }
        if query.after.is_some() {
            sql.push(" AND (occurred_at_us > ").param();
            sql.push(" OR (occurred_at_us = ")
                .param()
                .push(" AND event_id > ")
                .param()
                .push("))");
        }
        sql.push(" ORDER BY occurred_at_us, event_id LIMIT ")
            .param();
        let mut select = sqlx::query(sql.into_sql()).bind(query.tenant_id.as_str());
        if let Some(user_id) = &query.user_id {
            select = select.bind(user_id.as_str());
        }
        if let Some(from) = query.from_us {
            select = select.bind(from);
        }
        if let Some(to) = query.to_us {
            select = select.bind(to);
        }
        if let Some(after) = &query.after {
            select = select
                .bind(after.occurred_at_us)
                .bind(after.occurred_at_us)
                .bind(after.event_id.as_str());
        }
        let rows = select
            .bind(query.limit as i64 + 1)
            .fetch_all(self.db.pool())
            .await?;
        let next = if rows.len() > query.limit {
            let last = &rows[query.limit - 1];
            Some(PageToken {
                occurred_at_us: last.try_get(1)?,
                event_id: last.try_get(2)?,
            })
        } else {
            None
        };
        let events = rows
            .iter()
            .take(query.limit)
            .map(decode)
            .collect::<Result<_, _>>()?;
        Ok((events, next))
    }

    /// Erases a user's events (their keys stay, for deduplication) and enqueues `announce` in the same
    /// transaction. Returns how many events were erased.
    pub async fn erase_user(
        &self,
        tenant_id: &str,
        user_id: &str,
        erased_at_us: i64,
        announce: OutgoingMessage,
    ) -> Result<u64, IngestionError> {
        let mut tx = self.db.begin().await?;
        let erased = sqlx::query(
            "UPDATE events SET payload = NULL, user_id = '', erased_at_us = $1 \
             WHERE tenant_id = $2 AND user_id = $3 AND erased_at_us IS NULL",
        )
        .bind(erased_at_us)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Outbox::enqueue(&mut tx, std::slice::from_ref(&announce)).await?;
        tx.commit().await?;
        Ok(erased)
    }

    /// How many events are stored for the tenant, erased ones included.
    pub async fn count_stored(&self, tenant_id: &str) -> Result<i64, IngestionError> {
        let row = sqlx::query("SELECT COUNT(*) FROM events WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(self.db.pool())
            .await?;
        Ok(row.try_get(0)?)
    }
}

fn decode(row: &sqlx::any::AnyRow) -> Result<SocialEvent, IngestionError> {
    let payload: Vec<u8> = row.try_get(0)?;
    SocialEvent::decode(payload.as_slice()).map_err(|e| IngestionError::Corrupt(e.to_string()))
}

fn micros_or_zero(at: Option<&socialops_proto::Timestamp>) -> i64 {
    socialops_proto::micros_of(at).unwrap_or(0)
}
