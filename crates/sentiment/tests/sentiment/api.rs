//! The gRPC API on its own: scoring, watchlist CRUD and matching, roles, tenant scoping.

use socialops_auth::Role;
use socialops_proto::sentiment::v1::{
    CreateWatchlistRequest, DeleteWatchlistRequest, GetSentimentTimelineRequest,
    GetWatchlistRequest, Label, ListWatchlistsRequest, ScoreTextsRequest, UpdateWatchlistRequest,
};
use tonic::Code;

use crate::support::{Backend, HOUR_US, NEGATIVE, POSITIVE, comment, spawn_app, ts};

async fn api_scores_manages_watchlists_and_scopes_tenants(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let mut reader = app.reader().await;
    let mut writer = app.writer().await;

    let scores = reader
        .score_texts(ScoreTextsRequest {
            texts: vec![NEGATIVE[0].into(), POSITIVE[0].into(), "".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .scores;
    let labels: Vec<i32> = scores.iter().map(|s| s.label).collect();
    assert_eq!(
        labels,
        [
            Label::Negative as i32,
            Label::Positive as i32,
            Label::Neutral as i32
        ]
    );
    assert!(scores[0].polarity < 0.0 && scores[1].polarity > 0.0);
    let status = reader
        .score_texts(ScoreTextsRequest {
            texts: vec!["好".into(); 1_001],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("1001"), "{}", status.message());

    let request = CreateWatchlistRequest {
        tenant_id: String::new(),
        name: "修护系列".into(),
        brands: vec!["花知晓".into()],
        products: vec!["修護面霜".into(), " ".into()],
        risk_words: vec!["质量问题".into()],
    };
    let status = reader.create_watchlist(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let created = writer
        .create_watchlist(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.products, ["修護面霜"], "blank terms are dropped");
    assert_eq!(created.tenant_id, t);
    let status = writer.create_watchlist(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let status = writer
        .create_watchlist(CreateWatchlistRequest {
            name: "空".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // A simplified, half-width mention of the traditional term is a mention.
    app.publish_and_wait(
        &t,
        &[comment(
            &t,
            "e-1",
            "u-1",
            "修护面霜质量问题好多",
            app.clock_now(),
            5,
        )],
    )
    .await;
    let hours = |watchlist_id: String| GetSentimentTimelineRequest {
        tenant_id: String::new(),
        from: Some(ts(app.clock_now() - HOUR_US)),
        to: Some(ts(app.clock_now() + HOUR_US)),
        watchlist_id,
    };
    let counted = reader
        .get_sentiment_timeline(hours(created.watchlist_id.clone()))
        .await
        .unwrap()
        .into_inner()
        .hours;
    let total: u64 = counted
        .iter()
        .map(|h| h.negative + h.neutral + h.positive)
        .sum();
    assert_eq!(total, 1);

    let updated = writer
        .update_watchlist(UpdateWatchlistRequest {
            tenant_id: String::new(),
            watchlist_id: created.watchlist_id.clone(),
            name: "修护系列".into(),
            brands: vec![],
            products: vec!["ＣＩＣＡ".into()],
            risk_words: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(updated.updated_at.unwrap().seconds >= created.updated_at.unwrap().seconds);
    app.publish_and_wait(
        &t,
        &[
            comment(&t, "e-2", "u-2", "cica面霜用着不错", app.clock_now(), 5),
            comment(&t, "e-3", "u-3", "修护面霜还行", app.clock_now(), 5),
        ],
    )
    .await;
    let counted = reader
        .get_sentiment_timeline(hours(created.watchlist_id.clone()))
        .await
        .unwrap()
        .into_inner()
        .hours;
    let total: u64 = counted
        .iter()
        .map(|h| h.negative + h.neutral + h.positive)
        .sum();
    assert_eq!(
        total, 2,
        "the new term matches, the dropped one no longer does"
    );
    let everything = reader
        .get_sentiment_timeline(hours(String::new()))
        .await
        .unwrap()
        .into_inner()
        .hours;
    let scored: u64 = everything
        .iter()
        .map(|h| h.negative + h.neutral + h.positive)
        .sum();
    assert_eq!(scored, 3, "every user text is scored, matched or not");

    // Another tenant sees none of it and cannot reach into it.
    let other = format!("{t}-other");
    let mut outsider = app.client_for(&other, Role::Admin).await;
    assert!(
        outsider
            .list_watchlists(ListWatchlistsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .watchlists
            .is_empty()
    );
    let status = outsider
        .get_watchlist(GetWatchlistRequest {
            tenant_id: String::new(),
            watchlist_id: created.watchlist_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = outsider
        .delete_watchlist(DeleteWatchlistRequest {
            tenant_id: t.clone(),
            watchlist_id: created.watchlist_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    writer
        .delete_watchlist(DeleteWatchlistRequest {
            tenant_id: String::new(),
            watchlist_id: created.watchlist_id.clone(),
        })
        .await
        .unwrap();
    let status = reader
        .get_watchlist(GetWatchlistRequest {
            tenant_id: String::new(),
            watchlist_id: created.watchlist_id,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_scores_manages_watchlists_and_scopes_tenants_on_sqlite() {
    api_scores_manages_watchlists_and_scopes_tenants(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_scores_manages_watchlists_and_scopes_tenants_on_postgres() {
    api_scores_manages_watchlists_and_scopes_tenants(Backend::Postgres).await;
}
