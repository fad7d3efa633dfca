//! An erasure request on the privacy topic removes the user, and the user's older events do not
//! bring the profile back.

use socialops_proto::segmentation::v1::{
    CreateSegmentRequest, GetProfileRequest, GetSegmentRequest, get_profile_request,
};

use crate::support::{Backend, DAY_US, T0_US, comment, order, poll, spawn_app};

async fn an_erased_user_is_gone(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let mut client = app.client().await;
    let segment = client
        .create_segment(CreateSegmentRequest {
            name: "buyers".into(),
            rule: "orders_count >= 1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.send(&[
        comment(&t, "e1", "gone", T0_US, "请删除我的数据"),
        order(&t, "e2", "gone", T0_US, 3_000),
        order(&t, "e3", "stays", T0_US, 4_000),
    ])
    .await;
    app.wait_profile(&mut client, "gone", |p| p.orders_count == 1)
        .await;
    app.wait_profile(&mut client, "stays", |p| p.orders_count == 1)
        .await;

    app.set_day(1);
    app.erase("gone").await;
    let get = |user: &'static str| {
        let mut client = client.clone();
        async move {
            client
                .get_profile(GetProfileRequest {
                    key: Some(get_profile_request::Key::UserId(user.into())),
                    ..Default::default()
                })
                .await
        }
    };
    let gone = poll(
        || get("gone"),
        |r| {
            r.as_ref()
                .is_err_and(|status| status.code() == tonic::Code::NotFound)
        },
    )
    .await
    .expect("the erased profile disappears");
    assert_eq!(gone.unwrap_err().code(), tonic::Code::NotFound);
    assert!(get("stays").await.is_ok(), "other users are untouched");
    let size = client
        .get_segment(GetSegmentRequest {
            segment_id: segment.segment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .size;
    assert_eq!(size, 1, "the erased member left the segment");

    // Everything delivered again (the events before the erasure, then the erasure) leaves the
    // user erased; an event from after the erasure starts a new profile with only itself.
    app.restart_with_new_group().await;
    let mut client = app.client().await;
    app.send(&[comment(&t, "e4", "gone", T0_US + 2 * DAY_US, "我又回来了")])
        .await;
    let fresh = app
        .wait_profile(&mut client, "gone", |p| p.counts.get("comment") == Some(&1))
        .await;
    assert_eq!(fresh.orders_count, 0, "{fresh:#?}");
    app.stop().await;
}

#[tokio::test]
async fn an_erased_user_is_gone_sqlite() {
    an_erased_user_is_gone(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_erased_user_is_gone_postgres() {
    an_erased_user_is_gone(Backend::Postgres).await;
}
