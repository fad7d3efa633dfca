//! Multi-row inserts through [`Rows`] against a real PostgreSQL (`SOCIALOPS_TEST_DATABASE_URL`) and
//! SQLite: what goes in comes back unchanged, whatever the text holds, and more rows than one SQLite
//! statement can bind are split.

use socialops_storage::rows::{ColumnType, Rows};
use socialops_storage::testing::{open, scratch_postgres};
use socialops_storage::{Backend, DatabaseConfig, Db, Row};

const TABLE: &str =
    "CREATE TABLE items (id TEXT NOT NULL PRIMARY KEY, n BIGINT, note TEXT NOT NULL)";

async fn insert(db: &Db, rows: &Rows<'_>) -> u64 {
    let mut conn = db.pool().acquire().await.unwrap();
    rows.insert(
        &mut conn,
        "INSERT INTO items (id, n, note) ",
        " ON CONFLICT (id) DO UPDATE SET n = excluded.n, note = excluded.note",
    )
    .await
    .unwrap()
}

async fn round_trip(db: &Db) {
    let awkward = [
        ("quote", Some(i64::MAX), r#"say "hi""#),
        ("backslash", Some(i64::MIN), r"C:\path\n"),
        ("unicode", None, "敏感肌 也没有泛红 🙂"),
        (
            "json",
            Some(0),
            r#"{"tags":["need:sensitive-skin"],"hours":[0,1]}"#,
        ),
        ("empty", Some(-1), ""),
    ];
    let mut rows = Rows::new(&[ColumnType::Text, ColumnType::Int, ColumnType::Text]);
    for (id, n, note) in awkward {
        rows.push(id).push(n).push(note);
    }
    assert_eq!(insert(db, &rows).await, 5);
    for (id, n, note) in awkward {
        let row = sqlx::query("SELECT n, note FROM items WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<Option<i64>, _>(0).unwrap(), n, "{id}");
        assert_eq!(row.try_get::<String, _>(1).unwrap(), note, "{id}");
    }

    // Beyond one SQLite statement's parameters: 12,000 rows of three values.
    let ids: Vec<String> = (0..12_000).map(|i| format!("bulk-{i:05}")).collect();
    let mut rows = Rows::new(&[ColumnType::Text, ColumnType::Int, ColumnType::Text]);
    for (i, id) in ids.iter().enumerate() {
        rows.push(id.as_str())
            .push(i as i64)
            .push(format!("row {i}"));
    }
    let statements = rows.chunks(db.backend()).count();
    assert_eq!(
        statements,
        match db.backend() {
            Backend::Postgres => 1,
            Backend::Sqlite => 2,
        }
    );
    assert_eq!(insert(db, &rows).await, 12_000);
    let (count, sum): (i64, i64) =
        sqlx::query_as("SELECT count(*), CAST(sum(n) AS BIGINT) FROM items WHERE id LIKE 'bulk-%'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((count, sum), (12_000, (0..12_000).sum::<i64>()));
}

#[tokio::test]
async fn rows_round_trip_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(
        &DatabaseConfig::sqlite_file(&dir.path().join("rows.db")).url,
        &[TABLE],
    )
    .await;
    round_trip(&db).await;
}

#[tokio::test]
async fn rows_round_trip_on_postgres() {
    let Some(url) = scratch_postgres("storage_rows").await else {
        return;
    };
    let db = open(&url, &[TABLE]).await;
    round_trip(&db).await;
}
