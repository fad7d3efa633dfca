//! One token store behind all three services: a tenant's admin token works on each of them, and
//! another tenant's token sees nothing of that tenant on any of them, even for the same ids.

use socialops_auth::Role;
use socialops_proto::ingestion::v1::{IngestEventsRequest, ListEventsRequest};
use socialops_proto::segmentation::v1::{
    GetSegmentRequest, ListProfilesRequest, ListSegmentsRequest, ListTagRulesRequest,
};
use socialops_proto::sentiment::v1::{GetSentimentTimelineRequest, ListWatchlistsRequest};
use tonic::Code;

use crate::story::{TENANT, USER, play, story_counts};
use crate::support::{Backend, Clients, Stack, eventually, total};

const RIVAL: &str = "rival";

/// What `clients` can see of [`USER`] and of the story's setup, service by service.
async fn assert_sees_nothing_of_the_story(clients: &Clients, story: &crate::story::Story) {
    let mut ingestion = clients.ingestion.clone();
    for event_id in story.event_ids() {
        let status = clients.event(&event_id).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{event_id}: {status:?}");
    }
    let listed = ingestion
        .list_events(ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.events.is_empty(), "{listed:#?}");

    let mut segmentation = clients.segmentation.clone();
    assert_eq!(
        clients.profile(USER).await.unwrap_err().code(),
        Code::NotFound
    );
    let profiles = segmentation
        .list_profiles(ListProfilesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(profiles.profiles.is_empty(), "{profiles:#?}");
    let segments = segmentation
        .list_segments(ListSegmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(segments.segments.is_empty(), "{segments:#?}");
    let rules = segmentation
        .list_tag_rules(ListTagRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(rules.rules.is_empty(), "{rules:#?}");
    let segment = segmentation
        .get_segment(GetSegmentRequest {
            segment_id: story.segment_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(segment.code(), Code::NotFound, "{segment:?}");

    let mut sentiment = clients.sentiment.clone();
    let watchlists = sentiment
        .list_watchlists(ListWatchlistsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(watchlists.watchlists.is_empty(), "{watchlists:#?}");
    assert!(clients.unanswered().await.unwrap().is_empty());
    assert!(clients.timeline("").await.unwrap().is_empty());
    assert!(
        clients
            .timeline(&story.watchlist_id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn tenants_share_a_token_store_and_nothing_else(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let story = play(&stack).await;

    // The story made every call with one admin token; a new connection with the same token reads
    // the tenant's data on each service.
    let acme = stack.clients(&story.token).await;
    assert_eq!(acme.events_of(USER).await.unwrap().len(), 4);
    assert_eq!(acme.profile(USER).await.unwrap().orders_count, 1);
    assert_eq!(total(&acme.timeline("").await.unwrap()), (1, 0, 1));

    let rival = stack.clients(&stack.issue_token(RIVAL, Role::Admin)).await;
    assert_sees_nothing_of_the_story(&rival, &story).await;

    // Naming the other tenant is refused outright on every service.
    let mut refused = Vec::new();
    refused.push(
        rival
            .ingestion
            .clone()
            .list_events(ListEventsRequest {
                tenant_id: TENANT.into(),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
    );
    refused.push(
        rival
            .segmentation
            .clone()
            .list_profiles(ListProfilesRequest {
                tenant_id: TENANT.into(),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
    );
    refused.push(
        rival
            .sentiment
            .clone()
            .get_sentiment_timeline(GetSentimentTimelineRequest {
                tenant_id: TENANT.into(),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
    );
    assert_eq!(refused, [Code::PermissionDenied; 3]);

    // The same event ids and user id under the rival tenant are the rival's own events, not
    // duplicates of the story's; each tenant's view stays its own.
    let rivals_events: Vec<_> = story
        .events
        .iter()
        .map(|e| socialops_proto::events::v1::SocialEvent {
            tenant_id: RIVAL.into(),
            ..e.clone()
        })
        .collect();
    let ingested = rival
        .ingestion
        .clone()
        .ingest_events(IngestEventsRequest {
            events: rivals_events,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ingested.accepted, ingested.duplicate), (4, 0));
    eventually("the rival's own profile of the same user id", || async {
        match rival.profile(USER).await {
            Ok(p) if p.counts == story_counts(2) => Ok(()),
            other => Err(format!("{other:#?}")),
        }
    })
    .await;
    eventually("the rival's own scored comments", || async {
        let waiting = rival.unanswered().await.map_err(|e| e.to_string())?;
        match waiting.len() {
            2 => Ok(()),
            _ => Err(format!("{waiting:#?}")),
        }
    })
    .await;
    let rivals_profile = rival.profile(USER).await.unwrap();
    assert!(
        rivals_profile.tags.is_empty() && rivals_profile.segment_ids.is_empty(),
        "the story's tag rule and segment are acme's alone: {rivals_profile:#?}"
    );
    assert_eq!(acme.profile(USER).await.unwrap().counts, story_counts(2));
    assert_eq!(acme.events_of(USER).await.unwrap().len(), 4);
    assert_eq!(acme.unanswered().await.unwrap().len(), 2);

    let stranger = stack.clients("so_not-a-token-this-store-issued").await;
    let unknown = [
        stranger.events_of(USER).await.unwrap_err().code(),
        stranger.profile(USER).await.unwrap_err().code(),
        stranger.timeline("").await.unwrap_err().code(),
    ];
    assert_eq!(unknown, [Code::Unauthenticated; 3]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_share_a_token_store_and_nothing_else_postgres() {
    tenants_share_a_token_store_and_nothing_else(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_share_a_token_store_and_nothing_else_sqlite() {
    tenants_share_a_token_store_and_nothing_else(Backend::Sqlite).await;
}
