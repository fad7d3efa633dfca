//! What a client sees when PostgreSQL (`SOCIALOPS_TEST_DATABASE_URL`) refuses a request's data:
//! a code it can act on, never `UNAVAILABLE`, and none of the database's text.

use socialops_storage::testing::{open, scratch_postgres};
use tonic::Code;

#[tokio::test]
async fn a_constraint_violation_is_the_clients_to_fix_and_keeps_the_database_text_out() {
    let Some(url) = scratch_postgres("status").await else {
        return;
    };
    let db = open(
        &url,
        &["CREATE TABLE codes (code TEXT PRIMARY KEY, n BIGINT NOT NULL CHECK (n >= 0))"],
    )
    .await;
    let insert = |code: &'static str, n: i64| {
        sqlx::query("INSERT INTO codes (code, n) VALUES ($1, $2)")
            .bind(code)
            .bind(n)
            .execute(db.pool())
    };
    insert("secret-code-1", 1).await.unwrap();
    let duplicate = insert("secret-code-1", 2).await.unwrap_err();
    let status = socialops_grpc::database_status(&duplicate);
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(!status.message().contains("secret-code-1"), "{status:?}");
    assert!(!status.message().contains("codes_pkey"), "{status:?}");

    let negative = insert("secret-code-2", -1).await.unwrap_err();
    let status = socialops_grpc::database_status(&negative);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(!status.message().contains("codes_n_check"), "{status:?}");
}
