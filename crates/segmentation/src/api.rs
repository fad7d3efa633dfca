//! gRPC handlers. Each checks the caller's role (reader for reads, writer for writes), takes the
//! tenant from the caller's token, then hands over to the store or the updater.

mod convert;
mod kpis;

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::Stream;
use socialops_auth::{Principal, Role, principal};
use socialops_proto::profiles::v1 as wire;
use socialops_proto::segmentation::v1 as api;
use socialops_proto::segmentation::v1::segmentation_service_server::SegmentationService;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::domain::{NeedTagRule, parse};
use crate::error::SegmentationError;
use crate::store::ProfileQuery;
use crate::store::audience;
use crate::store::profiles::{stage_from_code, tier_from_code};
use crate::store::segments::{self, SegmentRow};
use crate::store::tags::{self, TagRuleRow};
use crate::update::changes::{stage_from_wire, timestamp, wire_stage, wire_tier};
use crate::update::{Updater, identify_alias, user_alias};

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1_000;
const DEFAULT_SAMPLE: u32 = 10;
const MAX_SAMPLE: u32 = 100;
/// How long a call that creates a segment or changes its rule waits for the membership rebuild when
/// the caller set no deadline.
const DEFAULT_REBUILD_WAIT: Duration = Duration::from_secs(30);

pub struct SegmentationApi {
    pub(crate) updater: Arc<Updater>,
}

fn caller<T>(request: &Request<T>, role: Role) -> Result<Principal, SegmentationError> {
    let caller = principal(request)?;
    caller.require(role)?;
    Ok(caller.clone())
}

fn page_size(requested: u32) -> usize {
    let size = match requested {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    size as usize
}

/// Page tokens are the last profile id of the page, opaque to clients.
fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

fn decode_token(token: &str) -> Result<Option<String>, SegmentationError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid =
        || SegmentationError::InvalidArgument("page_token: not a token this service issued".into());
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    String::from_utf8(bytes).map(Some).map_err(|_| invalid())
}

