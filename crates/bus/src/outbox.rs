//! Transactional outbox: services write the messages they publish into the `outbox` table in the same
//! transaction as their own rows; the [`OutboxRelay`] sends them to Kafka in id order and deletes them.

mod relay;

use socialops_storage::{Backend, Db, SqlText};
use sqlx::{Any, AssertSqlSafe};

use crate::error::BusError;
use crate::headers;
use crate::message::OutgoingMessage;

pub use relay::OutboxRelay;

const CREATE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS outbox (
    id BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL,
    msg_key TEXT NULL,
    payload BYTEA NOT NULL,
    headers BYTEA NOT NULL,
    created_at_us BIGINT NOT NULL
)";

const CREATE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    msg_key TEXT NULL,
    payload BLOB NOT NULL,
    headers BLOB NOT NULL,
    created_at_us BIGINT NOT NULL
)";

/// Five parameters per row keeps one statement under SQLite's 32766 and PostgreSQL's 65535 bind limits.
const ROWS_PER_INSERT: usize = 6000;
const KEYS_PER_LOCK: usize = 30_000;

/// First half of the two-int advisory lock keys taken per message key, so they cannot collide with other
/// advisory locks in the database.
pub(crate) const KEY_LOCK_CLASS: i32 = 0x4f42_5831;
/// Taken by the relay so that one relay at a time sends from one database.
pub(crate) const RELAY_LOCK_CLASS: i32 = 0x4f42_5832;

pub struct Outbox;

impl Outbox {
    /// Creates the `outbox` table if it does not exist.
    pub async fn install(db: &Db) -> Result<(), BusError> {
        let ddl = match db.backend() {
            Backend::Postgres => CREATE_POSTGRES,
            Backend::Sqlite => CREATE_SQLITE,
        };
        sqlx::query(ddl).execute(db.pool()).await?;
        Ok(())
    }

    /// Inserts the messages in the caller's transaction; they are relayed only if it commits.
    ///
    /// On PostgreSQL this takes a transaction-scoped advisory lock per message key, so two transactions
    /// writing the same key commit in id order and the relay, which reads in id order, never sees the
    /// later one first. SQLite has a single writer and needs nothing.
    pub async fn enqueue(
        tx: &mut sqlx::Transaction<'_, Any>,
        messages: &[OutgoingMessage],
    ) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let backend = if tx.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        if backend == Backend::Postgres {
            lock_keys(tx, messages).await?;
        }
        let created_at_us = socialops_storage::now_micros();
        let encoded: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| headers::encode(&m.headers))
            .collect();
        for (chunk, chunk_headers) in messages
            .chunks(ROWS_PER_INSERT)
            .zip(encoded.chunks(ROWS_PER_INSERT))
        {
            // Built from placeholder numbers only; every value is bound.
            let mut query = sqlx::query(AssertSqlSafe(insert_sql(backend, chunk.len())));
            for (message, message_headers) in chunk.iter().zip(chunk_headers) {
                query = query
                    .bind(message.topic.as_str())
                    .bind(message.key.as_deref())
                    .bind(message.payload.as_slice())
                    .bind(message_headers.as_slice())
                    .bind(created_at_us);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

async fn lock_keys(
    tx: &mut sqlx::Transaction<'_, Any>,
    messages: &[OutgoingMessage],
) -> Result<(), BusError> {
    let mut keys: Vec<&str> = messages.iter().filter_map(|m| m.key.as_deref()).collect();
    keys.sort_unstable();
    keys.dedup();
    for chunk in keys.chunks(KEYS_PER_LOCK) {
        let mut query = sqlx::query(AssertSqlSafe(lock_sql(chunk.len())));
        for key in chunk {
            query = query.bind(*key);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

fn insert_sql(backend: Backend, rows: usize) -> String {
    let mut sql = SqlText::new(
        backend,
        "INSERT INTO outbox (topic, msg_key, payload, headers, created_at_us) VALUES ",
    );
    sql.value_rows(rows, 5);
    sql.into_sql().0
}

/// Locks in hash order, the same in every transaction, so two enqueues cannot deadlock each other.
/// PostgreSQL evaluates the volatile lock function after the sort.
fn lock_sql(keys: usize) -> String {
    let values: Vec<String> = (1..=keys).map(|i| format!("(${i}::text)")).collect();
    format!(
        "SELECT pg_advisory_xact_lock({KEY_LOCK_CLASS}, h) FROM \
         (SELECT DISTINCT hashtext(k) AS h FROM (VALUES {}) AS v(k)) AS s ORDER BY h",
        values.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_numbers_five_placeholders_per_row() {
        assert_eq!(
            insert_sql(Backend::Postgres, 2),
            "INSERT INTO outbox (topic, msg_key, payload, headers, created_at_us) VALUES ($1,$2,$3,$4,$5),($6,$7,$8,$9,$10)"
        );
        assert!(
            insert_sql(Backend::Postgres, ROWS_PER_INSERT)
                .ends_with(&format!("${})", ROWS_PER_INSERT * 5))
        );
        const { assert!(ROWS_PER_INSERT * 5 <= 32_766) };
    }

    #[test]
    fn lock_sql_binds_every_key() {
        let sql = lock_sql(3);
        assert!(sql.contains("($1::text),($2::text),($3::text)"));
        assert!(sql.contains("ORDER BY h"));
    }
}
