//! A user's story across the services: an operator sets up a tag rule, a segment over its tag and a
//! watchlist; the user follows the brand, praises the product (mentioning 敏感肌), orders, and
//! complains; every event goes in through ingestion's gRPC API, and each service shows its part.

use std::collections::HashMap;

use socialops_proto::events::v1::SocialEvent;
use socialops_proto::ingestion::v1::IngestEventsRequest;
use socialops_proto::profiles::v1::profile_change::Change;
use socialops_proto::profiles::v1::{Cause, Stage};
use socialops_proto::segmentation::v1::{CreateSegmentRequest, CreateTagRuleRequest};
use socialops_proto::sentiment::v1::{CreateWatchlistRequest, Label};

use crate::support::{Backend, Clients, Stack, ago, comment, eventually, follow, order, total};

pub const TENANT: &str = "acme";
pub const USER: &str = "xhs_u_5e21a08c";
pub const TAG: &str = "need:sensitive-skin";
pub const PRAISE: &str = "积雪草精华很好用，敏感肌也不泛红，会回购";
pub const COMPLAINT: &str = "积雪草精华用了三天就过敏，脸又红又痒，太差了";
pub const ORDER_CENTS: i64 = 29_900;

/// What the story left behind, for the scenarios that continue it.
pub struct Story {
    /// The tenant's one admin token, used for every call of the story on all three services.
    pub token: String,
    pub clients: Clients,
    pub segment_id: String,
    pub watchlist_id: String,
    /// Follow, praise, order, complaint, in that order.
    pub events: Vec<SocialEvent>,
}

impl Story {
    pub fn complaint(&self) -> &SocialEvent {
        &self.events[3]
    }

    pub fn event_ids(&self) -> Vec<String> {
        self.events.iter().map(|e| e.event_id.clone()).collect()
    }
}

/// The event counts a profile shows once it has folded in the whole story.
pub fn story_counts(comments: u64) -> HashMap<String, u64> {
    HashMap::from([
        ("follow".to_owned(), 1),
        ("comment".to_owned(), comments),
        ("order_placed".to_owned(), 1),
    ])
}

