//! Processed-event keys against a real PostgreSQL (`SOCIALOPS_TEST_DATABASE_URL`) and SQLite: new
//! once, forgotten only when older than the cutoff, and new again after that.

use std::time::Duration;

use socialops_storage::processed::{dedup_cutoff, forget_processed, mark_processed};
use socialops_storage::testing::{open, scratch_postgres};
use socialops_storage::{DatabaseConfig, Db};

/// What the services' migrations create.
const TABLE: &str = "CREATE TABLE processed_events (tenant_id TEXT NOT NULL, event_id TEXT NOT NULL, \
                     processed_at_us BIGINT NOT NULL, PRIMARY KEY (tenant_id, event_id))";
const INDEX: &str = "CREATE INDEX processed_events_by_time ON processed_events (processed_at_us)";

async fn keys_are_new_once_and_forgotten_by_age(db: &Db) {
    let mut conn = db.pool().acquire().await.unwrap();
    let new = mark_processed(
        &mut conn,
        &[
            ("acme", "e1"),
            ("acme", "e2"),
            ("acme", "e1"),
            ("beta", "e1"),
        ],
        1_000,
    )
    .await
    .unwrap();
    assert_eq!(new.len(), 3, "a pair repeated in the input is new once");
    let new = mark_processed(&mut conn, &[("acme", "e2"), ("acme", "e3")], 2_000)
        .await
        .unwrap();
    assert_eq!(
        new.into_iter().collect::<Vec<_>>(),
        [("acme".to_owned(), "e3".to_owned())],
        "a redelivered key is not new"
    );
    // Enough keys to take several delete statements.
    let many: Vec<String> = (0..12_000).map(|i| format!("bulk-{i}")).collect();
    let bulk: Vec<(&str, &str)> = many.iter().map(|id| ("acme", id.as_str())).collect();
    assert_eq!(
        mark_processed(&mut conn, &bulk, 1_500).await.unwrap().len(),
        12_000
    );
    drop(conn);

    assert_eq!(
        forget_processed(db, 1_000).await.unwrap(),
        0,
        "nothing older than the cutoff"
    );
    assert_eq!(forget_processed(db, 1_501).await.unwrap(), 12_003);
    let mut conn = db.pool().acquire().await.unwrap();
    let new = mark_processed(&mut conn, &[("acme", "e1"), ("acme", "e3")], 3_000)
        .await
        .unwrap();
    assert_eq!(
        new.into_iter().collect::<Vec<_>>(),
        [("acme".to_owned(), "e1".to_owned())],
        "a forgotten key is new again; a younger one is still known"
    );
}

#[tokio::test]
async fn processed_keys_on_postgres() {
    let Some(url) = scratch_postgres("processed").await else {
        return;
    };
    let db = open(&url, &[TABLE, INDEX]).await;
    keys_are_new_once_and_forgotten_by_age(&db).await;
    db.close().await;
}

#[tokio::test]
async fn processed_keys_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(
        &DatabaseConfig::sqlite_file(&dir.path().join("processed.db")).url,
        &[TABLE, INDEX],
    )
    .await;
    keys_are_new_once_and_forgotten_by_age(&db).await;
    db.close().await;
}

#[test]
fn the_cutoff_is_the_window_before_now() {
    assert_eq!(dedup_cutoff(10_000_000, Duration::from_secs(3)), 7_000_000);
    assert_eq!(dedup_cutoff(0, Duration::MAX), -i64::MAX);
}
