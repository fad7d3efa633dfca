use socialops_proto::alerts::v1::{AlertKind, CrisisState, Severity};
use socialops_proto::campaign::v1::{
    Faq, GetCampaignRequest, LifecycleRequest, ListSendsRequest, Pattern, PutFaqRequest,
};

use crate::support::*;

const AD: &str = r#"
name = "Double eleven"
channel = "push"
kind = "ad"
entry = { type = "segment_entered", segment_id = "shoppers" }

[[variants]]
id = "a"

[[steps]]
type = "send"
id = "promo"
text = "双十一会员专享折扣，今晚开抢。"
"#;

async fn status(app: &TestApp, id: &str) -> (String, String) {
    let campaign = app
        .writer()
        .await
        .get_campaign(GetCampaignRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner();
    (campaign.status, campaign.paused_by)
}

/// A high crisis pauses ads and not service replies; a send the ad campaign had decided (held back
/// by quiet hours) is held, not lost, and goes out when resolving the crisis resumes the campaign.
#[tokio::test]
async fn crisis_pauses_ads_not_service_and_resolving_resumes() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let ad = app.launch(AD).await;
    app.writer()
        .await
        .put_faq(PutFaqRequest {
            faq: Some(Faq {
                id: "shipping".into(),
                patterns: vec![Pattern {
                    keywords: vec!["发货".into()],
                }],
                answer: "下单后 48 小时内发货。".into(),
                updated_at: None,
            }),
        })
        .await
        .unwrap();
    // 23:00 local: the ad waits for the end of the quiet hours.
    app.advance(11 * HOUR_US);
    app.entered_segment("u1", "shoppers").await;
    app.settle().await;
    app.alert(
        "c1",
        AlertKind::Opened,
        CrisisState::Detected,
        Severity::High,
    )
    .await;
    app.settle().await;
    assert_eq!(
        status(&app, &ad.id).await,
        ("paused".into(), "crisis".into())
    );

    app.direct_message("u1", "conv-1", "什么时候发货？").await;
    app.wait_sends("the FAQ answer", 1, |s| s.step_id == "faq:shipping")
        .await;
    app.advance(9 * HOUR_US + MINUTE_US);
    app.settle().await;
    assert!(
        !app.published().iter().any(|s| s.campaign_id == ad.id),
        "no ad during the crisis"
    );
    let held = app
        .writer()
        .await
        .list_sends(ListSendsRequest {
            campaign_id: ad.id.clone(),
            ..ListSendsRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sends;
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].state.as_str(), held[0].rule.as_str()),
        ("held", "crisis_pause")
    );

    app.alert(
        "c1",
        AlertKind::Resolved,
        CrisisState::Resolved,
        Severity::High,
    )
    .await;
    app.settle().await;
    assert_eq!(status(&app, &ad.id).await.0, "running");
    app.settle().await;
    app.wait_sends("the held ad", 1, |s| s.campaign_id == ad.id)
        .await;
}

/// A campaign paused by hand during a crisis stays paused when the crisis ends.
#[tokio::test]
async fn a_manual_pause_outlasts_the_crisis() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let ad = app.launch(AD).await;
    app.alert(
        "c2",
        AlertKind::Opened,
        CrisisState::Detected,
        Severity::Critical,
    )
    .await;
    app.settle().await;
    assert_eq!(status(&app, &ad.id).await.0, "paused");
    app.writer()
        .await
        .pause_campaign(LifecycleRequest {
            id: ad.id.clone(),
            reason: "legal review".into(),
        })
        .await
        .unwrap();
    app.alert(
        "c2",
        AlertKind::Resolved,
        CrisisState::Resolved,
        Severity::Critical,
    )
    .await;
    app.settle().await;
    assert_eq!(
        status(&app, &ad.id).await,
        ("paused".into(), "manual".into())
    );
    // A medium crisis pauses nothing.
    app.alert(
        "c3",
        AlertKind::Opened,
        CrisisState::Detected,
        Severity::Medium,
    )
    .await;
    app.writer()
        .await
        .resume_campaign(LifecycleRequest {
            id: ad.id.clone(),
            reason: "cleared".into(),
        })
        .await
        .unwrap();
    app.settle().await;
    assert_eq!(status(&app, &ad.id).await.0, "running");
}
