use std::sync::Arc;
use std::time::{Duration, Instant};

use socialops_storage::{Backend, Db, ExclusiveGuard, Row, SqlText};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::RELAY_LOCK_CLASS;
use crate::error::BusError;
use crate::headers;
use crate::producer::{Producer, Record};

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
        let mut backoff = POLL_INTERVAL;
        let mut last_gauge: Option<Instant> = None;
        loop {
            if last_gauge.is_none_or(|at| at.elapsed() >= PENDING_GAUGE_INTERVAL) {
                last_gauge = Some(Instant::now());
                self.update_pending_gauge().await;
            }
            let wait = match self.relay_until_empty().await {
                Ok(()) => {
                    backoff = POLL_INTERVAL;
                    POLL_INTERVAL
                }
                Err(e) => {
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay failed");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    backoff
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
                let rows = self.read_rows(&mut conn).await?;
                self.send(&rows).await?;
                delete_rows(&mut conn, &rows).await?;
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
            *leader = self.db.try_exclusive(RELAY_LOCK_CLASS, 0).await?;
        }
        if leader.is_none() {
            return Ok(0);
        }
        let mut conn = self.db.pool().acquire().await?;
        let rows = self.read_rows(&mut conn).await?;
        drop(conn);
        self.send(&rows).await?;
        let mut conn = self.db.pool().acquire().await?;
        delete_rows(&mut conn, &rows).await?;
        Ok(rows.len())
    }

    async fn read_rows(&self, conn: &mut AnyConnection) -> Result<Vec<OutboxRow>, BusError> {
        let limit = i64::try_from(self.batch_size).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT id, topic, msg_key, payload, headers FROM outbox ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(conn)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn send(&self, rows: &[OutboxRow]) -> Result<(), BusError> {
        if rows.is_empty() {
            return Ok(());
        }
        let records: Vec<Record<'_>> = rows
            .iter()
            .map(|row| Record {
                topic: &row.topic,
                key: row.key.as_deref().map(str::as_bytes),
                payload: Some(&row.payload),
                headers: &row.headers,
            })
            .collect();
        self.producer.send_records(records).await?;
        Ok(())
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

fn decode_row(row: &AnyRow) -> Result<OutboxRow, BusError> {
    let id: i64 = row.try_get("id")?;
    let encoded: Vec<u8> = row.try_get("headers")?;
    Ok(OutboxRow {
        id,
        topic: row.try_get("topic")?,
        key: row.try_get("msg_key")?,
        payload: row.try_get("payload")?,
        headers: headers::decode(&encoded)
            .map_err(|reason| BusError::CorruptOutboxRow { id, reason })?,
    })
}

async fn delete_rows(conn: &mut AnyConnection, rows: &[OutboxRow]) -> Result<(), BusError> {
    for chunk in rows.chunks(IDS_PER_DELETE) {
        let mut sql = SqlText::new(Backend::of(conn), "DELETE FROM outbox WHERE id IN ");
        sql.value_rows(1, chunk.len());
        let mut query = sqlx::query(sql.into_sql());
        for row in chunk {
            query = query.bind(row.id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
