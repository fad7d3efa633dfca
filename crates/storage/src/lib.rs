//! One connection pool over PostgreSQL (production) or SQLite (the embedded default).
//!
//! Services write their SQL once, with `$1`-style placeholders that both backends accept, and reach for
//! [`Backend`] only where the dialects differ (bulk-load tricks, DDL). Timestamps are stored as
//! microseconds since the Unix epoch in `BIGINT` columns so both backends order and compare them alike.

pub mod clock;
mod exclusive;
pub mod failure;
pub mod processed;
pub mod rows;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use exclusive::ExclusiveGuard;

/// A service's schema, one embedded migrator per backend: each service keeps `migrations/postgres`
/// and `migrations/sqlite` and embeds them with `sqlx::migrate!`.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub postgres: &'static Migrator,
    pub sqlite: &'static Migrator,
}
pub use sqlx::{Any, AnyPool as Pool, Row, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database url scheme in `{0}`: use postgres:// or sqlite://")]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The backend behind a connection (or, through `Deref`, a transaction).
    pub fn of(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Where a service keeps its data. `Debug` shows the URL without its password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://path/to/file.db`.
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    8
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redacted_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `scheme://user:secret@host/db?password=secret` → `scheme://user:***@host/db?password=***`.
pub fn redacted_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@')
            && let Some(colon) = out[authority_start..authority_start + at].find(':')
        {
            out.replace_range(authority_start + colon + 1..authority_start + at, "***");
        }
    }
    if let Some(query_start) = out.find('?') {
        let query: Vec<String> = out[query_start + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.truncate(query_start + 1);
        out.push_str(&query.join("&"));
    }
    out
}

impl DatabaseConfig {
    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            max_connections: 4,
        }
    }
}

/// A pool over either backend, plus which one it is.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(&config.url)?;
        let options = AnyConnectOptions::from_str(&config.url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool_options = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Postgres => pool_options.connect_with(options).await?,
            // WAL lets readers run beside the single writer; the busy timeout makes writers queue
            // instead of failing while another connection holds the write lock.
            Backend::Sqlite => {
                pool_options
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
        };
        Ok(Self { pool, backend })
    }

    /// Runs the migrations for this backend.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), StorageError> {
        match self.backend {
            Backend::Postgres => migrations.postgres.run(&self.pool).await?,
            Backend::Sqlite => migrations.sqlite.run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.pool.begin().await
    }

    /// A transaction that reads and then writes. SQLite gives a deferred transaction a snapshot at
    /// its first read and fails its first write at once (no busy wait) if another connection
    /// committed since; `BEGIN IMMEDIATE` takes the write lock up front, waiting its turn instead.
    /// PostgreSQL needs nothing special.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Postgres => self.pool.begin().await,
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn backend_of(url: &str) -> Result<Backend, StorageError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else {
        Err(StorageError::UnsupportedUrl(
            url.split(':').next().unwrap_or_default().to_owned(),
        ))
    }
}

/// Microseconds since the Unix epoch, the one timestamp representation in every store.
pub fn now_micros() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

/// Creates an empty PostgreSQL database with a unique name next to `admin_url`'s database and returns
/// its URL. Tests use it to get a fresh database each.
pub async fn create_scratch_postgres(
    admin_url: &str,
    prefix: &str,
) -> Result<String, StorageError> {
    sqlx::any::install_default_drivers();
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = AnyConnectOptions::from_str(admin_url)?.connect().await?;
    // The name is generated above from a prefix and a UUID, never from input.
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await?;
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let base = match base.rsplit_once('/') {
        Some((server, _db)) if server.contains("//") && !server.ends_with('/') => server,
        _ => base.trim_end_matches('/'),
    };
    Ok(match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(
            backend_of("postgres://localhost/x").unwrap(),
            Backend::Postgres
        );
        assert_eq!(backend_of("sqlite://data/x.db").unwrap(), Backend::Sqlite);
        assert!(
            matches!(backend_of("mysql://x"), Err(StorageError::UnsupportedUrl(s)) if s == "mysql")
        );
    }
}

/// SQL text built at run time, with each backend's cheapest placeholders: `$n` on PostgreSQL (sqlx's
/// `QueryBuilder<Any>` writes `?`, which PostgreSQL rejects) and `?` on SQLite, where every named
/// parameter costs a walk of the statement's parameter list when it is bound, which makes a
/// multi-row insert of thousands of `$n` parameters quadratic. Values are bound separately, in the
/// order their placeholders were pushed.
#[derive(Debug, Clone)]
pub struct SqlText {
    sql: String,
    backend: Backend,
    num_params: usize,
}

