//! The store conformance suite: the same scenarios on SQLite and PostgreSQL.

use socialops_bus::OutgoingMessage;
use socialops_ingestion::store::{EventQuery, EventStore, NewEvent};
use socialops_storage::{Db, Row};

use crate::support::{Backend, comment};

async fn open(backend: Backend) -> Option<(EventStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let config = socialops_testkit::database(backend, dir.path(), "ingestion_store").await?;
    let db = Db::connect(&config).await.unwrap();
    Some((EventStore::open(db).await.unwrap(), dir))
}

fn publish(new: &NewEvent) -> OutgoingMessage {
    OutgoingMessage::new(
        "events",
        Some(new.event.user_id.clone()),
        new.encoded.clone(),
    )
}

async fn outbox_len(store: &EventStore) -> i64 {
    let row = sqlx::query("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.db().pool())
        .await
        .unwrap();
    row.try_get(0).unwrap()
}

async fn conformance(backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let batch: Vec<NewEvent> = ["a", "b", "c"]
        .iter()
        .map(|id| NewEvent::new(comment("t1", id, "u", id)))
        .collect();
    assert_eq!(
        store.insert_new(&batch, publish).await.unwrap(),
        [true, true, true]
    );
    assert_eq!(outbox_len(&store).await, 3);

    // The same ids again, one new, and the same id under another tenant: only the new ones count.
    let mut second: Vec<NewEvent> = ["a", "d"]
        .iter()
        .map(|id| NewEvent::new(comment("t1", id, "u", id)))
        .collect();
    second.push(NewEvent::new(comment("t2", "a", "u", "a")));
    assert_eq!(
        store.insert_new(&second, publish).await.unwrap(),
        [false, true, true]
    );
    assert_eq!(outbox_len(&store).await, 5, "duplicates enqueue nothing");
    assert_eq!(store.count_stored("t1").await.unwrap(), 4);

    let got = store.get("t1", "b").await.unwrap().unwrap();
    assert_eq!(got, batch[1].event);
    assert!(store.get("t3", "b").await.unwrap().is_none());

    let query = EventQuery {
        tenant_id: "t1".into(),
        limit: 3,
        ..Default::default()
    };
    let (page, next) = store.list(&query).await.unwrap();
    assert_eq!(page.len(), 3);
    let (rest, last) = store
        .list(&EventQuery {
            after: next,
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(last.is_none());

    let erased = store
        .erase_user("t1", "u", 1, OutgoingMessage::new("privacy", None, vec![1]))
        .await
        .unwrap();
    assert_eq!(erased, 4);
    assert!(store.get("t1", "a").await.unwrap().is_none());
    assert_eq!(
        store.get("t2", "a").await.unwrap().unwrap().tenant_id,
        "t2",
        "other tenants untouched"
    );
    let row =
        sqlx::query("SELECT COUNT(*) FROM events WHERE tenant_id = 't1' AND payload IS NOT NULL")
            .fetch_one(store.db().pool())
            .await
            .unwrap();
    assert_eq!(
        row.try_get::<i64, _>(0).unwrap(),
        0,
        "no personal data left"
    );
    let again = [NewEvent::new(comment("t1", "a", "u", "a"))];
    assert_eq!(
        store.insert_new(&again, publish).await.unwrap(),
        [false],
        "still deduplicated after erasure"
    );
}

#[tokio::test]
async fn store_conformance_sqlite() {
    conformance(Backend::Sqlite).await;
}

#[tokio::test]
async fn store_conformance_postgres() {
    conformance(Backend::Postgres).await;
}
