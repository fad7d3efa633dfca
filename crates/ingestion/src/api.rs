//! gRPC handlers. Each checks the caller's role and tenant, then hands over to the ingestor or the store.

use std::sync::Arc;

use futures::StreamExt;
use socialops_auth::{Role, principal};
use socialops_bus::{KafkaConfig, OutgoingMessage, Producer};
use socialops_proto::events::v1::SocialEvent;
use socialops_proto::ingestion::v1::ingestion_service_server::IngestionService;
use socialops_proto::ingestion::v1::{
    EraseUserRequest, EraseUserResponse, EventResult, GetEventRequest, GetEventResponse,
    IngestEventsRequest, IngestEventsResponse, ListEventsRequest, ListEventsResponse,
    Outcome as WireOutcome, ReplayDeadLettersRequest, ReplayDeadLettersResponse,
};
use socialops_proto::privacy::v1::ErasureRequest;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::{Outcome, scope_tenant, timestamp, user_key};
use crate::error::IngestionError;
use crate::ingest::{Candidate, Ingestor, Source};
use crate::store::{EventQuery, PageToken};

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1_000;
const DEFAULT_REPLAY: u32 = 1_000;
/// A stream reports at most this many duplicate or rejected events; the counts stay exact.
const MAX_STREAM_RESULTS: usize = 10_000;

pub struct IngestionApi {
    pub(crate) ingestor: Arc<Ingestor>,
    pub(crate) producer: Producer,
    pub(crate) kafka: KafkaConfig,
    pub(crate) topics: socialops_bus::Topics,
    pub(crate) consumer_group: String,
    pub(crate) max_batch_events: usize,
}

impl IngestionApi {
    /// Ingests one request's events for a caller scoped to `tenant`, numbering them from `first_index`.
    async fn ingest_batch(
        &self,
        tenant: &str,
        events: Vec<SocialEvent>,
        first_index: u64,
    ) -> Result<Vec<EventResult>, IngestionError> {
        if events.len() > self.max_batch_events {
            return Err(IngestionError::InvalidArgument(format!(
                "events: {} in one request, more than the limit of {}; split the batch",
                events.len(),
                self.max_batch_events
            )));
        }
        let event_ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
        let candidates: Vec<Candidate> = events
            .into_iter()
            .map(|mut event| {
                scope_tenant(&mut event, tenant)
                    .map(|()| event)
                    .map_err(|e| e.to_string())
            })
            .collect();
        let outcomes = self.ingestor.ingest(candidates, Source::Grpc).await?;
        Ok(outcomes
            .into_iter()
            .zip(event_ids)
            .enumerate()
            .map(|(i, (outcome, event_id))| result(first_index + i as u64, event_id, outcome))
            .collect())
    }
}

fn result(index: u64, event_id: String, outcome: Outcome) -> EventResult {
    let (outcome, reason) = match outcome {
        Outcome::Accepted => (WireOutcome::Accepted, String::new()),
        Outcome::Duplicate => (WireOutcome::Duplicate, String::new()),
        Outcome::Rejected(reason) => (WireOutcome::Rejected, reason),
    };
    EventResult {
        index,
        event_id,
        outcome: outcome as i32,
        reason,
    }
}

fn tally(response: &mut IngestEventsResponse, result: &EventResult) {
    match WireOutcome::try_from(result.outcome) {
        Ok(WireOutcome::Accepted) => response.accepted += 1,
        Ok(WireOutcome::Duplicate) => response.duplicate += 1,
        _ => response.rejected += 1,
    }
}

fn micros(at: Option<socialops_proto::Timestamp>) -> Option<i64> {
    at.map(|t| {
        t.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(t.nanos / 1_000))
    })
}

#[tonic::async_trait]
impl IngestionService for IngestionApi {
    async fn ingest_events(
        &self,
        request: Request<IngestEventsRequest>,
    ) -> Result<Response<IngestEventsResponse>, Status> {
        let caller = principal(&request)?.clone();
        caller.require(Role::Writer)?;
        let results = self
            .ingest_batch(&caller.tenant_id, request.into_inner().events, 0)
            .await?;
        let mut response = IngestEventsResponse::default();
        results.iter().for_each(|r| tally(&mut response, r));
        response.results = results;
        Ok(Response::new(response))
    }