/// The caller's deadline from `grpc-timeout` (digits and a unit, as the gRPC over HTTP/2 protocol
/// defines it), if it sent one.
fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match &value[digits.len()..] {
        "H" => Duration::from_secs(n * 3_600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Until when a call that creates a segment or changes its rule waits for the rebuild: shortly before
/// the caller's deadline, so that the answer still reaches it, or [`DEFAULT_REBUILD_WAIT`] without
/// one.
fn rebuild_deadline(metadata: &MetadataMap) -> Instant {
    let now = Instant::now();
    let wait = match grpc_timeout(metadata) {
        Some(timeout) => timeout.saturating_sub((timeout / 5).max(Duration::from_millis(100))),
        None => DEFAULT_REBUILD_WAIT,
    };
    now.checked_add(wait)
        .unwrap_or_else(|| now + DEFAULT_REBUILD_WAIT)
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, SegmentationError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(SegmentationError::InvalidArgument(format!(
            "{field}: required"
        )));
    }
    Ok(value)
}

impl SegmentationApi {
    pub fn new(updater: Arc<Updater>) -> Self {
        Self { updater }
    }

    async fn segment_ids_of(
        &self,
        tenant_id: &str,
        profile_id: &str,
    ) -> Result<BTreeSet<String>, SegmentationError> {
        let mut conn = self.updater.store().conn().await?;
        Ok(
            segments::memberships(&mut conn, tenant_id, &[profile_id.to_owned()])
                .await?
                .remove(profile_id)
                .unwrap_or_default(),
        )
    }

    async fn get_segment_row(
        &self,
        tenant_id: &str,
        segment_id: &str,
    ) -> Result<SegmentRow, SegmentationError> {
        let mut conn = self.updater.store().conn().await?;
        segments::get_segment(&mut conn, tenant_id, segment_id)
            .await?
            .ok_or_else(|| SegmentationError::NotFound(format!("segment `{segment_id}` not found")))
    }

    /// The segment once its rebuild is finished, or as it stands at `deadline`, marked as still
    /// rebuilding. The rebuild goes on without the call either way.
    async fn after_rebuild(
        &self,
        tenant_id: &str,
        segment_id: &str,
        deadline: Instant,
    ) -> Result<api::Segment, SegmentationError> {
        let rebuilt = self
            .updater
            .wait_rebuilt(tenant_id, segment_id, deadline)
            .await?;
        let row = self.get_segment_row(tenant_id, segment_id).await?;
        Ok(convert::segment(&row, !rebuilt))
    }

    async fn get_profile_inner(
        &self,
        tenant_id: &str,
        request: api::GetProfileRequest,
    ) -> Result<api::Profile, SegmentationError> {
        let alias = match request.key {
            Some(api::get_profile_request::Key::UserId(user_id)) => {
                user_alias(required("user_id", &user_id)?)
            }
            Some(api::get_profile_request::Key::Alias(alias)) => identify_alias(&alias)
                .ok_or_else(|| {
                    SegmentationError::InvalidArgument(
                        "alias: needs a kind and a value_hash".into(),
                    )
                })?,
            None => {
                return Err(SegmentationError::InvalidArgument(
                    "key: give a user_id or an alias".into(),
                ));
            }
        };
        let stored = self
            .updater
            .store()
            .profile_by_alias(tenant_id, &alias)
            .await?
            .ok_or_else(|| SegmentationError::NotFound("profile not found".into()))?;
        let segment_ids = self
            .segment_ids_of(tenant_id, &stored.state.profile.user_id)
            .await?;
        Ok(convert::profile(&stored, segment_ids))
    }

    async fn preview(
        &self,
        tenant_id: &str,
        rule_text: &str,
        sample_size: u32,
    ) -> Result<api::PreviewSegmentResponse, SegmentationError> {
        let rule = parse(rule_text)?;
        let sample_size = match sample_size {
            0 => DEFAULT_SAMPLE,
            n => n.min(MAX_SAMPLE),
        };
        let preview = self
            .updater
            .store()
            .preview(
                tenant_id,
                &rule,
                self.updater.now_us(),
                sample_size as usize,
            )
            .await?;
        Ok(api::PreviewSegmentResponse {
            count: preview.count,
            evaluated: preview.evaluated,
            sample: preview
                .sample
                .iter()
                .map(|p| convert::profile(p, BTreeSet::new()))
                .collect(),
        })
    }
}

type MemberStream = Pin<Box<dyn Stream<Item = Result<api::ListMembersResponse, Status>> + Send>>;

#[tonic::async_trait]
impl SegmentationService for SegmentationApi {
    async fn get_profile(
        &self,
        request: Request<api::GetProfileRequest>,
    ) -> Result<Response<api::GetProfileResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let tenant_id = caller.tenant(&request.get_ref().tenant_id)?.to_owned();
        let profile = self
            .get_profile_inner(&tenant_id, request.into_inner())
            .await?;
        Ok(Response::new(api::GetProfileResponse {
            profile: Some(profile),
        }))
    }

    async fn list_profiles(
        &self,
        request: Request<api::ListProfilesRequest>,
    ) -> Result<Response<api::ListProfilesResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let body = request.into_inner();
        let tenant_id = caller.tenant(&body.tenant_id)?;
        let limit = page_size(body.page_size);
        let after = decode_token(&body.page_token)?;
        let stage = wire::Stage::try_from(body.stage)
            .ok()
            .and_then(stage_from_wire);
        let page = self
            .updater
            .store()
            .list_profiles(&ProfileQuery {
                tenant_id,
                after: after.as_deref(),
                stage,
                limit,
            })
            .await?;
        let next_page_token = match page.last() {
            Some(last) if page.len() == limit => encode_token(&last.state.profile.user_id),
            _ => String::new(),
        };
        Ok(Response::new(api::ListProfilesResponse {
            profiles: page
                .iter()
                .map(|p| convert::profile(p, BTreeSet::new()))
                .collect(),
            next_page_token,
        }))
    }

    async fn create_segment(
        &self,
        request: Request<api::CreateSegmentRequest>,
    ) -> Result<Response<api::Segment>, Status> {
        let deadline = rebuild_deadline(request.metadata());
        let caller = caller(&request, Role::Writer)?;
        let body = request.into_inner();
        let name = required("name", &body.name)?.to_owned();
        parse(&body.rule).map_err(SegmentationError::from)?;
        let now_us = self.updater.now_us();
        let row = SegmentRow {
            tenant_id: caller.tenant_id.clone(),
            segment_id: uuid::Uuid::now_v7().to_string(),
            name,
            description: body.description,
            rule: body.rule,
            size: 0,
            created_at_us: now_us,
            updated_at_us: now_us,
        };
        self.updater.create_segment(&row).await?;
        tracing::info!(tenant = %caller.tenant_id, segment = %row.segment_id, "segment created");
        let segment = self
            .after_rebuild(&caller.tenant_id, &row.segment_id, deadline)
            .await?;
        Ok(Response::new(segment))
    }

    async fn get_segment(
        &self,
        request: Request<api::GetSegmentRequest>,
    ) -> Result<Response<api::Segment>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let row = self
            .get_segment_row(&caller.tenant_id, &request.get_ref().segment_id)
            .await?;
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        let rebuilding =
            segments::is_rebuilding(&mut conn, &caller.tenant_id, &row.segment_id).await?;
        Ok(Response::new(convert::segment(&row, rebuilding)))
    }

    async fn list_segments(
        &self,
        request: Request<api::ListSegmentsRequest>,
    ) -> Result<Response<api::ListSegmentsResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        let rows = segments::list_segments(&mut conn, &caller.tenant_id).await?;
        let rebuilding = segments::rebuilding_segments(&mut conn, &caller.tenant_id).await?;
        Ok(Response::new(api::ListSegmentsResponse {
            segments: rows
                .iter()
                .map(|row| convert::segment(row, rebuilding.contains(&row.segment_id)))
                .collect(),
        }))
    }

    async fn update_segment(
        &self,
        request: Request<api::UpdateSegmentRequest>,
    ) -> Result<Response<api::Segment>, Status> {
        let deadline = rebuild_deadline(request.metadata());
        let caller = caller(&request, Role::Writer)?;
        let body = request.into_inner();
        let mut row = self
            .get_segment_row(&caller.tenant_id, &body.segment_id)
            .await?;
        if !body.name.trim().is_empty() {
            row.name = body.name.trim().to_owned();
        }
        row.description = body.description;
        let rule_changed = !body.rule.is_empty() && body.rule != row.rule;
        if rule_changed {
            parse(&body.rule).map_err(SegmentationError::from)?;
            row.rule = body.rule;
        }
        row.updated_at_us = self.updater.now_us();
        if !self.updater.update_segment(&row, rule_changed).await? {
            return Err(SegmentationError::NotFound(format!(
                "segment `{}` not found",
                row.segment_id
            ))
            .into());
        }
        // Without a rule change there is nothing new to wait for; an earlier change may still be
        // rebuilding.
        let deadline = if rule_changed {
            deadline
        } else {
            Instant::now()
        };
        let segment = self
            .after_rebuild(&caller.tenant_id, &row.segment_id, deadline)
            .await?;
        Ok(Response::new(segment))
    }

    async fn delete_segment(
        &self,
        request: Request<api::DeleteSegmentRequest>,
    ) -> Result<Response<api::DeleteSegmentResponse>, Status> {
        let caller = caller(&request, Role::Writer)?;
        let segment_id = &request.get_ref().segment_id;
        if !self
            .updater
            .delete_segment(&caller.tenant_id, segment_id)
            .await?
        {
            return Err(
                SegmentationError::NotFound(format!("segment `{segment_id}` not found")).into(),
            );
        }
        Ok(Response::new(api::DeleteSegmentResponse {}))
    }

    async fn preview_segment(
        &self,
        request: Request<api::PreviewSegmentRequest>,
    ) -> Result<Response<api::PreviewSegmentResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let body = request.get_ref();
        let response = self
            .preview(&caller.tenant_id, &body.rule, body.sample_size)
            .await?;
        Ok(Response::new(response))
    }

    type ListMembersStream = MemberStream;

    async fn list_members(
        &self,
        request: Request<api::ListMembersRequest>,
    ) -> Result<Response<Self::ListMembersStream>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let body = request.into_inner();
        let tenant_id = caller.tenant_id.clone();
        self.get_segment_row(&tenant_id, &body.segment_id).await?;
        let limit = page_size(body.page_size);
        let mut after = decode_token(&body.page_token)?;
        let max_pages = body.max_pages;
        let store = self.updater.store().clone();
        let stream = async_stream::try_stream! {
            let mut pages = 0u32;
            loop {
                let page = {
                    let mut conn = store.conn().await?;
                    segments::list_members(&mut conn, &tenant_id, &body.segment_id, after.as_deref(), limit).await?
                };
                let full = page.len() == limit;
                after = page.last().map(|(id, _)| id.clone());
                let next_page_token = match (&after, full) {
                    (Some(last), true) => encode_token(last),
                    _ => String::new(),
                };
                let members = page
                    .into_iter()
                    .map(|(user_id, entered)| api::Member { user_id, entered_at: Some(timestamp(entered)) })
                    .collect();
                yield api::ListMembersResponse { members, next_page_token };
                pages += 1;
                if !full || (max_pages > 0 && pages >= max_pages) {
                    break;
                }
            }
        };
        let stream = futures::StreamExt::map(stream, |item: Result<_, SegmentationError>| {
            item.map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_segment_size_history(
        &self,
        request: Request<api::GetSegmentSizeHistoryRequest>,
    ) -> Result<Response<api::GetSegmentSizeHistoryResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let body = request.into_inner();
        self.get_segment_row(&caller.tenant_id, &body.segment_id)
            .await?;
        let from_us = convert::micros(body.from.as_ref()).unwrap_or(0);
        let to_us = convert::micros(body.to.as_ref()).unwrap_or(i64::MAX);
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        let points = segments::size_history(
            &mut conn,
            &caller.tenant_id,
            &body.segment_id,
            from_us,
            to_us,
        )
        .await?;
        Ok(Response::new(api::GetSegmentSizeHistoryResponse {
            points: points
                .into_iter()
                .map(|(at, size)| api::SizePoint {
                    at: Some(timestamp(at)),
                    size: size.max(0) as u64,
                })
                .collect(),
        }))
    }

    async fn get_rfm_distribution(
        &self,
        request: Request<api::GetRfmDistributionRequest>,
    ) -> Result<Response<api::GetRfmDistributionResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let tenant_id = &caller.tenant_id;
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        let counts = audience::rfm_counts(&mut conn, tenant_id).await?;
        let edges = audience::edges(&mut conn, tenant_id).await?;
        let mut response = api::GetRfmDistributionResponse {
            cells: counts
                .cells
                .into_iter()
                .map(|([r, f, m], n)| api::RfmCell {
                    score: Some(wire::RfmScore {
                        recency: r as u32,
                        frequency: f as u32,
                        monetary: m as u32,
                    }),
                    profiles: n as u64,
                })
                .collect(),
            tiers: counts
                .tiers
                .into_iter()
                .map(|(tier, n)| api::TierCount {
                    tier: wire_tier(tier_from_code(tier)) as i32,
                    profiles: n as u64,
                })
                .collect(),
            window_days: self.updater.tenant_rules(tenant_id).rfm.window_days,
            ..Default::default()
        };
        if let Some(stored) = edges {
            response.recency_days_edges = stored.edges.recency_days_edges().to_vec();
            response.frequency_edges = stored.edges.frequency_edges().to_vec();
            response.monetary_cents_edges = stored.edges.monetary_edges().to_vec();
            response.edges_computed_at = Some(timestamp(stored.computed_at_us));
        }
        Ok(Response::new(response))
    }

    async fn get_lifecycle_funnel(
        &self,
        request: Request<api::GetLifecycleFunnelRequest>,
    ) -> Result<Response<api::GetLifecycleFunnelResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let body = request.get_ref();
        let from_us = convert::micros(body.from.as_ref()).unwrap_or(0);
        let to_us = convert::micros(body.to.as_ref()).unwrap_or(i64::MAX);
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        let stages = audience::stage_counts(&mut conn, &caller.tenant_id).await?;
        let transitions =
            audience::transition_counts(&mut conn, &caller.tenant_id, from_us, to_us).await?;
        let stage_of = |code: i64| {
            if code == 0 {
                wire::Stage::Unspecified as i32
            } else {
                wire_stage(Some(stage_from_code(code))) as i32
            }
        };
        Ok(Response::new(api::GetLifecycleFunnelResponse {
            stages: crate::domain::Stage::ALL
                .into_iter()
                .map(|stage| api::StageCount {
                    stage: wire_stage(Some(stage)) as i32,
                    profiles: stages
                        .get(&crate::store::profiles::stage_code(stage))
                        .copied()
                        .unwrap_or(0) as u64,
                })
                .collect(),
            transitions: transitions
                .into_iter()
                .map(|((from, to), n)| api::TransitionCount {
                    from: stage_of(from),
                    to: stage_of(to),
                    transitions: n as u64,
                })
                .collect(),
        }))
    }

    async fn create_tag_rule(
        &self,
        request: Request<api::CreateTagRuleRequest>,
    ) -> Result<Response<api::TagRule>, Status> {
        let caller = caller(&request, Role::Writer)?;
        let body = request.into_inner();
        let rule = NeedTagRule::new(&body.pattern, &body.tag)
            .map_err(|e| SegmentationError::InvalidArgument(e.to_string()))?;
        let row = TagRuleRow {
            rule_id: uuid::Uuid::now_v7().to_string(),
            pattern: rule.pattern().to_owned(),
            tag: rule.tag().to_owned(),
            created_at_us: self.updater.now_us(),
        };
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        tags::insert_tag_rule(&mut conn, &caller.tenant_id, &row).await?;
        Ok(Response::new(kpis::tag_rule(&row)))
    }

    async fn list_tag_rules(
        &self,
        request: Request<api::ListTagRulesRequest>,
    ) -> Result<Response<api::ListTagRulesResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        let rules = tags::tag_rules(&mut conn, &caller.tenant_id).await?;
        Ok(Response::new(api::ListTagRulesResponse {
            rules: rules.iter().map(kpis::tag_rule).collect(),
        }))
    }

    async fn delete_tag_rule(
        &self,
        request: Request<api::DeleteTagRuleRequest>,
    ) -> Result<Response<api::DeleteTagRuleResponse>, Status> {
        let caller = caller(&request, Role::Writer)?;
        let rule_id = &request.get_ref().rule_id;
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        if !tags::delete_tag_rule(&mut conn, &caller.tenant_id, rule_id).await? {
            return Err(
                SegmentationError::NotFound(format!("tag rule `{rule_id}` not found")).into(),
            );
        }
        Ok(Response::new(api::DeleteTagRuleResponse {}))
    }

    async fn get_audience_kpis(
        &self,
        request: Request<api::GetAudienceKpisRequest>,
    ) -> Result<Response<api::GetAudienceKpisResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let response =
            kpis::audience_kpis(&self.updater, &caller.tenant_id, request.get_ref()).await?;
        Ok(Response::new(response))
    }

    async fn set_kpi_target(
        &self,
        request: Request<api::SetKpiTargetRequest>,
    ) -> Result<Response<api::KpiTarget>, Status> {
        let caller = caller(&request, Role::Writer)?;
        let target =
            kpis::set_target(&self.updater, &caller.tenant_id, request.into_inner()).await?;
        Ok(Response::new(target))
    }

    async fn list_kpi_targets(
        &self,
        request: Request<api::ListKpiTargetsRequest>,
    ) -> Result<Response<api::ListKpiTargetsResponse>, Status> {
        let caller = caller(&request, Role::Reader)?;
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        let targets = audience::targets(&mut conn, &caller.tenant_id).await?;
        Ok(Response::new(api::ListKpiTargetsResponse {
            targets: targets.iter().map(kpis::target).collect(),
        }))
    }

    async fn delete_kpi_target(
        &self,
        request: Request<api::DeleteKpiTargetRequest>,
    ) -> Result<Response<api::DeleteKpiTargetResponse>, Status> {
        let caller = caller(&request, Role::Writer)?;
        let target_id = &request.get_ref().target_id;
        let mut conn = self.updater.store().conn().await.map_err(Status::from)?;
        if !audience::delete_target(&mut conn, &caller.tenant_id, target_id).await? {
            return Err(
                SegmentationError::NotFound(format!("KPI target `{target_id}` not found")).into(),
            );
        }
        Ok(Response::new(api::DeleteKpiTargetResponse {}))
    }
}
