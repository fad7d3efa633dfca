//! Segments whose members enter and leave as events arrive and as time passes, and the segment
//! calls of the API.

use futures::StreamExt;
use socialops_proto::profiles::v1::profile_change::Change;
use socialops_proto::profiles::v1::{Cause, ProfileChange};
use socialops_proto::segmentation::v1::{
    CreateSegmentRequest, DeleteSegmentRequest, GetSegmentRequest, GetSegmentSizeHistoryRequest,
    ListMembersRequest, ListSegmentsRequest, PreviewSegmentRequest, UpdateSegmentRequest,
};

use socialops_proto::events::v1::Unfollow;
use socialops_proto::events::v1::social_event::Payload;

use crate::support::{
    Backend, Client, DAY_US, T0_US, comment, event, follow, order, poll, spawn_app,
};

/// (segment id, user, entered?, cause) of every membership change.
fn memberships(all: &[ProfileChange]) -> Vec<(String, String, bool, Cause)> {
    all.iter()
        .filter_map(|c| match &c.change {
            Some(Change::SegmentEntered(s)) => {
                Some((s.segment_id.clone(), c.user_id.clone(), true, c.cause()))
            }
            Some(Change::SegmentLeft(s)) => {
                Some((s.segment_id.clone(), c.user_id.clone(), false, c.cause()))
            }
            _ => None,
        })
        .collect()
}