/// Plays the story for [`USER`] of [`TENANT`] and returns once segmentation has folded in all four
/// events and sentiment has scored both comments. The comments are three hours old, older than the
/// default two-hour reply target, so sentiment lists them as unanswered.
pub async fn play(stack: &Stack) -> Story {
    let token = stack.issue_token(TENANT, socialops_auth::Role::Admin);
    let clients = stack.clients(&token).await;
    clients
        .segmentation
        .clone()
        .create_tag_rule(CreateTagRuleRequest {
            pattern: "敏感肌".into(),
            tag: TAG.into(),
        })
        .await
        .unwrap();
    let segment = clients
        .segmentation
        .clone()
        .create_segment(CreateSegmentRequest {
            name: "敏感肌人群".into(),
            description: "users who told us about sensitive skin".into(),
            rule: format!(r#"has tag "{TAG}""#),
        })
        .await
        .unwrap()
        .into_inner();
    let watchlist = clients
        .sentiment
        .clone()
        .create_watchlist(CreateWatchlistRequest {
            name: "积雪草精华".into(),
            brands: vec!["花知晓".into()],
            products: vec!["积雪草精华".into(), "Cica精华".into()],
            risk_words: vec!["质量问题".into(), "过敏".into(), "退款".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let events = vec![
        follow(TENANT, "xhs-follow-1", USER, ago(240)),
        comment(TENANT, "xhs-cmt-1", USER, ago(210), PRAISE),
        order(TENANT, "wx-ord-1", USER, ago(195), ORDER_CENTS),
        comment(TENANT, "xhs-cmt-2", USER, ago(180), COMPLAINT),
    ];
    let ingested = clients
        .ingestion
        .clone()
        .ingest_events(IngestEventsRequest {
            events: events.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (ingested.accepted, ingested.duplicate, ingested.rejected),
        (4, 0, 0),
        "{ingested:#?}"
    );

    eventually("segmentation folds in the story", || async {
        match clients.profile(USER).await {
            Ok(p) if p.counts == story_counts(2) => Ok(()),
            other => Err(format!("{other:#?}")),
        }
    })
    .await;
    eventually("sentiment scores both comments", || async {
        let hours = clients.timeline("").await.map_err(|e| e.to_string())?;
        let (negative, neutral, positive) = total(&hours);
        match negative + neutral + positive {
            2 => Ok(()),
            _ => Err(format!("{hours:#?}")),
        }
    })
    .await;

    Story {
        token,
        clients,
        segment_id: segment.segment_id,
        watchlist_id: watchlist.watchlist_id,
        events,
    }
}

async fn a_users_story_shows_in_every_service(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let story = play(&stack).await;
    let clients = &story.clients;

    let mut stored: Vec<String> = clients
        .events_of(USER)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    stored.sort();
    let mut sent = story.event_ids();
    sent.sort();
    assert_eq!(stored, sent, "ingestion keeps the four events");

    let profile = clients.profile(USER).await.unwrap();
    assert_eq!(profile.orders_count, 1, "{profile:#?}");
    assert_eq!(profile.orders_total_cents, ORDER_CENTS);
    assert!(profile.following, "the follow is on the profile");
    assert!(
        profile.tags.iter().any(|t| t == TAG),
        "the 敏感肌 comment tagged the user: {:?}",
        profile.tags
    );
    assert_eq!(profile.stage(), Stage::New, "a first order three hours ago");
    assert_eq!(profile.segment_ids, std::slice::from_ref(&story.segment_id));
    assert_eq!(clients.members(&story.segment_id).await.unwrap(), [USER]);

    let entered = stack
        .profile_changes
        .wait_until("the segment entry on the profiles topic", |r| {
            matches!(&r.value.change,
                Some(Change::SegmentEntered(e)) if e.segment_id == story.segment_id)
        })
        .await;
    assert_eq!(entered.key.as_deref(), Some(&*format!("{TENANT}:{USER}")));
    assert_eq!(
        (
            entered.value.tenant_id.as_str(),
            entered.value.user_id.as_str()
        ),
        (TENANT, USER)
    );
    assert_eq!(entered.value.cause(), Cause::Event);
    // Segmentation folds a batch of events into a profile at once and names one of them.
    assert!(
        story.event_ids().contains(&entered.value.event_id),
        "an event of the story put the user in the segment: {entered:#?}"
    );
    let entries = stack
        .profile_changes
        .records()
        .into_iter()
        .filter(|r| matches!(r.value.change, Some(Change::SegmentEntered(_))))
        .count();
    assert_eq!(entries, 1, "one entry, published once");

    let waiting: Vec<(String, Label, String)> = clients
        .unanswered()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.user_id == USER)
        .map(|m| (m.event_id.clone(), m.label(), m.text))
        .collect();
    assert_eq!(
        waiting,
        [
            (
                story.complaint().event_id.clone(),
                Label::Negative,
                COMPLAINT.to_owned()
            ),
            (
                story.events[1].event_id.clone(),
                Label::Positive,
                PRAISE.to_owned()
            ),
        ],
        "the complaint waits for a reply, negative and so listed first"
    );
    let everything = total(&clients.timeline("").await.unwrap());
    assert_eq!(everything, (1, 0, 1), "(negative, neutral, positive)");
    let mentions = total(&clients.timeline(&story.watchlist_id).await.unwrap());
    assert_eq!(
        mentions,
        (1, 0, 1),
        "both comments name 积雪草精华 and count as the watchlist's mentions"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_story_shows_in_every_service_postgres() {
    a_users_story_shows_in_every_service(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_story_shows_in_every_service_sqlite() {
    a_users_story_shows_in_every_service(Backend::Sqlite).await;
}
