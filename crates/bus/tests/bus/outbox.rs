use socialops_bus::{KafkaConfig, Outbox, OutboxRelay, OutgoingMessage, Producer};
use socialops_storage::{DatabaseConfig, Db};
use socialops_testkit::{PATIENCE, kafka, postgres_admin_url, read_topic};
use tokio_util::sync::CancellationToken;

use crate::support::{install_outbox, payloads, topics};

async fn postgres() -> Option<Db> {
    let admin_url = postgres_admin_url()?;
    let url = socialops_storage::create_scratch_postgres(&admin_url, "bus_test")
        .await
        .expect("scratch database");
    Some(
        Db::connect(&DatabaseConfig {
            url,
            max_connections: 4,
        })
        .await
        .expect("connect"),
    )
}

async fn sqlite(dir: &tempfile::TempDir) -> Db {
    Db::connect(&DatabaseConfig::sqlite_file(&dir.path().join("outbox.db")))
        .await
        .expect("sqlite")
}

async fn pending(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Rolled-back messages are never sent; committed ones are relayed in id order and deleted.
async fn relays_committed_rows_in_id_order(config: &KafkaConfig, db: &Db) {
    let t = topics(config, 1, 1).await;
    install_outbox(db).await;
    let message = |p: String| {
        OutgoingMessage::new(&t[0], Some(format!("tenant:{}", p.len() % 3)), p.clone())
            .header("schema", p.as_bytes())
    };

    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(&mut tx, &[message("rolled-back".into())])
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let committed: Vec<OutgoingMessage> = (0..25).map(|i| message(format!("m{i:02}"))).collect();
    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(&mut tx, &committed[..10]).await.unwrap();
    Outbox::enqueue(&mut tx, &committed[10..]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pending(db).await, 25);

    let relay = OutboxRelay::new(db.clone(), Producer::new(config).unwrap(), 10);
    let mut passes = Vec::new();
    loop {
        let relayed = relay.relay_once().await.unwrap();
        passes.push(relayed);
        if relayed == 0 {
            break;
        }
    }
    assert_eq!(passes, [10, 10, 5, 0]);
    assert_eq!(pending(db).await, 0, "relayed rows are deleted");

    let received = read_topic(config, &t[0], 25).await;
    assert_eq!(
        payloads(&received),
        payloads_of(&committed),
        "id order, nothing rolled back"
    );
    for (got, sent) in received.iter().zip(&committed) {
        assert_eq!(got.key.as_deref(), sent.key.as_deref().map(str::as_bytes));
        assert_eq!(got.header("schema"), Some(sent.payload.as_slice()));
    }

    // A relay keeps the relay lock for as long as it lives; the next one takes it after it.
    drop(relay);
    // The running relay wakes on the notifier and drains before it returns.
    let relay = OutboxRelay::new(db.clone(), Producer::new(config).unwrap(), 10);
    let notifier = relay.notifier();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));
    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(&mut tx, &[message("from-run".into())])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    notifier.notify_one();
    let all = read_topic(config, &t[0], 26).await;
    assert_eq!(payloads(&all[25..]), ["from-run"]);
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pending(db).await, 0);
}

fn payloads_of(messages: &[OutgoingMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.payload.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn outbox_on_postgres_relays_only_committed_rows_in_order() {
    let Some(config) = kafka() else { return };
    let Some(db) = postgres().await else { return };
    relays_committed_rows_in_id_order(&config, &db).await;
}

#[tokio::test]
async fn outbox_on_sqlite_relays_only_committed_rows_in_order() {
    let Some(config) = kafka() else { return };
    let dir = tempfile::tempdir().unwrap();
    relays_committed_rows_in_id_order(&config, &sqlite(&dir).await).await;
}

#[tokio::test]
async fn outbox_enqueue_splits_large_batches_under_the_bind_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    install_outbox(&db).await;
    let messages: Vec<_> = (0..13_000)
        .map(|i| OutgoingMessage::new("t", Some(format!("k{i}")), vec![1u8; 8]))
        .collect();
    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(&mut tx, &messages).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pending(&db).await, 13_000);
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let keys: Vec<String> = sqlx::query_scalar("SELECT msg_key FROM outbox ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(keys[0], "k0");
    assert_eq!(keys[12_999], "k12999");
}

#[tokio::test]
async fn outbox_enqueue_on_postgres_handles_many_keys_in_one_transaction() {
    let Some(db) = postgres().await else { return };
    install_outbox(&db).await;
    let messages: Vec<_> = (0..7_000)
        .map(|i| OutgoingMessage::new("t", Some(format!("k{}", i % 4_000)), vec![0u8; 4]))
        .collect();
    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(&mut tx, &messages).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pending(&db).await, 7_000);
}

