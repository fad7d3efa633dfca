//! The read and management calls: profile listing, RFM distribution, tag rules, audience KPIs and
//! targets.

use socialops_proto::profiles::v1::Stage;
use socialops_proto::segmentation::v1::{
    CreateTagRuleRequest, DeleteKpiTargetRequest, DeleteTagRuleRequest, GetAudienceKpisRequest,
    GetRfmDistributionRequest, KpiMetric, ListKpiTargetsRequest, ListProfilesRequest,
    ListTagRulesRequest, Period, PreviewSegmentRequest, SetKpiTargetRequest,
};

use crate::support::{
    Backend, DAY_US, T0_US, comment, follow, impression, order, poll, spawn_app, ts,
};

async fn profiles_rfm_tags_and_kpis(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let mut client = app.client().await;

    let rule = client
        .create_tag_rule(CreateTagRuleRequest {
            pattern: "敏感肌".into(),
            tag: "need:sensitive-skin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let empty = client
        .create_tag_rule(CreateTagRuleRequest {
            pattern: "  ".into(),
            tag: "need:x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    // Five buyers of different value, one of whom also comments; three followers.
    let mut events = Vec::new();
    for i in 1..=5_i64 {
        events.push(order(
            &t,
            &format!("o{i}"),
            &format!("b{i}"),
            T0_US,
            i * 10_000,
        ));
    }
    events.push(comment(&t, "c1", "b1", T0_US, "我是敏感肌，用了不泛红"));
    for i in 1..=3 {
        events.push(follow(
            &t,
            &format!("f{i}"),
            &format!("fan{i}"),
            T0_US + 3_600_000_000,
        ));
    }
    for i in 1..=4 {
        events.push(impression(
            &t,
            &format!("i{i}"),
            "fan1",
            T0_US + 3_600_000_000,
        ));
    }
    app.send(&events).await;
    let tagged = app
        .wait_profile(&mut client, "b1", |p| p.counts.get("comment") == Some(&1))
        .await;
    assert_eq!(tagged.tags, ["need:sensitive-skin"]);
    assert_eq!(tagged.active_hours[0], 2, "T0 is midnight in Shanghai");
    for i in 2..=5 {
        app.wait_profile(&mut client, &format!("b{i}"), |_| true)
            .await;
    }
    app.wait_profile(&mut client, "fan1", |p| {
        p.counts.get("content_impression") == Some(&4)
    })
    .await;
    app.wait_profile(&mut client, "fan3", |p| p.following).await;
    let preview = client
        .preview_segment(PreviewSegmentRequest {
            rule: r#"has tag "need:sensitive-skin" and has platform wechat"#.into(),
            sample_size: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.count, 1);

    let rules = client
        .list_tag_rules(ListTagRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].tag, "need:sensitive-skin");
    client
        .delete_tag_rule(DeleteTagRuleRequest {
            rule_id: rule.rule_id.clone(),
        })
        .await
        .unwrap();
    let again = client
        .delete_tag_rule(DeleteTagRuleRequest {
            rule_id: rule.rule_id,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::NotFound);

    // Listing: every profile once across pages, in user id order, and by stage.
    let mut users = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_profiles(ListProfilesRequest {
                page_size: 3,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        users.extend(page.profiles.into_iter().map(|p| p.user_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        users,
        ["b1", "b2", "b3", "b4", "b5", "fan1", "fan2", "fan3"]
    );
    let new_buyers = client
        .list_profiles(ListProfilesRequest {
            stage: Stage::New as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .profiles;
    assert_eq!(new_buyers.len(), 5);

    // RFM edges are recomputed when due (every hour by default): move the clock past it.
    app.clock.set(T0_US + 2 * 3_600_000_000);
    let distribution = poll(
        || {
            let mut client = client.clone();
            async move {
                client
                    .get_rfm_distribution(GetRfmDistributionRequest {})
                    .await
                    .unwrap()
                    .into_inner()
            }
        },
        // The new edges are stored before the buyers are rescored against them, so wait for the
        // scores as well: five buyers, each in a cell of its own.
        |d| {
            d.edges_computed_at.as_ref() == Some(&ts(T0_US + 2 * 3_600_000_000))
                && d.cells.len() == 5
                && d.cells.iter().all(|c| c.profiles == 1)
        },
    )
    .await
    .expect("edges recomputed and every buyer scored");
    assert_eq!(
        distribution.monetary_cents_edges,
        [10_000, 20_000, 30_000, 40_000]
    );
    assert_eq!(distribution.window_days, 365);
    let monetary: Vec<u32> = {
        let mut m: Vec<u32> = distribution
            .cells
            .iter()
            .map(|c| c.score.as_ref().unwrap().monetary)
            .collect();
        m.sort_unstable();
        m
    };
    assert_eq!(monetary, [1, 2, 3, 4, 5]);
    let b5 = app
        .wait_profile(&mut client, "b5", |p| p.rfm.is_some())
        .await;
    assert_eq!(b5.rfm.unwrap().monetary, 5);

    // Audience KPIs for the first day, and a target's progress.
    app.clock.set(T0_US + DAY_US);
    let target = client
        .set_kpi_target(SetKpiTargetRequest {
            metric: KpiMetric::NewFollowers as i32,
            value: 10,
            start: Some(ts(T0_US)),
            end: Some(ts(T0_US + 10 * DAY_US)),
            name: "first ten fans".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let kpis = client
        .get_audience_kpis(GetAudienceKpisRequest {
            period: Period::Day as i32,
            from: Some(ts(T0_US)),
            to: Some(ts(T0_US + DAY_US)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kpis.periods.len(), 1);
    let day = &kpis.periods[0];
    assert_eq!(day.new_followers, 3);
    assert_eq!(day.impressions, 4);
    assert_eq!(
        day.interactions, 9,
        "five orders, a comment and three follows"
    );
    assert_eq!(day.active_users, 8);
    assert!((day.interaction_rate - 9.0 / 4.0).abs() < 1e-9);
    assert_eq!(kpis.cohorts.len(), 1);
    assert_eq!(kpis.cohorts[0].size, 8);
    assert_eq!(kpis.cohorts[0].retention[0], 1.0);
    let progress = &kpis.targets[0];
    assert_eq!(progress.achieved, 3);
    assert!((progress.progress - 0.3).abs() < 1e-9);
    assert!(progress.on_track, "{progress:?}");

    let targets = client
        .list_kpi_targets(ListKpiTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(targets, std::slice::from_ref(&target));
    client
        .delete_kpi_target(DeleteKpiTargetRequest {
            target_id: target.target_id,
        })
        .await
        .unwrap();
    let targets = client
        .list_kpi_targets(ListKpiTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert!(targets.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn profiles_rfm_tags_and_kpis_sqlite() {
    profiles_rfm_tags_and_kpis(Backend::Sqlite).await;
}

#[tokio::test]
async fn profiles_rfm_tags_and_kpis_postgres() {
    profiles_rfm_tags_and_kpis(Backend::Postgres).await;
}
