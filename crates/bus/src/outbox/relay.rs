use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use socialops_storage::{Backend, Db, ExclusiveGuard, Row, SqlText};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::RELAY_LOCK_CLASS;
use crate::error::BusError;
use crate::headers;
use crate::producer::{Producer, Record, is_unpublishable};

const POLL_INTERVAL: Duration = Duration::from_millis(100);
const PENDING_GAUGE_INTERVAL: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const IDS_PER_DELETE: usize = 10_000;

/// Sends outbox rows to Kafka in id order and deletes them once every delivery is acknowledged. A crash
/// between delivery and delete republishes those rows (at-least-once); consumers dedupe by event id.
pub struct OutboxRelay {
    db: Db,
    producer: Producer,
    batch_size: usize,
    notify: Arc<Notify>,
    drain_timeout: Duration,
    /// The relay lock's session, once this process holds it (PostgreSQL).
    leader: tokio::sync::Mutex<Option<ExclusiveGuard>>,
}

struct OutboxRow {
    id: i64,
    topic: String,
    key: Option<String>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

/// A row that can never be published, and why.
struct Unpublishable {
    id: i64,
    reason: String,
}

/// What one read of the outbox found.
#[derive(Default)]
struct Rows {
    publishable: Vec<OutboxRow>,
    unpublishable: Vec<Unpublishable>,
}

impl Rows {
    fn len(&self) -> usize {
        self.publishable.len() + self.unpublishable.len()
    }
}

impl OutboxRelay {
    pub fn new(db: Db, producer: Producer, batch_size: usize) -> Self {
        Self {
            db,
            producer,
            batch_size: batch_size.max(1),
            notify: Arc::new(Notify::new()),
            drain_timeout: Duration::from_secs(10),
            leader: tokio::sync::Mutex::new(None),
        }
    }

    /// How long [`run`](Self::run) may spend sending what is left after shutdown (default 10 s).
    pub fn with_drain_timeout(mut self, drain_timeout: Duration) -> Self {
        self.drain_timeout = drain_timeout;
        self
    }

    /// Wake the relay after a commit that enqueued messages (it also polls every 100 ms).
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Relays until `shutdown`, then makes one last pass bounded by the drain timeout. Failures are
    /// logged and retried with backoff; the loop itself does not fail.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BusError> {
        let mut backoff = retry_delays();
        let mut last_gauge: Option<Instant> = None;
        loop {
            if last_gauge.is_none_or(|at| at.elapsed() >= PENDING_GAUGE_INTERVAL) {
                last_gauge = Some(Instant::now());
                self.update_pending_gauge().await;
            }
            let wait = match self.relay_until_empty().await {
                Ok(()) => {
                    backoff = retry_delays();
                    POLL_INTERVAL
                }
                Err(e) => {
                    let wait = backoff.next().unwrap_or(MAX_BACKOFF);
                    warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "outbox relay failed");
                    wait
                }
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = self.notify.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        match tokio::time::timeout(self.drain_timeout, self.relay_until_empty()).await {
            Ok(Ok(())) => info!("outbox relay stopped"),
            Ok(Err(e)) => warn!(error = %e, "outbox relay stopped with rows left"),
            Err(_) => warn!("outbox relay drain timed out"),
        }
        Ok(())
    }

    async fn relay_until_empty(&self) -> Result<(), BusError> {
        while self.relay_once().await? == self.batch_size {}
        Ok(())
    }

    /// One pass, for tests and benches: returns how many rows were relayed.
    pub async fn relay_once(&self) -> Result<usize, BusError> {
        let relayed = match self.db.backend() {
            Backend::Postgres => self.relay_once_postgres().await?,
            Backend::Sqlite => {
                let mut conn = self.db.pool().acquire().await?;
                let mut rows = self.read_rows(&mut conn).await?;
                self.send(&mut rows).await?;
                self.settle(&mut conn, &rows).await?;
                rows.len()
            }
        };
        if relayed > 0 {
            metrics::counter!("socialops_outbox_relayed_total").increment(relayed as u64);
            debug!(rows = relayed, "outbox rows relayed");
        }
        Ok(relayed)
    }

    /// Relays only while this process holds the session-level relay lock, so that relays of several
    /// replicas of one service never interleave and break per-key order. The lock lives on a session
    /// of its own, kept across passes; reading and deleting run outside any transaction, so no
    /// transaction stays open while the producer waits for the broker.
    async fn relay_once_postgres(&self) -> Result<usize, BusError> {
        let mut leader = self.leader.lock().await;
        if let Some(guard) = leader.as_mut()
            && !guard.is_held().await
        {
            warn!("outbox relay lost its lock session; taking the lock again");
            *leader = None;
        }
        if leader.is_none() {
            *leader = self
                .db
                .try_exclusive_beside_pool(RELAY_LOCK_CLASS, 0)
                .await?;
        }
        if leader.is_none() {
            return Ok(0);
        }
        let mut conn = self.db.pool().acquire().await?;
        let mut rows = self.read_rows(&mut conn).await?;
        drop(conn);
        self.send(&mut rows).await?;
        let mut conn = self.db.pool().acquire().await?;
        self.settle(&mut conn, &rows).await?;
        Ok(rows.len())
    }

