//! Work that one process of a service should do at a time, such as a periodic sweep, whichever replica
//! gets to it first.

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, ConnectOptions, Connection};

use crate::{Backend, Db};

/// Held while this process does the exclusive work; dropping it lets another process take it.
///
/// On PostgreSQL it owns the connection whose session holds the advisory lock: a pooled one, closed
/// rather than returned to the pool when the guard goes, or one opened beside the pool. Either way
/// the lock cannot outlive the guard whatever happens to the task holding it: the server drops a
/// session's advisory locks when the session ends, and also when the process holding it dies. On
/// SQLite, which one process owns, it holds nothing.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct ExclusiveGuard {
    session: Session,
    lock: (i32, i32),
}

#[derive(Debug)]
enum Session {
    Embedded,
    Pooled(PoolConnection<Any>),
    Own(AnyConnection),
}

impl Session {
    fn connection(&mut self) -> Option<&mut AnyConnection> {
        match self {
            Session::Embedded => None,
            Session::Pooled(session) => Some(&mut **session),
            Session::Own(session) => Some(session),
        }
    }
}

impl ExclusiveGuard {
    /// Whether the session holding the lock is still there. A lost session (the server restarted,
    /// the connection broke) has lost the lock with it, and another process may hold it now.
    pub async fn is_held(&mut self) -> bool {
        match self.session.connection() {
            None => true,
            Some(session) => sqlx::query("SELECT 1").execute(session).await.is_ok(),
        }
    }

    /// Lets the lock go now, so that the next taker (this process's next tick, say) finds it free;
    /// dropping the guard frees it too, but only once its session has closed in the background.
    pub async fn release(mut self) {
        let (class, key) = self.lock;
        if let Some(session) = self.session.connection()
            && let Err(error) = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(class)
                .bind(key)
                .execute(session)
                .await
        {
            tracing::debug!(%error, "unlocking failed; the closing session frees the lock");
        }
        if let Session::Own(session) = self.session {
            // Ending the session lets go of the lock, even if the goodbye fails.
            session.close().await.ok();
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
            return Ok(Some(ExclusiveGuard::embedded(class, key)));
        }
        let mut session = self.pool().acquire().await?;
        session.close_on_drop();
        let locked = try_lock(&mut session, class, key).await?;
        Ok(locked.then_some(ExclusiveGuard {
            session: Session::Pooled(session),
            lock: (class, key),
        }))
    }

    /// [`try_exclusive`](Self::try_exclusive) on a session opened beside the pool, for exclusive work
    /// that needs the pool's connections while it holds the lock: sessions kept out of a small pool
    /// (the relay's, the sweep's, this one) could otherwise leave none for the work itself.
    pub async fn try_exclusive_beside_pool(
        &self,
        class: i32,
        key: i32,
    ) -> Result<Option<ExclusiveGuard>, sqlx::Error> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(ExclusiveGuard::embedded(class, key)));
        }
        let mut session = self.pool().connect_options().connect().await?;
        let locked = try_lock(&mut session, class, key).await?;
        Ok(locked.then_some(ExclusiveGuard {
            session: Session::Own(session),
            lock: (class, key),
        }))
    }
}

impl ExclusiveGuard {
    fn embedded(class: i32, key: i32) -> Self {
        Self {
            session: Session::Embedded,
            lock: (class, key),
        }
    }
}

async fn try_lock(session: &mut AnyConnection, class: i32, key: i32) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(class)
        .bind(key)
        .fetch_one(session)
        .await
}
