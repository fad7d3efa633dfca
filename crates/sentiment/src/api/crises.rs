//! Crises: listing, one crisis with its timeline, and the lifecycle steps.

use socialops_auth::Role;
use socialops_proto::sentiment::v1 as wire;
use tonic::Request;

use super::{DEFAULT_PAGE, MAX_PAGE, SentimentApi, caller, convert};
use crate::domain::crisis::Action;
use crate::error::SentimentError;
use crate::monitor::{ActionRequest, act};
use crate::store::LabelCounts;
use crate::store::crises;
use crate::store::mentions;

/// The most mentions a crisis shows, widest reach first.
const TOP_MENTIONS: usize = 10;
/// The most windows a crisis timeline is cut into.
const MAX_WINDOWS: i64 = 96;
const MAX_NOTE_CHARS: usize = 2_000;
const MAX_ACTOR_CHARS: usize = 100;

impl SentimentApi {
    pub(super) async fn list_crises(
        &self,
        tenant_id: &str,
        request: &wire::ListCrisesRequest,
    ) -> Result<wire::ListCrisesResponse, SentimentError> {
        let limit = convert::limit(request.limit, DEFAULT_PAGE, MAX_PAGE);
        let watchlist = Some(request.watchlist_id.as_str()).filter(|w| !w.is_empty());
        let mut conn = self.monitor.store().conn().await?;
        let found = crises::list(&mut conn, tenant_id, request.open_only, watchlist, limit).await?;
        Ok(wire::ListCrisesResponse {
            crises: found.iter().map(|c| convert::crisis(c, &[])).collect(),
        })
    }

    pub(super) async fn get_crisis(
        &self,
        tenant_id: &str,
        crisis_id: &str,
    ) -> Result<wire::GetCrisisResponse, SentimentError> {
        let mut conn = self.monitor.store().conn().await?;
        let crisis = crises::get(&mut conn, tenant_id, crisis_id)
            .await?
            .ok_or_else(|| SentimentError::NotFound(format!("crisis `{crisis_id}` not found")))?;
        let steps = crises::steps(&mut conn, tenant_id, crisis_id).await?;
        let end_us = if crisis.state.is_open() {
            self.monitor.now_us()
        } else {
            crisis.updated_at_us
        };
        let window_us = convert::timeline_window_us(
            self.monitor.rules().spike.bucket_us,
            end_us - crisis.window_start_us,
            MAX_WINDOWS,
        );
        let windows = mentions::crisis_windows(&mut conn, tenant_id, crisis_id, window_us).await?;
        let mut split = LabelCounts::default();
        for (_, counts) in &windows {
            split.negative += counts.negative;
            split.neutral += counts.neutral;
            split.positive += counts.positive;
        }
        let top = mentions::top_mentions(&mut conn, tenant_id, crisis_id, TOP_MENTIONS).await?;
        Ok(wire::GetCrisisResponse {
            crisis: Some(convert::crisis(&crisis, &steps)),
            windows: windows
                .iter()
                .map(|(start, counts)| convert::window(*start, counts))
                .collect(),
            negative: split.negative,
            neutral: split.neutral,
            positive: split.positive,
            top_mentions: top.iter().map(convert::mention).collect(),
            window_seconds: u64::try_from(window_us / 1_000_000).unwrap_or(0),
        })
    }

    pub(super) async fn act(
        &self,
        request: Request<wire::CrisisActionRequest>,
        action: Action,
    ) -> Result<wire::Crisis, SentimentError> {
        let (principal, tenant_id) = caller(&request, Role::Writer, &request.get_ref().tenant_id)?;
        let body = request.into_inner();
        if body.crisis_id.is_empty() {
            return Err(SentimentError::InvalidArgument(
                "crisis_id: required".into(),
            ));
        }
        if body.note.chars().count() > MAX_NOTE_CHARS {
            return Err(SentimentError::InvalidArgument(format!(
                "note: longer than {MAX_NOTE_CHARS} characters"
            )));
        }
        let name = body.actor.trim();
        if name.chars().count() > MAX_ACTOR_CHARS {
            return Err(SentimentError::InvalidArgument(format!(
                "actor: longer than {MAX_ACTOR_CHARS} characters"
            )));
        }
        // The token is who acted as far as the service can tell; a name is what the team calls them.
        let actor = if name.is_empty() {
            principal.token_id.clone()
        } else {
            format!("{name} ({})", principal.token_id)
        };
        let crisis = act(
            &self.monitor,
            &ActionRequest {
                tenant_id: tenant_id.clone(),
                crisis_id: body.crisis_id.clone(),
                action,
                actor,
                note: body.note,
            },
        )
        .await?;
        let mut conn = self.monitor.store().conn().await?;
        let steps = crises::steps(&mut conn, &tenant_id, &crisis.crisis_id).await?;
        Ok(convert::crisis(&crisis, &steps))
    }
}