impl SqlText {
    pub fn new(backend: Backend, sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            backend,
            num_params: 0,
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends the next placeholder.
    pub fn param(&mut self) -> &mut Self {
        self.num_params += 1;
        match self.backend {
            Backend::Postgres => {
                self.sql.push('$');
                self.sql
                    .push_str(itoa::Buffer::new().format(self.num_params));
            }
            Backend::Sqlite => self.sql.push('?'),
        }
        self
    }

    /// Appends `(…),(…)`: `rows` tuples of `columns` placeholders each, for a multi-row insert.
    pub fn value_rows(&mut self, rows: usize, columns: usize) -> &mut Self {
        // `$12345,` at most, and the parentheses.
        self.sql.reserve(rows * (columns * 7 + 3));
        for row in 0..rows {
            self.sql.push_str(if row == 0 { "(" } else { ",(" });
            for column in 0..columns {
                if column > 0 {
                    self.sql.push(',');
                }
                self.param();
            }
            self.sql.push(')');
        }
        self
    }

    pub fn num_params(&self) -> usize {
        self.num_params
    }

    /// The text, to pass to `sqlx::query`. It holds placeholders only, never values.
    pub fn into_sql(self) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(self.sql)
    }
}

/// A query under construction, as `sqlx::query` returns it.
pub type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

#[cfg(test)]
mod config_tests {
    #[test]
    fn debug_of_a_database_config_hides_the_password() {
        let config = super::DatabaseConfig {
            url: "postgres://svc:s3cr3t@db:5432/seg?sslmode=require&password=other".into(),
            max_connections: 8,
        };
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("s3cr3t") && !printed.contains("other"),
            "{printed}"
        );
        assert!(printed.contains("postgres://svc:***@db:5432/seg?sslmode=require&password=***"));
        assert_eq!(
            super::redacted_url("sqlite:///tmp/x.db?mode=rwc"),
            "sqlite:///tmp/x.db?mode=rwc"
        );
    }
}

#[cfg(test)]
mod sql_text_tests {
    use super::{Backend, SqlText};

    #[test]
    fn placeholders_follow_the_backend() {
        let mut sql = SqlText::new(Backend::Postgres, "INSERT INTO t (a, b) VALUES ");
        sql.value_rows(2, 2).push(" WHERE x = ").param();
        assert_eq!(sql.num_params(), 5);
        assert_eq!(
            sql.into_sql().0,
            "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4) WHERE x = $5"
        );
        let mut sql = SqlText::new(Backend::Sqlite, "VALUES ");
        sql.value_rows(2, 2);
        assert_eq!(sql.into_sql().0, "VALUES (?,?),(?,?)");
    }
}

/// What the test suites share: they find PostgreSQL (`SOCIALOPS_TEST_DATABASE_URL`) and the broker
/// (`SOCIALOPS_TEST_KAFKA`) through the environment.
pub mod testing {
    /// The variable's value. Unset, it is `None` with a note on stderr, so a developer without the
    /// services can still run the rest; with `CI` set it panics, because CI skips nothing.
    pub fn required_env(name: &str) -> Option<String> {
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Some(value),
            _ if std::env::var_os("CI").is_some() => {
                panic!("{name} must be set in CI (.ci/run sets it)")
            }
            _ => {
                eprintln!("skipped: set {name} to run this test (scripts/dev-deps.sh prints it)");
                None
            }
        }
    }

    /// A fresh PostgreSQL database beside `SOCIALOPS_TEST_DATABASE_URL`'s, its name starting with
    /// `prefix`; `None` where [`required_env`] gives none.
    pub async fn scratch_postgres(prefix: &str) -> Option<String> {
        let admin = required_env("SOCIALOPS_TEST_DATABASE_URL")?;
        Some(
            crate::create_scratch_postgres(&admin, prefix)
                .await
                .expect("scratch database"),
        )
    }

    /// Waits until at least `sessions` sessions of `db`'s database wait on a lock (PostgreSQL's
    /// `pg_stat_activity.wait_event_type = 'Lock'`), so a test shows that something is blocked by the
    /// lock and not merely slow. Panics after 30 s.
    pub async fn wait_for_lock_waiters(db: &crate::Db, sessions: i64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(db.pool())
            .await
            .expect("pg_stat_activity");
            if waiting >= sessions {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{waiting} of {sessions} sessions wait on a lock after 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A pool of two connections to `url`, after running `statements` (a test's tables) on it.
    pub async fn open(url: &str, statements: &[&str]) -> crate::Db {
        let db = crate::Db::connect(&crate::DatabaseConfig {
            url: url.to_owned(),
            max_connections: 2,
        })
        .await
        .expect("connect");
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(*statement))
                .execute(db.pool())
                .await
                .expect("test table");
        }
        db
    }
}
