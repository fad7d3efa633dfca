//! `Db::try_exclusive` against a real PostgreSQL (`SOCIALOPS_TEST_DATABASE_URL`) and SQLite.

use std::time::{Duration, Instant};

use socialops_storage::testing::{open, scratch_postgres};
use socialops_storage::{DatabaseConfig, Db};

const CLASS: i32 = 0x5445_5354;

#[tokio::test]
async fn one_replica_at_a_time_holds_the_lock_on_postgres() {
    let Some(url) = scratch_postgres("exclusive").await else {
        return;
    };
    let first = open(&url, &[]).await;
    let second = open(&url, &[]).await;

    let held = first.try_exclusive(CLASS, 1).await.unwrap();
    assert!(held.is_some(), "a free lock is taken");
    assert!(
        second.try_exclusive(CLASS, 1).await.unwrap().is_none(),
        "the other replica does not get a held lock"
    );
    assert!(
        first.try_exclusive(CLASS, 1).await.unwrap().is_none(),
        "nor does another connection of the same replica"
    );
    assert!(
        second.try_exclusive(CLASS, 2).await.unwrap().is_some(),
        "another key is independent"
    );

    drop(held);
    // The session closes in the background and the lock goes with it; the pool does not keep it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let _taken_over = loop {
        if let Some(guard) = second.try_exclusive(CLASS, 1).await.unwrap() {
            break guard;
        }
        assert!(Instant::now() < deadline, "the lock outlived its guard");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        first.try_exclusive(CLASS, 1).await.unwrap().is_none(),
        "now the second replica holds it"
    );
}

#[tokio::test]
async fn sqlite_has_one_process_and_always_grants() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&DatabaseConfig::sqlite_file(&dir.path().join("x.db")))
        .await
        .unwrap();
    let a = db.try_exclusive(CLASS, 1).await.unwrap();
    let b = db.try_exclusive(CLASS, 1).await.unwrap();
    assert!(a.is_some() && b.is_some());
}
