//! gRPC handlers. Each checks the caller's role and tenant (readers read, writers and admins change),
//! then hands over to the monitor or the store.

mod convert;
mod crises;
mod watchlists;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use socialops_auth::{Principal, Role, principal};
use socialops_proto::alerts::v1::CrisisAlert;
use socialops_proto::sentiment::v1::sentiment_service_server::SentimentService;
use socialops_proto::sentiment::v1::*;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::consume::AlertHub;
use crate::domain::reply::ReplySummary;
use crate::error::SentimentError;
use crate::monitor::Monitor;
use crate::store::{self, HOUR_US, mentions, replies};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;
/// The longest range one timeline call covers.
const MAX_TIMELINE_HOURS: i64 = 24 * 92;

pub struct SentimentApi {
    monitor: Arc<Monitor>,
    hub: AlertHub,
    max_score_texts: usize,
    max_text_chars: usize,
    /// Ends live streams when the service stops.
    shutdown: CancellationToken,
}

impl SentimentApi {
    pub fn new(
        monitor: Arc<Monitor>,
        hub: AlertHub,
        max_score_texts: usize,
        max_text_chars: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            monitor,
            hub,
            max_score_texts,
            max_text_chars,
            shutdown,
        }
    }
}

/// The caller, checked for `role`, and the tenant the request may act on.
fn caller<T>(
    request: &Request<T>,
    role: Role,
    tenant_id: &str,
) -> Result<(Principal, String), SentimentError> {
    let principal = principal(request)?.clone();
    principal.require(role)?;
    let tenant = principal.tenant(tenant_id)?.to_owned();
    Ok((principal, tenant))
}

type AlertStream = Pin<Box<dyn Stream<Item = Result<CrisisAlert, Status>> + Send>>;