/// A transaction that enqueues after another has enqueued waits for it to end, so ids are committed in
/// order and the relay cannot send a later message of a key before an earlier one.
#[tokio::test]
async fn outbox_enqueues_on_postgres_commit_in_id_order() {
    let Some(db) = postgres().await else { return };
    install_outbox(&db).await;
    let message = |p: &str| OutgoingMessage::new("t", Some("tenant:user".into()), p.as_bytes());

    let mut first = db.begin().await.unwrap();
    Outbox::enqueue(&mut first, &[message("first")])
        .await
        .unwrap();
    let second = tokio::spawn({
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            Outbox::enqueue(&mut tx, &[message("second")])
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    });
    socialops_storage::testing::wait_for_lock_waiters(&db, 1).await;
    assert!(
        !second.is_finished(),
        "the second enqueue waits for the first transaction"
    );
    assert_eq!(pending(&db).await, 0, "nothing is visible before a commit");
    first.commit().await.unwrap();
    tokio::time::timeout(PATIENCE, second)
        .await
        .unwrap()
        .unwrap();
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(payloads, [b"first".to_vec(), b"second".to_vec()]);
}

/// While the broker is away the relay holds no transaction open (it would keep row versions alive
/// and hold locks for as long as delivery is retried), and a second replica's relay stays out.
#[tokio::test]
async fn outbox_relay_keeps_no_transaction_open_while_the_broker_is_away() {
    let Some(_) = kafka() else { return };
    let Some(db) = postgres().await else { return };
    install_outbox(&db).await;
    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(
        &mut tx,
        &[OutgoingMessage::new("socialops.nowhere", None, "waiting")],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut unreachable = KafkaConfig::new("127.0.0.1:1");
    unreachable.delivery_timeout_ms = 5_000;
    let relay = OutboxRelay::new(db.clone(), Producer::new(&unreachable).unwrap(), 10);
    let sending = tokio::spawn(async move { relay.relay_once().await.map(|_| ()) });
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert!(!sending.is_finished(), "the relay waits for the broker");
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity
         WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(open, 0, "no transaction is open while the relay waits");

    let other_replica = OutboxRelay::new(db.clone(), Producer::new(&unreachable).unwrap(), 10);
    assert_eq!(
        other_replica.relay_once().await.unwrap(),
        0,
        "the lock keeps a second relay out"
    );
    let failed = tokio::time::timeout(PATIENCE, sending)
        .await
        .unwrap()
        .unwrap();
    assert!(
        failed.is_err(),
        "delivery times out after the configured 5 s"
    );
    assert_eq!(
        pending(&db).await,
        1,
        "an undelivered row stays in the outbox"
    );
}

/// A row that can never be published (the broker's size limit, unreadable headers) moves to
/// `outbox_dead` with its reason; the rows behind it are published.
async fn sets_aside_unpublishable_rows(config: &KafkaConfig, db: &Db) {
    let t = topics(config, 1, 1).await;
    install_outbox(db).await;
    let message = |payload: Vec<u8>| OutgoingMessage::new(&t[0], Some("acme:ann".into()), payload);
    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(
        &mut tx,
        &[
            message(b"first".to_vec()),
            message(vec![7u8; 2_000_000]),
            message(b"second".to_vec()),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query(
        "INSERT INTO outbox (topic, msg_key, payload, headers, created_at_us) VALUES ($1, NULL, $2, $3, 0)",
    )
    .bind(t[0].as_str())
    .bind(b"unreadable".as_slice())
    .bind([9u8, 1, 2].as_slice())
    .execute(db.pool())
    .await
    .unwrap();
    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(&mut tx, &[message(b"third".to_vec())])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let relay = OutboxRelay::new(db.clone(), Producer::new(config).unwrap(), 10);
    while relay.relay_once().await.expect("the relay goes on") > 0 {}
    assert_eq!(pending(db).await, 0);
    assert_eq!(
        payloads(&read_topic(config, &t[0], 3).await),
        ["first", "second", "third"]
    );
    let dead: Vec<(i64, String)> = sqlx::query_as(
        "SELECT CAST(length(payload) AS BIGINT), reason FROM outbox_dead ORDER BY id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0].0, 2_000_000);
    assert!(dead[0].1.contains("refused"), "{}", dead[0].1);
    assert!(dead[1].1.contains("unreadable headers"), "{}", dead[1].1);
}

#[tokio::test]
async fn outbox_on_postgres_sets_aside_unpublishable_rows() {
    let Some(config) = kafka() else { return };
    let Some(db) = postgres().await else { return };
    sets_aside_unpublishable_rows(&config, &db).await;
}

#[tokio::test]
async fn outbox_on_sqlite_sets_aside_unpublishable_rows() {
    let Some(config) = kafka() else { return };
    let dir = tempfile::tempdir().unwrap();
    sets_aside_unpublishable_rows(&config, &sqlite(&dir).await).await;
}
