//! Two aliases of one person: their profiles merge, the merge is announced once, and later events
//! under either user id land on the merged profile.

use socialops_proto::events::v1::{Alias, AliasKind};
use socialops_proto::profiles::v1::profile_change::Change;
use socialops_proto::segmentation::v1::{GetProfileRequest, get_profile_request};

use crate::support::{Backend, DAY_US, T0_US, comment, identify_phone, order, spawn_app};

const PHONE_HASH: &str = "9f2c1e0b7d4a3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

async fn two_aliases_of_one_person_merge(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let mut client = app.client().await;

    // The WeChat user identifies with a phone and buys; the Douyin user comments and buys.
    app.send(&[
        identify_phone(&t, "a-id", "wx_a", T0_US, PHONE_HASH),
        order(&t, "a-ord", "wx_a", T0_US + 1, 10_000),
    ])
    .await;
    app.send(&[
        comment(&t, "b-cmt", "dy_b", T0_US, "想买"),
        order(&t, "b-ord", "dy_b", T0_US + 2, 5_000),
    ])
    .await;
    app.wait_profile(&mut client, "wx_a", |p| p.orders_count == 1)
        .await;
    app.wait_profile(&mut client, "dy_b", |p| p.orders_count == 1)
        .await;

    // Then the Douyin user identifies with the same phone: one person.
    app.send(&[identify_phone(
        &t,
        "b-id",
        "dy_b",
        T0_US + DAY_US,
        PHONE_HASH,
    )])
    .await;
    let merged = app
        .wait_profile(&mut client, "dy_b", |p| p.user_id == "wx_a")
        .await;
    assert_eq!(merged.orders_count, 2);
    assert_eq!(merged.orders_total_cents, 15_000);
    assert_eq!(merged.merged_user_ids, ["dy_b"]);
    assert_eq!(merged.counts.get("comment"), Some(&1));
    assert_eq!(merged.counts.get("identify"), Some(&2));
    app.changes
        .wait_for("the merge announced", |all| {
            all.iter()
                .any(|c| matches!(c.change, Some(Change::ProfilesMerged(_))))
        })
        .await;

    // Later events under either user id land on the merged profile.
    app.send(&[comment(&t, "b-cmt-2", "dy_b", T0_US + 2 * DAY_US, "又来了")])
        .await;
    app.send(&[comment(&t, "a-cmt", "wx_a", T0_US + 2 * DAY_US, "好评")])
        .await;
    let profile = app
        .wait_profile(&mut client, "wx_a", |p| p.counts.get("comment") == Some(&3))
        .await;
    assert_eq!(profile.orders_count, 2);
    let by_alias = client
        .get_profile(GetProfileRequest {
            key: Some(get_profile_request::Key::Alias(Alias {
                kind: AliasKind::Phone as i32,
                value_hash: PHONE_HASH.into(),
                ..Default::default()
            })),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(by_alias.user_id, "wx_a");
    assert_eq!(by_alias.counts.get("comment"), Some(&3));

    let merges: Vec<_> = app
        .changes
        .all()
        .into_iter()
        .filter_map(|c| match c.change {
            Some(Change::ProfilesMerged(m)) => Some((c.user_id, m.merged_user_id)),
            _ => None,
        })
        .collect();
    assert_eq!(merges, [("wx_a".to_owned(), "dy_b".to_owned())]);
    app.stop().await;
}

#[tokio::test]
async fn two_aliases_of_one_person_merge_sqlite() {
    two_aliases_of_one_person_merge(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_aliases_of_one_person_merge_postgres() {
    two_aliases_of_one_person_merge(Backend::Postgres).await;
}
