use std::collections::BTreeMap;

use socialops_proto::campaign::v1::{
    CouponPool, CreatePoolRequest, ExplainDeliveryRequest, GetCampaignCountsRequest,
    GetJourneyRequest,
};
use socialops_proto::campaigns::v1::action::Action;

use crate::support::*;

pub const WINBACK: &str = r#"
name = "Win back the churned"
channel = "direct_message"
kind = "content"
entry = { type = "stage_changed", from = "active", to = "churned" }
exit = { goal = { event = "order_placed" } }

[[variants]]
id = "a"

[[steps]]
type = "send"
id = "coupon"
text = "好久不见！送你一张回归优惠券。"
action = { type = "coupon", template = "WINBACK10" }

[[steps]]
type = "wait_for_event"
id = "wait-order"
event = { event = "order_placed" }
timeout = "3d"
on_event = "exit"

[[steps]]
type = "send"
id = "reminder"
text = "优惠券还有一天就过期了。"
"#;

/// The pool the win-back journey's coupon step issues from.
async fn winback_pool(app: &TestApp) {
    app.coupons()
        .await
        .create_pool(CreatePoolRequest {
            pool: Some(CouponPool {
                id: "WINBACK10".into(),
                name: "Win-back 10".into(),
                code_prefix: "WINBACK-".into(),
                value_cents: 1_000,
                currency: "CNY".into(),
                ..CouponPool::default()
            }),
        })
        .await
        .unwrap();
}

async fn winback_journey(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    winback_pool(&app).await;
    let campaign = app.launch(WINBACK).await;
    for user in ["u1", "u2", "u3"] {
        app.churned(user).await;
    }
    let coupons = app
        .wait_sends("three coupon messages", 3, |s| s.step_id == "coupon")
        .await;
    assert!(coupons.iter().all(|s| matches!(
        s.action.as_ref().and_then(|a| a.action.as_ref()),
        Some(Action::IssueCoupon(c)) if c.template == "WINBACK10"
    )));
    assert!(
        coupons
            .iter()
            .all(|s| s.campaign_id == campaign.id && s.occurrence == 1)
    );
    let codes: std::collections::HashSet<&str> =
        coupons.iter().map(|s| s.coupon_code.as_str()).collect();
    assert_eq!(codes.len(), 3, "{coupons:#?}");
    assert!(codes.iter().all(|c| c.starts_with("WINBACK-")), "{codes:?}");

    // u1 orders within the three days; a redelivered churn of u2 changes nothing.
    app.order("u1", 12_900).await;
    app.churned("u2").await;
    app.settle().await;
    app.advance(3 * DAY_US + MINUTE_US);
    app.settle().await;
    let reminders = app
        .wait_sends("two reminders", 2, |s| s.step_id == "reminder")
        .await;
    let mut users: Vec<String> = reminders.iter().map(user_of).collect();
    users.sort();
    assert_eq!(users, ["u2", "u3"]);

    // Every send key once on the topic, and nothing more went out.
    app.settle().await;
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for send in app.published() {
        *by_key.entry(send.send_key).or_default() += 1;
    }
    assert_eq!(by_key.len(), 5, "{by_key:#?}");
    assert!(by_key.values().all(|n| *n == 1), "{by_key:#?}");

    let mut client = app.writer().await;
    let journey = client
        .get_journey(GetJourneyRequest {
            campaign_id: campaign.id.clone(),
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(journey.journeys.len(), 1);
    assert_eq!(journey.journeys[0].exit_reason, "goal");
    let counts = client
        .get_campaign_counts(GetCampaignCountsRequest {
            campaign_id: campaign.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counts.num_entered, 3);
    assert_eq!(counts.num_sent, 5);
    assert_eq!(counts.num_exited_goal, 1);
    let explained = client
        .explain_delivery(ExplainDeliveryRequest {
            campaign_id: campaign.id.clone(),
            user_id: "u3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let outcomes: Vec<&str> = explained
        .decisions
        .iter()
        .map(|d| d.outcome.as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["entered", "sent", "sent", "exited"],
        "{explained:#?}"
    );
}

#[tokio::test]
async fn winback_journey_on_sqlite() {
    winback_journey(Backend::Sqlite).await;
}

#[tokio::test]
async fn winback_journey_on_postgres() {
    winback_journey(Backend::Postgres).await;
}

/// A journey waiting on its timers is stopped and started again: every due message goes out once.
#[tokio::test]
async fn restart_mid_schedule_sends_each_due_message_once() {
    let Some(mut app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    winback_pool(&app).await;
    app.launch(WINBACK).await;
    let users: Vec<String> = (0..20).map(|i| format!("r{i:02}")).collect();
    for user in &users {
        app.churned(user).await;
    }
    app.wait_sends("20 coupons", 20, |s| s.step_id == "coupon")
        .await;
    app.settle().await;
    app.restart().await;
    app.advance(3 * DAY_US + MINUTE_US);
    app.restart().await;
    app.wait_sends("20 reminders", 20, |s| s.step_id == "reminder")
        .await;
    app.settle().await;
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for send in app.published() {
        *by_key.entry(send.send_key).or_default() += 1;
    }
    assert_eq!(by_key.len(), 40);
    assert!(by_key.values().all(|n| *n == 1), "{by_key:#?}");
}