#[tonic::async_trait]
impl SentimentService for SentimentApi {
    async fn score_texts(
        &self,
        request: Request<ScoreTextsRequest>,
    ) -> Result<Response<ScoreTextsResponse>, Status> {
        caller(&request, Role::Reader, "")?;
        let texts = request.into_inner().texts;
        if texts.len() > self.max_score_texts {
            return Err(SentimentError::InvalidArgument(format!(
                "texts: {} in one request, more than the limit of {}; split the batch",
                texts.len(),
                self.max_score_texts
            ))
            .into());
        }
        if let Some((index, text)) = texts
            .iter()
            .enumerate()
            .find(|(_, t)| t.chars().count() > self.max_text_chars)
        {
            return Err(SentimentError::InvalidArgument(format!(
                "texts[{index}]: {} characters, more than the limit of {}",
                text.chars().count(),
                self.max_text_chars
            ))
            .into());
        }
        let scorer = self.monitor.scorer().clone();
        let scores = tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .map(|t| convert::score(&scorer.score(t)))
                .collect()
        })
        .await
        .map_err(|e| SentimentError::Runtime(format!("scoring task: {e}")))?;
        Ok(Response::new(ScoreTextsResponse { scores }))
    }

    async fn create_watchlist(
        &self,
        request: Request<CreateWatchlistRequest>,
    ) -> Result<Response<Watchlist>, Status> {
        let (_, tenant) = caller(&request, Role::Writer, &request.get_ref().tenant_id)?;
        Ok(Response::new(
            self.create(tenant, request.into_inner()).await?,
        ))
    }

    async fn get_watchlist(
        &self,
        request: Request<GetWatchlistRequest>,
    ) -> Result<Response<Watchlist>, Status> {
        let (_, tenant) = caller(&request, Role::Reader, &request.get_ref().tenant_id)?;
        Ok(Response::new(
            self.get(&tenant, &request.get_ref().watchlist_id).await?,
        ))
    }

    async fn list_watchlists(
        &self,
        request: Request<ListWatchlistsRequest>,
    ) -> Result<Response<ListWatchlistsResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader, &request.get_ref().tenant_id)?;
        Ok(Response::new(ListWatchlistsResponse {
            watchlists: self.list(&tenant).await?,
        }))
    }

    async fn update_watchlist(
        &self,
        request: Request<UpdateWatchlistRequest>,
    ) -> Result<Response<Watchlist>, Status> {
        let (_, tenant) = caller(&request, Role::Writer, &request.get_ref().tenant_id)?;
        Ok(Response::new(
            self.update(tenant, request.into_inner()).await?,
        ))
    }

    async fn delete_watchlist(
        &self,
        request: Request<DeleteWatchlistRequest>,
    ) -> Result<Response<DeleteWatchlistResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Writer, &request.get_ref().tenant_id)?;
        self.delete(&tenant, &request.get_ref().watchlist_id)
            .await?;
        Ok(Response::new(DeleteWatchlistResponse {}))
    }

    async fn list_crises(
        &self,
        request: Request<ListCrisesRequest>,
    ) -> Result<Response<ListCrisesResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader, &request.get_ref().tenant_id)?;
        Ok(Response::new(
            self.list_crises(&tenant, request.get_ref()).await?,
        ))
    }

    async fn get_crisis(
        &self,
        request: Request<GetCrisisRequest>,
    ) -> Result<Response<GetCrisisResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader, &request.get_ref().tenant_id)?;
        Ok(Response::new(
            self.get_crisis(&tenant, &request.get_ref().crisis_id)
                .await?,
        ))
    }

    async fn acknowledge(
        &self,
        request: Request<CrisisActionRequest>,
    ) -> Result<Response<Crisis>, Status> {
        Ok(Response::new(
            self.act(request, crate::domain::crisis::Action::Acknowledge)
                .await?,
        ))
    }

    async fn respond(
        &self,
        request: Request<CrisisActionRequest>,
    ) -> Result<Response<Crisis>, Status> {
        Ok(Response::new(
            self.act(request, crate::domain::crisis::Action::Respond)
                .await?,
        ))
    }

    async fn resolve(
        &self,
        request: Request<CrisisActionRequest>,
    ) -> Result<Response<Crisis>, Status> {
        Ok(Response::new(
            self.act(request, crate::domain::crisis::Action::Resolve)
                .await?,
        ))
    }

    async fn review(
        &self,
        request: Request<CrisisActionRequest>,
    ) -> Result<Response<Crisis>, Status> {
        Ok(Response::new(
            self.act(request, crate::domain::crisis::Action::Review)
                .await?,
        ))
    }

    type StreamAlertsStream = AlertStream;

    async fn stream_alerts(
        &self,
        request: Request<StreamAlertsRequest>,
    ) -> Result<Response<Self::StreamAlertsStream>, Status> {
        let (_, tenant) = caller(&request, Role::Reader, &request.get_ref().tenant_id)?;
        let mut receiver = self.hub.subscribe();
        // Wall-clock time, because it is compared with the broker's message timestamps.
        let subscribed_at_ms = socialops_storage::now_micros() / 1_000;
        let shutdown = self.shutdown.clone();
        let stream = async_stream::stream! {
            loop {
                let received = tokio::select! {
                    () = shutdown.cancelled() => break,
                    received = receiver.recv() => received,
                };
                match received {
                    Ok(published) => {
                        if published.alert.tenant_id == tenant
                            && published.published_at_ms >= subscribed_at_ms
                        {
                            yield Ok(published.alert.clone());
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        yield Err(Status::from(SentimentError::Lagged(missed)));
                        break;
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_unanswered(
        &self,
        request: Request<ListUnansweredRequest>,
    ) -> Result<Response<ListUnansweredResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader, &request.get_ref().tenant_id)?;
        let limit = convert::limit(request.get_ref().limit, DEFAULT_PAGE, MAX_PAGE);
        let now_us = self.monitor.now_us();
        let target_us = self.monitor.rules().tenant(&tenant).reply_target_us();
        let mut conn = self.monitor.store().conn().await?;
        let waiting =
            replies::unanswered(&mut conn, &tenant, now_us.saturating_sub(target_us), limit)
                .await?;
        Ok(Response::new(ListUnansweredResponse {
            messages: waiting
                .iter()
                .map(|m| convert::unanswered(m, now_us))
                .collect(),
            reply_target_seconds: u64::try_from(target_us / 1_000_000).unwrap_or(0),
        }))
    }

    async fn get_reply_stats(
        &self,
        request: Request<GetReplyStatsRequest>,
    ) -> Result<Response<GetReplyStatsResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader, &request.get_ref().tenant_id)?;
        let body = request.get_ref();
        let (from_us, to_us) =
            convert::range(body.from.as_ref(), body.to.as_ref(), i64::MIN, i64::MAX)?;
        let mut conn = self.monitor.store().conn().await?;
        let times = replies::reply_times(&mut conn, &tenant, from_us, to_us).await?;
        Ok(Response::new(GetReplyStatsResponse {
            platforms: times
                .into_iter()
                .map(|(platform, seconds)| {
                    let summary = ReplySummary::of(seconds);
                    PlatformReplyStats {
                        platform,
                        num_replies: summary.num_replies,
                        median_seconds: summary.median_seconds,
                        p90_seconds: summary.p90_seconds,
                    }
                })
                .collect(),
        }))
    }

    async fn get_sentiment_timeline(
        &self,
        request: Request<GetSentimentTimelineRequest>,
    ) -> Result<Response<GetSentimentTimelineResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader, &request.get_ref().tenant_id)?;
        let body = request.get_ref();
        let now_us = self.monitor.now_us();
        let (from_us, to_us) = convert::range(
            body.from.as_ref(),
            body.to.as_ref(),
            now_us - 24 * HOUR_US,
            now_us,
        )?;
        // Whole hours: the hour `from` falls in is included.
        let from_us = from_us.div_euclid(HOUR_US) * HOUR_US;
        if (to_us - from_us) / HOUR_US > MAX_TIMELINE_HOURS {
            return Err(SentimentError::InvalidArgument(format!(
                "from, to: at most {MAX_TIMELINE_HOURS} hours per call"
            ))
            .into());
        }
        let mut conn = self.monitor.store().conn().await?;
        let hours = if body.watchlist_id.is_empty() {
            store::timeline(&mut conn, &tenant, from_us, to_us).await?
        } else {
            mentions::watchlist_hours(&mut conn, &tenant, &body.watchlist_id, from_us, to_us)
                .await?
        };
        Ok(Response::new(GetSentimentTimelineResponse {
            hours: hours
                .iter()
                .map(|(start, counts)| convert::hour(*start, counts))
                .collect(),
        }))
    }
}