async fn create(client: &mut Client, name: &str, rule: &str) -> String {
    client
        .create_segment(CreateSegmentRequest {
            name: name.into(),
            description: format!("{name} for the test"),
            rule: rule.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .segment_id
}

async fn members_enter_and_leave_with_events_and_time(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let mut client = app.client().await;

    let bad = client
        .create_segment(CreateSegmentRequest {
            name: "broken".into(),
            rule: "stage ~ loyal".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        bad.message(),
        "rule: at 6 (line 1, column 7): expected `=`, `!=` or `in` after `stage`, found `~`"
    );
    let bad = client
        .preview_segment(PreviewSegmentRequest {
            rule: "stage = loyal and\n  r >= ".into(),
            sample_size: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().contains("(line 2, column 8)"),
        "{}",
        bad.message()
    );

    let recent = create(&mut client, "recent buyers", "last_order_at within 30d").await;
    let chatty = create(&mut client, "chatty", "count.comment >= 2").await;
    let fans = create(&mut client, "fans", "following = true").await;

    app.send(&[order(&t, "o1", "u1", T0_US, 5_000)]).await;
    app.send(&[order(&t, "o3", "u3", T0_US, 7_000)]).await;
    app.send(&[
        comment(&t, "c1", "u2", T0_US, "一"),
        comment(&t, "c2", "u2", T0_US, "二"),
    ])
    .await;
    let expect = |segment: &str, user: &str, entered: bool, cause: Cause| {
        (segment.to_owned(), user.to_owned(), entered, cause)
    };
    // A follow puts a user in, the unfollow after it takes them out again.
    app.send(&[follow(&t, "f4", "u4", T0_US)]).await;
    app.changes
        .wait_for("the follower entered", |all| {
            memberships(all).contains(&expect(&fans, "u4", true, Cause::Event))
        })
        .await;
    app.send(&[event(
        &t,
        "uf4",
        "u4",
        T0_US + 1,
        Payload::Unfollow(Unfollow::default()),
    )])
    .await;
    app.changes
        .wait_for("the follower left", |all| {
            memberships(all).contains(&expect(&fans, "u4", false, Cause::Event))
        })
        .await;
    app.changes
        .wait_for("three members entered", |all| {
            let m = memberships(all);
            m.contains(&expect(&recent, "u1", true, Cause::Event))
                && m.contains(&expect(&recent, "u3", true, Cause::Event))
                && m.contains(&expect(&chatty, "u2", true, Cause::Event))
        })
        .await;

    // Members stream a page per message and resume from a page token.
    let pages: Vec<_> = client
        .list_members(ListMembersRequest {
            segment_id: recent.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let pages: Vec<_> = pages.into_iter().map(Result::unwrap).collect();
    let users: Vec<Vec<String>> = pages
        .iter()
        .map(|p| p.members.iter().map(|m| m.user_id.clone()).collect())
        .collect();
    assert!(
        users.starts_with(&[vec!["u1".to_owned()], vec!["u3".to_owned()]]),
        "{users:?}"
    );
    let first: Vec<_> = client
        .list_members(ListMembersRequest {
            segment_id: recent.clone(),
            page_size: 1,
            max_pages: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(first.len(), 1);
    let token = first[0].as_ref().unwrap().next_page_token.clone();
    assert!(!token.is_empty());
    let rest: Vec<_> = client
        .list_members(ListMembersRequest {
            segment_id: recent.clone(),
            page_size: 10,
            page_token: token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let rest: Vec<String> = rest
        .into_iter()
        .flat_map(|p| p.unwrap().members)
        .map(|m| m.user_id)
        .collect();
    assert_eq!(rest, ["u3"]);

    // A segment created over existing profiles takes them in at once.
    let buyers_segment = client
        .create_segment(CreateSegmentRequest {
            name: "buyers".into(),
            rule: "orders_count >= 1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(buyers_segment.size, 2);
    app.changes
        .wait_for("buyers announced", |all| {
            let m = memberships(all);
            ["u1", "u3"].iter().all(|u| {
                m.contains(&expect(
                    &buyers_segment.segment_id,
                    u,
                    true,
                    Cause::SegmentDefinition,
                ))
            })
        })
        .await;

    let preview = client
        .preview_segment(PreviewSegmentRequest {
            rule: "count.comment >= 1 or orders_total_cents > 6000".into(),
            sample_size: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((preview.count, preview.evaluated), (2, 4));
    assert_eq!(preview.sample.len(), 1);
    assert_eq!(preview.sample[0].user_id, "u2");

    // The sweep records sizes on its ticks: wait for one that saw both buyers before they leave.
    poll(
        || {
            let mut client = client.clone();
            let segment_id = recent.clone();
            async move {
                client
                    .get_segment_size_history(GetSegmentSizeHistoryRequest {
                        segment_id,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .points
            }
        },
        |points| points.iter().any(|p| p.size == 2),
    )
    .await
    .expect("size history records the rise");

    // Thirty days on, the buyers are no longer recent: they leave by the clock alone.
    app.clock.set(T0_US + 31 * DAY_US);
    app.changes
        .wait_for("recent buyers left", |all| {
            let m = memberships(all);
            m.contains(&expect(&recent, "u1", false, Cause::Clock))
                && m.contains(&expect(&recent, "u3", false, Cause::Clock))
        })
        .await;
    let segment = client
        .get_segment(GetSegmentRequest {
            segment_id: recent.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(segment.size, 0);
    let history = poll(
        || {
            let mut client = client.clone();
            let segment_id = recent.clone();
            async move {
                client
                    .get_segment_size_history(GetSegmentSizeHistoryRequest {
                        segment_id,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .points
            }
        },
        |points| points.last().is_some_and(|p| p.size == 0) && points.iter().any(|p| p.size == 2),
    )
    .await
    .expect("size history records the rise and the fall");
    let seconds: Vec<i64> = history
        .iter()
        .map(|p| p.at.as_ref().unwrap().seconds)
        .collect();
    assert!(seconds.windows(2).all(|w| w[0] <= w[1]), "{seconds:?}");

    // A rule change moves members too.
    client
        .update_segment(UpdateSegmentRequest {
            segment_id: chatty.clone(),
            rule: "count.comment >= 3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.changes
        .wait_for("u2 left chatty", |all| {
            memberships(all).contains(&expect(&chatty, "u2", false, Cause::SegmentDefinition))
        })
        .await;

    let all = memberships(&app.changes.all());
    let u1_recent: Vec<_> = all
        .iter()
        .filter(|(s, u, ..)| *s == recent && u == "u1")
        .collect();
    assert_eq!(u1_recent.len(), 2, "one enter and one leave: {u1_recent:?}");

    // Deleting a segment announces its members' leaving.
    let buyers = buyers_segment.segment_id;
    client
        .delete_segment(DeleteSegmentRequest {
            segment_id: buyers.clone(),
        })
        .await
        .unwrap();
    app.changes
        .wait_for("buyers left with their segment", |all| {
            let m = memberships(all);
            ["u1", "u3"]
                .iter()
                .all(|u| m.contains(&expect(&buyers, u, false, Cause::SegmentDefinition)))
        })
        .await;
    let gone = client
        .get_segment(GetSegmentRequest { segment_id: buyers })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    let names: Vec<String> = client
        .list_segments(ListSegmentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .segments
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["chatty", "fans", "recent buyers"]);
    let duplicate = client
        .create_segment(CreateSegmentRequest {
            name: "chatty".into(),
            rule: "count.comment >= 5".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), tonic::Code::AlreadyExists);
    // A segment without members goes quietly; one that does not exist is not found.
    client
        .delete_segment(DeleteSegmentRequest { segment_id: chatty })
        .await
        .unwrap();
    let again = client
        .delete_segment(DeleteSegmentRequest {
            segment_id: "no-such-segment".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn members_enter_and_leave_with_events_and_time_sqlite() {
    members_enter_and_leave_with_events_and_time(Backend::Sqlite).await;
}

#[tokio::test]
async fn members_enter_and_leave_with_events_and_time_postgres() {
    members_enter_and_leave_with_events_and_time(Backend::Postgres).await;
}
