//! Transactional outbox: services write the messages they publish into the `outbox` table in the same
//! transaction as their own rows; the [`OutboxRelay`] sends them to Kafka in id order and deletes them.
//! A row that can never be published moves to `outbox_dead` with its reason.
//!
//! Both tables are defined once, in `crates/bus/sql/outbox.{postgres,sqlite}.sql`; each service's
//! migrations link that file in as one of their own, so every store creates them with its schema.

mod relay;

use socialops_storage::{Backend, SqlText};
use sqlx::{Any, AssertSqlSafe};

use crate::error::BusError;
use crate::headers;
use crate::message::OutgoingMessage;

pub use relay::OutboxRelay;

/// Five parameters per row keeps one statement under SQLite's 32766 and PostgreSQL's 65535 bind limits.
const ROWS_PER_INSERT: usize = 6000;

/// First half of the two-int advisory lock taken by every enqueueing transaction, so it cannot collide
/// with other advisory locks in the database.
pub(crate) const ENQUEUE_LOCK_CLASS: i32 = 0x4f42_5831;
/// Taken by the relay so that one relay at a time sends from one database.
pub(crate) const RELAY_LOCK_CLASS: i32 = 0x4f42_5832;

pub struct Outbox;

impl Outbox {
    /// Inserts the messages in the caller's transaction; they are relayed only if it commits.
    ///
    /// On PostgreSQL this takes one transaction-scoped advisory lock, held until commit, before the rows
    /// get their ids: enqueueing transactions therefore commit in id order, and the relay, which reads in
    /// id order, never sends a later message of a key before an earlier one. One lock per transaction
    /// (rather than one per key) keeps the server's shared lock table small whatever the batch size; the
    /// price is that concurrent writers queue for the time between their enqueue and their commit, so
    /// enqueue last. SQLite has a single writer and needs nothing.
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
            sqlx::query(AssertSqlSafe(format!(
                "SELECT pg_advisory_xact_lock({ENQUEUE_LOCK_CLASS}, 0)"
            )))
            .execute(&mut **tx)
            .await?;
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

fn insert_sql(backend: Backend, rows: usize) -> String {
    let mut sql = SqlText::new(
        backend,
        "INSERT INTO outbox (topic, msg_key, payload, headers, created_at_us) VALUES ",
    );
    sql.value_rows(rows, 5);
    sql.into_sql().0
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
}
