//! A message the store refuses for good goes to the dead-letter topic with its reason, and the rest
//! of the partition takes effect.

use prost::Message as _;

use crate::support::{Backend, T0_US, comment, spawn_app};

#[tokio::test]
async fn postgres_dead_letters_an_event_the_store_refuses_and_handles_the_ones_behind_it() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let tenant = app.tenant.clone();
    let key = format!("{tenant}:u1");
    app.send(&[comment(&tenant, "e0", "u1", T0_US, "first")])
        .await;
    // Same key, so the same partition, right behind it: PostgreSQL refuses a NUL in text for good.
    let poison = comment(&tenant, "e1", "u1\u{0}", T0_US + 1, "poison");
    app.send_raw(&app.topics.events, &key, &poison.encode_to_vec())
        .await;
    app.send(&[
        comment(&tenant, "e2", "u1", T0_US + 2, "second"),
        comment(&tenant, "e3", "u1", T0_US + 3, "third"),
    ])
    .await;

    let mut client = app.client().await;
    let profile = app
        .wait_profile(&mut client, "u1", |p| p.counts.get("comment") == Some(&3))
        .await;
    assert_eq!(profile.counts.get("comment"), Some(&3));

    let letters = app.dead_letters(1).await;
    let reason = &letters[0]["dlq-reason"];
    assert!(reason.starts_with("permanent failure:"), "reason: {reason}");
    assert_eq!(letters[0]["dlq-tenant"], tenant);
    app.stop().await;
}
