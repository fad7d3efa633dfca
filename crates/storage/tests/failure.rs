//! What the stores refuse for good and what they do not, classified on real connections to
//! PostgreSQL (`SOCIALOPS_TEST_DATABASE_URL`) and SQLite.

use socialops_storage::failure::{Failure, classify};
use socialops_storage::testing::{open, scratch_postgres};
use socialops_storage::{DatabaseConfig, Db};

const TABLE: &str = "CREATE TABLE notes (id TEXT NOT NULL PRIMARY KEY, body TEXT NOT NULL)";

async fn insert(db: &Db, id: &str, body: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO notes (id, body) VALUES ($1, $2)")
        .bind(id)
        .bind(body)
        .execute(db.pool())
        .await
        .map(drop)
}

#[tokio::test]
async fn postgres_refuses_a_nul_in_text_and_a_duplicate_key_permanently() {
    let Some(url) = scratch_postgres("failure").await else {
        return;
    };
    let db = open(&url, &[TABLE]).await;
    insert(&db, "a", "fine").await.unwrap();
    let nul = insert(&db, "b", "nul \u{0} inside").await.unwrap_err();
    assert_eq!(classify(&nul), Failure::Permanent, "{nul}");
    let duplicate = insert(&db, "a", "again").await.unwrap_err();
    assert_eq!(classify(&duplicate), Failure::Permanent, "{duplicate}");
}

#[tokio::test]
async fn sqlite_refuses_a_duplicate_key_permanently_and_a_lost_server_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatabaseConfig::sqlite_file(&dir.path().join("f.db"));
    let db = open(&config.url, &[TABLE]).await;
    insert(&db, "a", "fine").await.unwrap();
    let duplicate = insert(&db, "a", "again").await.unwrap_err();
    assert_eq!(classify(&duplicate), Failure::Permanent, "{duplicate}");

    let gone = Db::connect(&DatabaseConfig {
        url: "postgres://nobody@127.0.0.1:1/none".into(),
        max_connections: 1,
    })
    .await
    .unwrap_err();
    let socialops_storage::StorageError::Database(gone) = gone else {
        panic!("expected a database error, got {gone}");
    };
    assert_eq!(classify(&gone), Failure::Transient, "{gone}");
}
