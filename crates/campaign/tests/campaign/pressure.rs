use std::sync::Arc;

use socialops_auth::Role;
use socialops_proto::campaign::v1::{ExplainDeliveryRequest, ListSendsRequest};
use socialops_proto::profiles::v1::profile_change::Change;
use socialops_proto::profiles::v1::{ProfileChange, SegmentEntered};

use crate::support::*;

fn welcome(segment: &str, kind: &str) -> String {
    format!(
        r#"
name = "Welcome {segment}"
channel = "push"
kind = "{kind}"
entry = {{ type = "segment_entered", segment_id = "{segment}" }}

[[variants]]
id = "a"

[[steps]]
type = "send"
id = "hello"
text = "欢迎加入会员！"
"#
    )
}

/// A cap of one marketing message a day: the second campaign's send waits for the next local day,
/// and ExplainDelivery says so.
#[tokio::test]
async fn daily_cap_delays_the_second_message_and_explains_why() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.set_pressure(r#"{"caps": {"per_day": 1}}"#).await;
    let first = app.launch(&welcome("s1", "content")).await;
    let second = app.launch(&welcome("s2", "content")).await;
    app.entered_segment("u1", "s1").await;
    app.wait_sends("the first welcome", 1, |s| s.campaign_id == first.id)
        .await;
    app.entered_segment("u1", "s2").await;
    app.settle().await;
    let mut client = app.writer().await;
    let explained = client
        .explain_delivery(ExplainDeliveryRequest {
            campaign_id: second.id.clone(),
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let last = explained.decisions.last().unwrap();
    assert_eq!(last.outcome, "delayed", "{explained:#?}");
    assert_eq!(last.rule, "daily_cap");
    assert!(
        explained.summary.contains("daily_cap"),
        "{}",
        explained.summary
    );
    // Next local day (00:00 Asia/Shanghai is 16:00 UTC the day before): it goes out.
    app.advance(DAY_US);
    app.settle().await;
    app.wait_sends("the second welcome", 1, |s| s.campaign_id == second.id)
        .await;
    let sends = client
        .list_sends(ListSendsRequest {
            user_id: "u1".into(),
            ..ListSendsRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sends;
    assert_eq!(sends.len(), 2);
    assert!(sends.iter().all(|s| s.state == "sent"));
}

/// Quiet hours hold a send made at 23:00 local time until 08:00.
#[tokio::test]
async fn quiet_hours_hold_until_morning() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let campaign = app.launch(&welcome("night", "content")).await;
    app.advance(11 * HOUR_US); // 23:00 in Asia/Shanghai
    app.entered_segment("owl", "night").await;
    app.settle().await;
    assert!(app.published().is_empty());
    let explained = app
        .writer()
        .await
        .explain_delivery(ExplainDeliveryRequest {
            campaign_id: campaign.id.clone(),
            user_id: "owl".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let last = explained.decisions.last().unwrap();
    assert_eq!(last.rule, "quiet_hours", "{explained:#?}");
    assert_eq!(
        last.until.as_ref().unwrap().seconds * 1_000_000,
        NOON_US + 20 * HOUR_US,
        "08:00 the next morning"
    );
    app.advance(9 * HOUR_US + MINUTE_US);
    app.settle().await;
    app.wait_sends("the welcome in the morning", 1, |_| true)
        .await;
}

/// Two campaigns deciding for the same user at the same moment, in concurrent transactions, never
/// exceed the cap together.
#[tokio::test]
async fn concurrent_campaigns_never_exceed_a_cap() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    app.set_pressure(r#"{"caps": {"per_day": 1}}"#).await;
    let segments: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    for segment in &segments {
        app.launch(&welcome(segment, "content")).await;
    }
    let engine = app.running().engine.clone();
    let tasks: Vec<_> = segments
        .iter()
        .map(|segment| {
            let engine = Arc::clone(&engine);
            let change = ProfileChange {
                change_id: uuid::Uuid::new_v4().to_string(),
                tenant_id: app.tenant.clone(),
                user_id: "busy".into(),
                change: Some(Change::SegmentEntered(SegmentEntered {
                    segment_id: segment.clone(),
                    segment_name: segment.clone(),
                })),
                ..ProfileChange::default()
            };
            tokio::spawn(async move { engine.handle_profile_changes(&[change]).await.unwrap() })
        })
        .collect();
    let mut sent = 0;
    let mut delayed = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        sent += outcome.sent;
        delayed += outcome.delayed;
    }
    assert_eq!((sent, delayed), (1, 5));
    let _ = Role::Reader;
}