    async fn read_rows(&self, conn: &mut AnyConnection) -> Result<Rows, BusError> {
        let limit = i64::try_from(self.batch_size).unwrap_or(i64::MAX);
        let found = sqlx::query(
            "SELECT id, topic, msg_key, payload, headers FROM outbox ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(conn)
        .await?;
        let mut rows = Rows::default();
        for row in &found {
            match decode_row(row)? {
                Ok(row) => rows.publishable.push(row),
                Err(unpublishable) => rows.unpublishable.push(unpublishable),
            }
        }
        Ok(rows)
    }

    /// Sends the publishable rows. A row the broker refuses for good moves to the unpublishable ones;
    /// any other failure fails the pass, and the whole batch is sent again on the next one.
    async fn send(&self, rows: &mut Rows) -> Result<(), BusError> {
        if rows.publishable.is_empty() {
            return Ok(());
        }
        let records: Vec<Record<'_>> = rows
            .publishable
            .iter()
            .map(|row| Record {
                topic: &row.topic,
                key: row.key.as_deref().map(str::as_bytes),
                payload: Some(&row.payload),
                headers: &row.headers,
            })
            .collect();
        let outcomes = self.producer.deliver_each(records).await;
        let mut refused = Vec::new();
        for (row, outcome) in rows.publishable.iter().zip(outcomes) {
            match outcome {
                Ok(_) => {}
                Err(e) if is_unpublishable(&e) => refused.push(Unpublishable {
                    id: row.id,
                    reason: format!("the broker refused the message for good: {e}"),
                }),
                Err(e) => {
                    return Err(BusError::Delivery {
                        topic: row.topic.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        rows.unpublishable.extend(refused);
        Ok(())
    }

    /// Sets the unpublishable rows aside with their reasons, then deletes everything the pass handled.
    async fn settle(&self, conn: &mut AnyConnection, rows: &Rows) -> Result<(), BusError> {
        if !rows.unpublishable.is_empty() {
            set_aside(conn, &rows.unpublishable).await?;
        }
        let ids: Vec<i64> = rows.publishable.iter().map(|row| row.id).collect();
        delete_rows(conn, &ids).await
    }

    async fn update_pending_gauge(&self) {
        match sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox")
            .fetch_one(self.db.pool())
            .await
        {
            Ok(pending) => metrics::gauge!("socialops_outbox_pending").set(pending as f64),
            Err(e) => debug!(error = %e, "counting outbox rows failed"),
        }
    }
}

/// The row, or why it can never be published; `Err` only for a row the database cannot give.
fn decode_row(row: &AnyRow) -> Result<Result<OutboxRow, Unpublishable>, BusError> {
    let id: i64 = row.try_get("id")?;
    let encoded: Vec<u8> = row.try_get("headers")?;
    Ok(match headers::decode(&encoded) {
        Ok(headers) => Ok(OutboxRow {
            id,
            topic: row.try_get("topic")?,
            key: row.try_get("msg_key")?,
            payload: row.try_get("payload")?,
            headers,
        }),
        Err(reason) => Err(Unpublishable {
            id,
            reason: format!("unreadable headers: {reason}"),
        }),
    })
}

/// Moves each row to `outbox_dead` with its reason, one transaction for all of them.
async fn set_aside(conn: &mut AnyConnection, rows: &[Unpublishable]) -> Result<(), BusError> {
    let now_us = socialops_storage::now_micros();
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for row in rows {
        sqlx::query(
            "INSERT INTO outbox_dead (id, topic, msg_key, payload, headers, created_at_us, reason, set_aside_at_us) \
             SELECT id, topic, msg_key, payload, headers, created_at_us, $2, $3 FROM outbox WHERE id = $1",
        )
        .bind(row.id)
        .bind(row.reason.as_str())
        .bind(now_us)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM outbox WHERE id = $1")
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    for row in rows {
        error!(id = row.id, reason = %row.reason, "outbox row set aside in outbox_dead");
    }
    metrics::counter!("socialops_outbox_set_aside_total").increment(rows.len() as u64);
    Ok(())
}

async fn delete_rows(conn: &mut AnyConnection, ids: &[i64]) -> Result<(), BusError> {
    for chunk in ids.chunks(IDS_PER_DELETE) {
        let mut sql = SqlText::new(Backend::of(conn), "DELETE FROM outbox WHERE id IN ");
        sql.value_rows(1, chunk.len());
        let mut query = sqlx::query(sql.into_sql());
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Waits between failed passes: doubling from the poll interval to ten seconds, with jitter.
fn retry_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(POLL_INTERVAL)
        .with_max_delay(MAX_BACKOFF)
        .with_jitter()
        .without_max_times()
        .build()
}
