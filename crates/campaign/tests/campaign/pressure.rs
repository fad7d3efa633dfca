use std::sync::Arc;

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
    let last = explained
        .decisions
        .iter()
        .rev()
        .find(|d| !d.send_key.is_empty())
        .unwrap();
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
    let last = explained
        .decisions
        .iter()
        .rev()
        .find(|d| !d.send_key.is_empty())
        .unwrap();
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
}

/// A best-time campaign waits for the user's most active local hour, and an ad that would make ads
/// more than 30 % of the user's marketing messages waits too; each says why.
#[tokio::test]
async fn best_time_and_the_ad_ratio_hold_back_and_say_why() {
    use socialops_proto::events::v1::{Like, social_event::Payload};
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    // Twelve likes at 20:00 Shanghai time (12:00 UTC) on earlier days.
    for day in 1..=12 {
        app.event_at(
            "fan",
            Payload::Like(Like {
                post_id: format!("p{day}"),
            }),
            NOON_US - day * DAY_US + 8 * HOUR_US,
        )
        .await;
    }
    app.settle().await;
    let evening = app
        .launch(
            &welcome("evening", "content")
                .replace("[[variants]]", "best_time = \"24h\"\n\n[[variants]]"),
        )
        .await;
    app.entered_segment("fan", "evening").await;
    app.settle().await;
    let client = app.writer().await;
    let explain = |campaign_id: String, user: &'static str| {
        let mut client = client.clone();
        async move {
            client
                .explain_delivery(ExplainDeliveryRequest {
                    campaign_id,
                    user_id: user.into(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let explained = explain(evening.id.clone(), "fan").await;
    let last = explained
        .decisions
        .iter()
        .rev()
        .find(|d| !d.send_key.is_empty())
        .unwrap();
    assert_eq!(last.rule, "best_time", "{explained:#?}");
    assert_eq!(
        last.until.as_ref().unwrap().seconds * 1_000_000,
        NOON_US + 8 * HOUR_US
    );

    let first_ad = app.launch(&welcome("ads-1", "ad")).await;
    let second_ad = app.launch(&welcome("ads-2", "ad")).await;
    app.entered_segment("buyer", "ads-1").await;
    app.wait_sends("the first ad", 1, |s| s.campaign_id == first_ad.id)
        .await;
    app.entered_segment("buyer", "ads-2").await;
    app.settle().await;
    let explained = explain(second_ad.id.clone(), "buyer").await;
    let last = explained
        .decisions
        .iter()
        .rev()
        .find(|d| !d.send_key.is_empty())
        .unwrap();
    assert_eq!(
        (last.outcome.as_str(), last.rule.as_str()),
        ("delayed", "ad_ratio"),
        "{explained:#?}"
    );
    assert!(
        !app.published()
            .iter()
            .any(|s| s.campaign_id == second_ad.id)
    );
}
