use socialops_auth::Role;
use socialops_proto::campaign::v1::{
    AcceptFindingRequest, CreateCampaignRequest, Format, GetCampaignRequest, GetJourneyRequest,
    LifecycleRequest, ListSendsRequest, ListTransitionsRequest, ReviewCampaignRequest,
    SetSettingsRequest, Settings, ValidateDefinitionRequest,
};
use socialops_proto::privacy::v1::ErasureRequest;
use socialops_proto::profiles::v1::SegmentLeft;
use socialops_proto::profiles::v1::profile_change::Change;
use tonic::Code;

use crate::support::*;

fn campaign_text(text: &str) -> String {
    format!(
        r#"
name = "Claims"
channel = "push"
kind = "ad"
entry = {{ type = "segment_entered", segment_id = "all" }}

[[variants]]
id = "a"

[[steps]]
type = "send"
id = "s1"
text = "{text}"
"#
    )
}

/// A banned word and an absolute term block the start until an admin accepts each with a reason;
/// 最近 blocks nothing.
#[tokio::test]
async fn review_findings_block_the_start_until_accepted() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut writer = app.writer().await;
    writer
        .set_settings(SetSettingsRequest {
            settings: Some(Settings {
                banned_words: vec!["竞品X".into()],
                ..Settings::default()
            }),
        })
        .await
        .unwrap();
    let clean = writer
        .create_campaign(CreateCampaignRequest {
            definition: campaign_text("最近天气转凉，记得添衣。"),
            format: Format::Toml as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clean.num_findings_open, 0);
    let claims = writer
        .create_campaign(CreateCampaignRequest {
            definition: campaign_text("全网最低价，比竞品Ｘ更好用！"),
            format: Format::Toml as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let refused = writer
        .start_campaign(LifecycleRequest {
            id: claims.id.clone(),
            reason: "launch".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let findings = writer
        .review_campaign(ReviewCampaignRequest {
            id: claims.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .findings;
    let mut rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    rules.sort();
    assert_eq!(rules, ["absolute", "banned_word"], "{findings:#?}");
    let absolute = findings.iter().find(|f| f.rule == "absolute").unwrap();
    assert!(!absolute.article.is_empty());
    assert_eq!(
        "全网最低价，比竞品Ｘ更好用！"
            .chars()
            .skip(absolute.start as usize)
            .take((absolute.end - absolute.start) as usize)
            .collect::<String>(),
        absolute.matched
    );
    // A writer may not accept; an admin may, with a reason.
    let denied = writer
        .accept_finding(AcceptFindingRequest {
            campaign_id: claims.id.clone(),
            finding_id: absolute.finding_id.clone(),
            reason: "verified price".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut admin = app.admin().await;
    for finding in &findings {
        admin
            .accept_finding(AcceptFindingRequest {
                campaign_id: claims.id.clone(),
                finding_id: finding.finding_id.clone(),
                reason: "approved by legal".into(),
            })
            .await
            .unwrap();
    }
    let started = writer
        .start_campaign(LifecycleRequest {
            id: claims.id.clone(),
            reason: "launch".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.status, "running");
    writer
        .start_campaign(LifecycleRequest {
            id: clean.id.clone(),
            reason: "launch".into(),
        })
        .await
        .unwrap();
    let transitions = writer
        .list_transitions(ListTransitionsRequest {
            campaign_id: claims.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .transitions;
    assert_eq!(transitions.len(), 1);
    assert_eq!(
        (transitions[0].from.as_str(), transitions[0].to.as_str()),
        ("draft", "running")
    );
    assert_eq!(transitions[0].reason, "launch");
}

/// Problems in a definition name the step and the field.
#[tokio::test]
async fn invalid_definitions_name_step_and_field() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut writer = app.writer().await;
    let definition = campaign_text("你好").replace(
        "[[steps]]",
        "[[steps]]\ntype = \"wait\"\nid = \"pause\"\nduration = \"soon\"\n\n[[steps]]",
    );
    let problems = writer
        .validate_definition(ValidateDefinitionRequest {
            definition: definition.clone(),
            format: Format::Toml as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .problems;
    assert!(!problems.is_empty());
    assert!(
        problems
            .iter()
            .any(|p| p.path.contains("pause") || p.path.contains("steps[0]")),
        "{problems:#?}"
    );
    let refused = writer
        .create_campaign(CreateCampaignRequest {
            definition,
            format: Format::Toml as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
}

/// Another tenant's token sees none of this tenant's campaigns or sends.
#[tokio::test]
async fn tenants_are_isolated_on_every_rpc() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let campaign = app.launch(&campaign_text("欢迎光临")).await;
    app.entered_segment("u1", "all").await;
    app.wait_sends("the send", 1, |_| true).await;
    let mut other = app.client_for("someone-else", Role::Admin).await;
    let err = other
        .get_campaign(GetCampaignRequest {
            id: campaign.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    for call in [
        other
            .pause_campaign(LifecycleRequest {
                id: campaign.id.clone(),
                reason: String::new(),
            })
            .await
            .map(|_| ()),
        other
            .review_campaign(ReviewCampaignRequest {
                id: campaign.id.clone(),
            })
            .await
            .map(|_| ()),
        other
            .list_transitions(ListTransitionsRequest {
                campaign_id: campaign.id.clone(),
            })
            .await
            .map(|_| ()),
    ] {
        assert_eq!(call.unwrap_err().code(), Code::NotFound);
    }
    let sends = other
        .list_sends(ListSendsRequest {
            campaign_id: campaign.id.clone(),
            ..ListSendsRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sends;
    assert!(sends.is_empty());
    let journeys = other
        .get_journey(GetJourneyRequest {
            campaign_id: campaign.id.clone(),
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .journeys;
    assert!(journeys.is_empty());
    assert!(
        other
            .list_campaigns(socialops_proto::campaign::v1::ListCampaignsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .campaigns
            .is_empty()
    );
}

/// An erasure request removes the user's journeys and sends.
#[tokio::test]
async fn erasure_removes_journeys_and_sends() {
    use prost::Message as _;
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let campaign = app.launch(&campaign_text("欢迎光临")).await;
    app.entered_segment("gone", "all").await;
    app.wait_sends("the send", 1, |_| true).await;
    let request = ErasureRequest {
        request_id: "e1".into(),
        tenant_id: app.tenant.clone(),
        user_id: "gone".into(),
        requested_at: Some(ts(app.now_us())),
    };
    app.producer
        .send_all(&[socialops_bus::OutgoingMessage::new(
            &app.topics.privacy,
            Some(format!("{}:gone", app.tenant)),
            request.encode_to_vec(),
        )])
        .await
        .unwrap();
    let mut reader = app.writer().await;
    socialops_testkit::eventually("the journey erased", || {
        let mut reader = reader.clone();
        let id = campaign.id.clone();
        async move {
            let journeys = reader
                .get_journey(GetJourneyRequest {
                    campaign_id: id,
                    user_id: "gone".into(),
                })
                .await
                .map_err(|e| e.to_string())?
                .into_inner()
                .journeys;
            if journeys.is_empty() {
                Ok(())
            } else {
                Err(format!("{journeys:?}"))
            }
        }
    })
    .await;
    let sends = reader
        .list_sends(ListSendsRequest {
            user_id: "gone".into(),
            ..ListSendsRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sends;
    assert!(sends.is_empty());
}

const LAUNCH: &str = r#"
name = "Spring launch"
channel = "push"
kind = "content"
entry = { type = "launch", segment_id = "vip" }

[[variants]]
id = "a"

[[steps]]
type = "send"
id = "hello"
text = "新品上市，会员先享。"
"#;

/// A launch to a segment of 30 members, entered eight per sweep step: each member gets one send,
/// and the queue is empty afterwards.
async fn launch_reaches_each_member_once(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| config.sweep_batch = 2).await else {
        return;
    };
    let members: Vec<String> = (0..30).map(|i| format!("member-{i:02}")).collect();
    for member in &members {
        app.entered_segment(member, "vip").await;
    }
    app.entered_segment("member-gone", "vip").await;
    app.profile_change(
        "member-gone",
        Change::SegmentLeft(SegmentLeft {
            segment_id: "vip".into(),
            segment_name: "vip".into(),
        }),
    )
    .await;
    app.settle().await;
    let campaign = app.launch(LAUNCH).await;
    app.wait_sends("a send per member", members.len(), |s| {
        s.campaign_id == campaign.id
    })
    .await;
    app.sweep().await;
    let sends: Vec<String> = app
        .published()
        .iter()
        .filter(|s| s.campaign_id == campaign.id)
        .map(user_of)
        .collect();
    let mut unique = sends.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, members, "each member once, and only members");
    assert_eq!(sends.len(), members.len(), "no member twice: {sends:?}");
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM launch_members")
        .fetch_one(app.running().engine.store().db().pool())
        .await
        .unwrap();
    assert_eq!(queued, 0, "the launch queue is worked through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_reaches_each_member_once_on_sqlite() {
    launch_reaches_each_member_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_reaches_each_member_once_on_postgres() {
    launch_reaches_each_member_once(Backend::Postgres).await;
}
