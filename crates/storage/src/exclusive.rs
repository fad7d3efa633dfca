//! Work that one process of a service should do at a time, such as a periodic sweep, whichever replica
//! gets to it first.

use sqlx::Any;
use sqlx::pool::PoolConnection;

use crate::{Backend, Db};

/// Held while this process does the exclusive work; dropping it lets another process take it.
///
/// On PostgreSQL it owns the pooled connection whose session holds the advisory lock. That
/// connection is closed, not returned to the pool, when the guard goes, so the lock cannot outlive
/// the guard whatever happens to the task holding it: the server drops a session's advisory locks
/// when the session ends, and also when the process holding it dies. On SQLite, which one process
/// owns, it holds nothing.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct ExclusiveGuard {
    _session: Option<PoolConnection<Any>>,
    lock: (i32, i32),
}

impl ExclusiveGuard {
    /// Whether the session holding the lock is still there. A lost session (the server restarted,
    /// the connection broke) has lost the lock with it, and another process may hold it now.
    pub async fn is_held(&mut self) -> bool {
        match &mut self._session {
            None => true,
            Some(session) => sqlx::query("SELECT 1")
                .execute(&mut **session)
                .await
                .is_ok(),
        }
    }

    /// Lets the lock go now, so that the next taker (this process's next tick, say) finds it free;
    /// dropping the guard frees it too, but only once its session has closed in the background.
    pub async fn release(mut self) {
        if let Some(session) = &mut self._session {
            let (class, key) = self.lock;
            if let Err(error) = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(class)
                .bind(key)
                .execute(&mut **session)
                .await
            {
                tracing::debug!(%error, "unlocking failed; the closing session frees the lock");
            }
        }
    }
}

impl Db {
    /// Takes the session-level advisory lock `(class, key)` without waiting: `None` when another
    /// session (another replica) holds it. Advisory locks are per database, so each service's store
    /// has its own. Always succeeds on SQLite.
    pub async fn try_exclusive(
        &self,
        class: i32,
        key: i32,
    ) -> Result<Option<ExclusiveGuard>, sqlx::Error> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(ExclusiveGuard {
                _session: None,
                lock: (class, key),
            }));
        }
        let mut session = self.pool().acquire().await?;
        session.close_on_drop();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(class)
            .bind(key)
            .fetch_one(&mut *session)
            .await?;
        Ok(locked.then_some(ExclusiveGuard {
            _session: Some(session),
            lock: (class, key),
        }))
    }
}
