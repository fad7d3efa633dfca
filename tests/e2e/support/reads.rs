//! The reads an operator makes through each service's gRPC API, for the caller's own tenant.

use socialops_proto::events::v1::SocialEvent;
use socialops_proto::ingestion::v1::{GetEventRequest, ListEventsRequest};
use socialops_proto::segmentation::v1::{
    GetProfileRequest, ListMembersRequest, Profile, get_profile_request,
};
use socialops_proto::sentiment::v1::{
    GetSentimentTimelineRequest, HourCount, ListUnansweredRequest, UnansweredMessage,
};
use tonic::Status;

use super::Clients;

impl Clients {
    /// Ingestion: the stored event, by id.
    pub async fn event(&self, event_id: &str) -> Result<SocialEvent, Status> {
        let response = self
            .ingestion
            .clone()
            .get_event(GetEventRequest {
                event_id: event_id.into(),
                ..Default::default()
            })
            .await?;
        Ok(response.into_inner().event.unwrap_or_default())
    }

    /// Ingestion: every stored event of one user (a story is one page).
    pub async fn events_of(&self, user_id: &str) -> Result<Vec<SocialEvent>, Status> {
        let response = self
            .ingestion
            .clone()
            .list_events(ListEventsRequest {
                user_id: user_id.into(),
                page_size: 1_000,
                ..Default::default()
            })
            .await?
            .into_inner();
        assert!(
            response.next_page_token.is_empty(),
            "one page holds a story"
        );
        Ok(response.events)
    }

    /// Segmentation: the user's profile.
    pub async fn profile(&self, user_id: &str) -> Result<Profile, Status> {
        let response = self
            .segmentation
            .clone()
            .get_profile(GetProfileRequest {
                key: Some(get_profile_request::Key::UserId(user_id.into())),
                ..Default::default()
            })
            .await?;
        Ok(response.into_inner().profile.unwrap_or_default())
    }

    /// Segmentation: the user ids in a segment, every page.
    pub async fn members(&self, segment_id: &str) -> Result<Vec<String>, Status> {
        let mut pages = self
            .segmentation
            .clone()
            .list_members(ListMembersRequest {
                segment_id: segment_id.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut members = Vec::new();
        while let Some(page) = pages.message().await? {
            members.extend(page.members.into_iter().map(|m| m.user_id));
        }
        Ok(members)
    }

    /// Sentiment: scored texts per hour over the last 24 hours, of every text or of one watchlist's
    /// mentions.
    pub async fn timeline(&self, watchlist_id: &str) -> Result<Vec<HourCount>, Status> {
        let response = self
            .sentiment
            .clone()
            .get_sentiment_timeline(GetSentimentTimelineRequest {
                watchlist_id: watchlist_id.into(),
                ..Default::default()
            })
            .await?;
        Ok(response.into_inner().hours)
    }

    /// Sentiment: user comments and messages still waiting for a reply past the reply target.
    pub async fn unanswered(&self) -> Result<Vec<UnansweredMessage>, Status> {
        let response = self
            .sentiment
            .clone()
            .list_unanswered(ListUnansweredRequest {
                limit: 500,
                ..Default::default()
            })
            .await?;
        Ok(response.into_inner().messages)
    }
}
