//! The keys of the events a consumer has applied, `(tenant, event id)`, kept in the service's
//! `processed_events` table so that a redelivered event changes nothing, and forgotten once they are
//! older than the deduplication window, when no redelivery can still come.
//!
//! Each service's migrations create the table:
//! `processed_events (tenant_id, event_id, processed_at_us)` with its primary key on the first two
//! columns and an index on `processed_at_us`.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::{AnyConnection, Row};

use crate::rows::{ColumnType, Rows};
use crate::{Backend, Db, SqlText};

/// Keys deleted per statement when forgetting, so that no statement holds many row locks for long.
const ROWS_PER_DELETE: usize = 5_000;

/// Records `(tenant, event id)` pairs as processed at `now_us` and returns those that were not
/// recorded before: the only ones whose effects may be applied. Input may repeat a pair; it is new
/// at most once.
pub async fn mark_processed(
    conn: &mut AnyConnection,
    keys: &[(&str, &str)],
    now_us: i64,
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let mut unique = keys.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut rows = Rows::new(&[ColumnType::Text, ColumnType::Text, ColumnType::Int]);
    for (tenant, event_id) in &unique {
        rows.push(*tenant).push(*event_id).push(now_us);
    }
    let backend = Backend::of(conn);
    let mut new = HashSet::with_capacity(unique.len());
    for chunk in rows.chunks(backend) {
        let mut sql = SqlText::new(
            backend,
            "INSERT INTO processed_events (tenant_id, event_id, processed_at_us) ",
        );
        chunk.push_source(&mut sql);
        sql.push(" ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING tenant_id, event_id");
        let query = chunk.bind(backend, sqlx::query(sql.into_sql()));
        for row in query.fetch_all(&mut *conn).await? {
            new.insert((row.try_get(0)?, row.try_get(1)?));
        }
    }
    Ok(new)
}

/// The advisory lock `(class, key)` held while a replica deletes expired keys.
pub const FORGET_LOCK: (i32, i32) = (0x5052_4F43, 0);

/// Deletes the keys recorded before `before_us`, a few thousand per statement (each its own
/// transaction), and returns how many went. An event redelivered after its key is gone is applied
/// again, so `before_us` must lie further back than any redelivery can: see [`dedup_cutoff`].
/// With several replicas on one PostgreSQL store, one deletes at a time (the others return 0 at
/// once), so their deletes never queue behind each other's row locks.
pub async fn forget_processed(db: &Db, before_us: i64) -> Result<u64, sqlx::Error> {
    let (class, key) = FORGET_LOCK;
    // On a session of its own: the deletes need the pool's connections, and the relay's leader
    // lock may hold one of a small pool's for good.
    let Some(_forgetting) = db.try_exclusive_beside_pool(class, key).await? else {
        return Ok(0);
    };
    let mut forgotten = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM processed_events WHERE (tenant_id, event_id) IN \
             (SELECT tenant_id, event_id FROM processed_events WHERE processed_at_us < $1 \
             ORDER BY processed_at_us LIMIT $2)",
        )
        .bind(before_us)
        .bind(ROWS_PER_DELETE as i64)
        .execute(db.pool())
        .await?
        .rows_affected();
        forgotten += deleted;
        if deleted < ROWS_PER_DELETE as u64 {
            return Ok(forgotten);
        }
    }
}

/// The time before which keys may be forgotten at `now_us` with a deduplication window of `window`.
pub fn dedup_cutoff(now_us: i64, window: Duration) -> i64 {
    now_us.saturating_sub(i64::try_from(window.as_micros()).unwrap_or(i64::MAX))
}