    async fn ingest_event_stream(
        &self,
        request: Request<Streaming<IngestEventsRequest>>,
    ) -> Result<Response<IngestEventsResponse>, Status> {
        let caller = principal(&request)?.clone();
        caller.require(Role::Writer)?;
        let mut stream = request.into_inner();
        let mut response = IngestEventsResponse::default();
        let mut next_index = 0u64;
        while let Some(batch) = stream.next().await {
            let events = batch?.events;
            let num_events = events.len() as u64;
            for result in self
                .ingest_batch(&caller.tenant_id, events, next_index)
                .await?
            {
                tally(&mut response, &result);
                if result.outcome != WireOutcome::Accepted as i32
                    && response.results.len() < MAX_STREAM_RESULTS
                {
                    response.results.push(result);
                }
            }
            next_index += num_events;
        }
        Ok(Response::new(response))
    }

    async fn get_event(
        &self,
        request: Request<GetEventRequest>,
    ) -> Result<Response<GetEventResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Role::Reader)?;
        let request_body = request.get_ref();
        let tenant = caller.tenant(&request_body.tenant_id)?;
        let event = self
            .ingestor
            .store()
            .get(tenant, &request_body.event_id)
            .await?
            .ok_or_else(|| {
                IngestionError::NotFound(format!("event `{}` not found", request_body.event_id))
            })?;
        Ok(Response::new(GetEventResponse { event: Some(event) }))
    }

    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Role::Reader)?;
        let body = request.get_ref();
        let tenant = caller.tenant(&body.tenant_id)?;
        let page_size = match body.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = match body.page_token.as_str() {
            "" => None,
            token => Some(PageToken::decode(token)?),
        };
        let query = EventQuery {
            tenant_id: tenant.to_owned(),
            user_id: Some(body.user_id.clone()).filter(|u| !u.is_empty()),
            from_us: micros(body.from),
            to_us: micros(body.to),
            limit: page_size as usize,
            after,
        };
        let (events, next) = self.ingestor.store().list(&query).await?;
        Ok(Response::new(ListEventsResponse {
            events,
            next_page_token: next.map(|t| t.encode()).unwrap_or_default(),
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Role::Admin)?;
        let max = match request.get_ref().max_messages {
            0 => DEFAULT_REPLAY,
            n => n,
        };
        // One replay group per tenant: each tenant's admin moves only its own dead letters, and each
        // group remembers how far it has read.
        let group = format!("{}-replay-{}", self.consumer_group, caller.tenant_id);
        let replayed = socialops_bus::replay_dead_letters(
            &self.kafka,
            &self.producer,
            &self.topics.dlq,
            &self.topics.raw,
            Some(&caller.tenant_id),
            &group,
            max as usize,
        )
        .await
        .map_err(IngestionError::from)?;
        tracing::info!(tenant = %caller.tenant_id, replayed, "replayed dead letters");
        Ok(Response::new(ReplayDeadLettersResponse { replayed }))
    }

    async fn erase_user(
        &self,
        request: Request<EraseUserRequest>,
    ) -> Result<Response<EraseUserResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Role::Admin)?;
        let body = request.get_ref();
        let tenant = caller.tenant(&body.tenant_id)?;
        if body.user_id.is_empty() {
            return Err(IngestionError::InvalidArgument("user_id: required".into()).into());
        }
        let now = std::time::SystemTime::now();
        let erasure = ErasureRequest {
            request_id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.to_owned(),
            user_id: body.user_id.clone(),
            requested_at: Some(timestamp(now)),
        };
        let announce = OutgoingMessage::encode(
            &self.topics.privacy,
            Some(user_key(tenant, &body.user_id)),
            &erasure,
        );
        let erased = self
            .ingestor
            .store()
            .erase_user(
                tenant,
                &body.user_id,
                socialops_storage::now_micros(),
                announce,
            )
            .await?;
        self.ingestor.wake_relay();
        tracing::info!(tenant, erased, request_id = %erasure.request_id, "erased user");
        Ok(Response::new(EraseUserResponse {
            events_erased: erased,
            request_id: erasure.request_id,
        }))
    }
}
