//! gRPC handlers. Each checks the caller's role and tenant (readers read, writers change, admins
//! accept review findings), then hands over to the engine.

pub(crate) mod convert;
pub mod coupons;
pub mod referrals;

use std::sync::Arc;

use socialops_auth::{Principal, Role, principal};
use socialops_proto::campaign::v1::campaign_service_server::CampaignService;
use socialops_proto::campaign::v1::*;
use tonic::{Request, Response, Status};

use crate::domain::campaign::Status as CampaignStatus;
use crate::domain::definition::{Entry, Format as DefinitionFormat};
use crate::domain::faq::FaqEntry;
use crate::domain::tenant::{Severity, TenantSettings};
use crate::engine::Engine;
use crate::error::CampaignError;
use crate::manage::Change;
use crate::segments::SegmentMembers;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

pub struct CampaignApi {
    engine: Arc<Engine>,
    segments: Option<SegmentMembers>,
    max_definition_bytes: usize,
}

impl CampaignApi {
    pub fn new(
        engine: Arc<Engine>,
        segments: Option<SegmentMembers>,
        max_definition_bytes: usize,
    ) -> Self {
        Self {
            engine,
            segments,
            max_definition_bytes,
        }
    }

    fn definition(&self, document: &str, format: i32) -> Result<DefinitionFormat, CampaignError> {
        if document.len() > self.max_definition_bytes {
            return Err(CampaignError::InvalidArgument(format!(
                "definition: {} bytes, more than the limit of {}",
                document.len(),
                self.max_definition_bytes
            )));
        }
        match Format::try_from(format) {
            Ok(Format::Toml) => Ok(DefinitionFormat::Toml),
            Ok(Format::Json) => Ok(DefinitionFormat::Json),
            Ok(Format::Unspecified) | Err(_) => {
                // A document that opens with `{` is JSON, anything else TOML.
                Ok(if document.trim_start().starts_with('{') {
                    DefinitionFormat::Json
                } else {
                    DefinitionFormat::Toml
                })
            }
        }
    }

    async fn wire_campaign(
        &self,
        record: &crate::store::campaigns::CampaignRecord,
    ) -> Result<Campaign, CampaignError> {
        let open = self
            .engine
            .review_campaign(&record.tenant_id, &record.campaign_id)
            .await?
            .iter()
            .filter(|f| f.accepted.is_none())
            .count();
        Ok(convert::campaign(record, open as u64))
    }
}

/// The lifecycle changes that take a campaign id and a reason and nothing else.
#[derive(Debug, Clone, Copy)]
enum Lifecycle {
    Pause,
    Resume,
    Finish,
    Archive,
}

impl CampaignApi {
    async fn lifecycle(
        &self,
        request: Request<LifecycleRequest>,
        lifecycle: Lifecycle,
    ) -> Result<Response<Campaign>, Status> {
        let (principal, tenant) = caller(&request, Role::Writer)?;
        let body = request.into_inner();
        required(&body.id, "id")?;
        let change = Change {
            tenant_id: &tenant,
            campaign_id: &body.id,
            actor: &principal.token_id,
            reason: &body.reason,
        };
        let record = match lifecycle {
            Lifecycle::Pause => self.engine.pause(&change).await?,
            Lifecycle::Resume => self.engine.resume(&change).await?,
            Lifecycle::Finish => self.engine.finish(&change).await?,
            Lifecycle::Archive => self.engine.archive(&change).await?,
        };
        Ok(Response::new(self.wire_campaign(&record).await?))
    }
}

/// The caller, checked for `role`, and the caller's tenant.
pub(crate) fn caller<T>(
    request: &Request<T>,
    role: Role,
) -> Result<(Principal, String), CampaignError> {
    let principal = principal(request)?.clone();
    principal.require(role)?;
    let tenant = principal.tenant_id.clone();
    Ok((principal, tenant))
}

/// Seconds from the wire as microseconds, or why not.
pub(crate) fn seconds_us(seconds: u64, field: &str) -> Result<i64, CampaignError> {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000))
        .ok_or_else(|| CampaignError::InvalidArgument(format!("{field}: too large")))
}

pub(crate) fn required<'a>(value: &'a str, field: &str) -> Result<&'a str, CampaignError> {
    if value.trim().is_empty() {
        Err(CampaignError::InvalidArgument(format!("{field}: required")))
    } else {
        Ok(value)
    }
}

fn page_token(token: &str) -> Result<Option<(i64, String)>, CampaignError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || CampaignError::InvalidArgument("page_token: not a token from this service".into());
    let (at, key) = token.split_once('/').ok_or_else(bad)?;
    Ok(Some((at.parse().map_err(|_| bad())?, key.to_owned())))
}

#[tonic::async_trait]
impl CampaignService for CampaignApi {
    async fn create_campaign(
        &self,
        request: Request<CreateCampaignRequest>,
    ) -> Result<Response<Campaign>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let request = request.into_inner();
        let format = self.definition(&request.definition, request.format)?;
        let spec = self.engine.parse_definition(&request.definition, format)?;
        let id = uuid::Uuid::now_v7().to_string();
        let record = self.engine.create_campaign(&tenant, id, spec).await?;
        Ok(Response::new(self.wire_campaign(&record).await?))
    }

    async fn update_campaign(
        &self,
        request: Request<UpdateCampaignRequest>,
    ) -> Result<Response<Campaign>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let request = request.into_inner();
        required(&request.id, "id")?;
        let format = self.definition(&request.definition, request.format)?;
        let spec = self.engine.parse_definition(&request.definition, format)?;
        let record = self
            .engine
            .update_campaign(&tenant, &request.id, spec)
            .await?;
        Ok(Response::new(self.wire_campaign(&record).await?))
    }

    async fn get_campaign(
        &self,
        request: Request<GetCampaignRequest>,
    ) -> Result<Response<Campaign>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let id = required(&request.get_ref().id, "id")?;
        let record = self.engine.campaign(&tenant, id).await?;
        Ok(Response::new(self.wire_campaign(&record).await?))
    }

    async fn list_campaigns(
        &self,
        request: Request<ListCampaignsRequest>,
    ) -> Result<Response<ListCampaignsResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let status = match request.get_ref().status.as_str() {
            "" => None,
            name => Some(
                name.parse::<CampaignStatus>()
                    .map_err(|e| CampaignError::InvalidArgument(format!("status: {e}")))?,
            ),
        };
        let mut campaigns = Vec::new();
        for record in self.engine.campaigns(&tenant, status).await? {
            campaigns.push(self.wire_campaign(&record).await?);
        }
        Ok(Response::new(ListCampaignsResponse { campaigns }))
    }

    async fn validate_definition(
        &self,
        request: Request<ValidateDefinitionRequest>,
    ) -> Result<Response<ValidateDefinitionResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let request = request.into_inner();
        let format = self.definition(&request.definition, request.format)?;
        match self.engine.parse_definition(&request.definition, format) {
            Ok(spec) => {
                let findings = self.engine.review_spec(&tenant, &spec).await?;
                Ok(Response::new(ValidateDefinitionResponse {
                    problems: Vec::new(),
                    findings: findings.iter().map(convert::finding).collect(),
                }))
            }
            Err(CampaignError::Definition(error)) => {
                Ok(Response::new(ValidateDefinitionResponse {
                    problems: error
                        .problems
                        .iter()
                        .map(|p| Problem {
                            path: p.path.clone(),
                            message: p.message.clone(),
                        })
                        .collect(),
                    findings: Vec::new(),
                }))
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn review_campaign(
        &self,
        request: Request<ReviewCampaignRequest>,
    ) -> Result<Response<ReviewCampaignResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let id = required(&request.get_ref().id, "id")?;
        let findings = self.engine.review_campaign(&tenant, id).await?;
        Ok(Response::new(ReviewCampaignResponse {
            findings: findings.iter().map(convert::finding).collect(),
        }))
    }

    async fn accept_finding(
        &self,
        request: Request<AcceptFindingRequest>,
    ) -> Result<Response<ReviewCampaignResponse>, Status> {
        let (principal, tenant) = caller(&request, Role::Admin)?;
        let request = request.into_inner();
        required(&request.campaign_id, "campaign_id")?;
        required(&request.finding_id, "finding_id")?;
        let findings = self
            .engine
            .accept_finding(
                &tenant,
                &request.campaign_id,
                &request.finding_id,
                &principal.token_id,
                &request.reason,
            )
            .await?;
        Ok(Response::new(ReviewCampaignResponse {
            findings: findings.iter().map(convert::finding).collect(),
        }))
    }

    async fn start_campaign(
        &self,
        request: Request<LifecycleRequest>,
    ) -> Result<Response<Campaign>, Status> {
        let (principal, tenant) = caller(&request, Role::Writer)?;
        let bearer = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = request.into_inner();
        required(&body.id, "id")?;
        let campaign = self.engine.campaign(&tenant, &body.id).await?;
        // A launch reaches every member segmentation knows, asked with the caller's own token.
        let members = match (&campaign.spec.entry, &self.segments, bearer) {
            (Entry::Launch { segment_id }, Some(segments), Some(bearer))
                if campaign.status == CampaignStatus::Draft =>
            {
                segments.members(segment_id, &bearer).await?
            }
            _ => Vec::new(),
        };
        let change = Change {
            tenant_id: &tenant,
            campaign_id: &body.id,
            actor: &principal.token_id,
            reason: &body.reason,
        };
        let record = self.engine.start(&change, &members).await?;
        Ok(Response::new(self.wire_campaign(&record).await?))
    }

    async fn pause_campaign(
        &self,
        request: Request<LifecycleRequest>,
    ) -> Result<Response<Campaign>, Status> {
        self.lifecycle(request, Lifecycle::Pause).await
    }

    async fn resume_campaign(
        &self,
        request: Request<LifecycleRequest>,
    ) -> Result<Response<Campaign>, Status> {
        self.lifecycle(request, Lifecycle::Resume).await
    }

    async fn finish_campaign(
        &self,
        request: Request<LifecycleRequest>,
    ) -> Result<Response<Campaign>, Status> {
        self.lifecycle(request, Lifecycle::Finish).await
    }

    async fn archive_campaign(
        &self,
        request: Request<LifecycleRequest>,
    ) -> Result<Response<Campaign>, Status> {
        self.lifecycle(request, Lifecycle::Archive).await
    }

    async fn list_transitions(
        &self,
        request: Request<ListTransitionsRequest>,
    ) -> Result<Response<ListTransitionsResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let id = required(&request.get_ref().campaign_id, "campaign_id")?;
        self.engine.campaign(&tenant, id).await?;
        let mut conn = self
            .engine
            .store()
            .db()
            .pool()
            .acquire()
            .await
            .map_err(CampaignError::from)?;
        let transitions = crate::store::campaigns::transitions(&mut conn, &tenant, id)
            .await?
            .into_iter()
            .map(|t| Transition {
                from: t.from,
                to: t.to,
                actor: t.actor,
                reason: t.reason,
                at: Some(socialops_proto::timestamp(t.at_us)),
            })
            .collect();
        Ok(Response::new(ListTransitionsResponse { transitions }))
    }

    async fn put_faq(&self, request: Request<PutFaqRequest>) -> Result<Response<Faq>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let faq = request
            .into_inner()
            .faq
            .ok_or_else(|| CampaignError::InvalidArgument("faq: required".into()))?;
        let entry = FaqEntry {
            id: faq.id.clone(),
            patterns: faq.patterns.iter().map(|p| p.keywords.clone()).collect(),
            answer: faq.answer.clone(),
        };
        let updated_at_us = self.engine.put_faq(&tenant, &entry).await?;
        Ok(Response::new(Faq {
            updated_at: Some(socialops_proto::timestamp(updated_at_us)),
            ..faq
        }))
    }

    async fn list_faqs(
        &self,
        request: Request<ListFaqsRequest>,
    ) -> Result<Response<ListFaqsResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let faqs = self
            .engine
            .faqs(&tenant)
            .await?
            .into_iter()
            .map(|(entry, updated_at_us)| Faq {
                id: entry.id,
                patterns: entry
                    .patterns
                    .into_iter()
                    .map(|keywords| Pattern { keywords })
                    .collect(),
                answer: entry.answer,
                updated_at: Some(socialops_proto::timestamp(updated_at_us)),
            })
            .collect();
        Ok(Response::new(ListFaqsResponse { faqs }))
    }

    async fn delete_faq(
        &self,
        request: Request<DeleteFaqRequest>,
    ) -> Result<Response<DeleteFaqResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let id = required(&request.get_ref().id, "id")?;
        self.engine.delete_faq(&tenant, id).await?;
        Ok(Response::new(DeleteFaqResponse {}))
    }

    async fn get_settings(
        &self,
        request: Request<GetSettingsRequest>,
    ) -> Result<Response<Settings>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        Ok(Response::new(wire_settings(
            &self.engine.settings(&tenant).await?,
        )))
    }

    async fn set_settings(
        &self,
        request: Request<SetSettingsRequest>,
    ) -> Result<Response<Settings>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let wire = request
            .into_inner()
            .settings
            .ok_or_else(|| CampaignError::InvalidArgument("settings: required".into()))?;
        let settings = settings_of(&wire)?;
        self.engine.set_settings(&tenant, &settings).await?;
        Ok(Response::new(wire_settings(&settings)))
    }

    async fn list_sends(
        &self,
        request: Request<ListSendsRequest>,
    ) -> Result<Response<ListSendsResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let request = request.into_inner();
        if request.campaign_id.is_empty() && request.user_id.is_empty() {
            return Err(CampaignError::InvalidArgument(
                "campaign_id or user_id: at least one is required".into(),
            )
            .into());
        }
        let limit = match request.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let after = page_token(&request.page_token)?;
        let records = self
            .engine
            .list_sends(
                &tenant,
                Some(request.campaign_id.as_str()).filter(|s| !s.is_empty()),
                Some(request.user_id.as_str()).filter(|s| !s.is_empty()),
                after.as_ref().map(|(at, key)| (*at, key.as_str())),
                limit,
            )
            .await?;
        let next_page_token = match records.last() {
            Some(last) if records.len() == limit => {
                format!("{}/{}", last.created_at_us, last.send_key)
            }
            _ => String::new(),
        };
        Ok(Response::new(ListSendsResponse {
            sends: records.iter().map(convert::send).collect(),
            next_page_token,
        }))
    }

    async fn explain_delivery(
        &self,
        request: Request<ExplainDeliveryRequest>,
    ) -> Result<Response<ExplainDeliveryResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let request = request.into_inner();
        required(&request.campaign_id, "campaign_id")?;
        required(&request.user_id, "user_id")?;
        let (decisions, summary) = self
            .engine
            .explain(&tenant, &request.campaign_id, &request.user_id)
            .await?;
        Ok(Response::new(ExplainDeliveryResponse {
            decisions: decisions.iter().map(convert::decision).collect(),
            summary,
        }))
    }

    async fn get_journey(
        &self,
        request: Request<GetJourneyRequest>,
    ) -> Result<Response<GetJourneyResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let request = request.into_inner();
        required(&request.campaign_id, "campaign_id")?;
        required(&request.user_id, "user_id")?;
        let journeys = self
            .engine
            .journeys_of(&tenant, &request.campaign_id, &request.user_id)
            .await?;
        Ok(Response::new(GetJourneyResponse {
            journeys: journeys.iter().map(convert::journey).collect(),
        }))
    }

    async fn get_campaign_report(
        &self,
        request: Request<GetCampaignReportRequest>,
    ) -> Result<Response<CampaignReport>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let id = required(&request.get_ref().campaign_id, "campaign_id")?;
        Ok(Response::new(
            self.engine.campaign_report(&tenant, id).await?,
        ))
    }

    async fn get_tenant_report(
        &self,
        request: Request<GetTenantReportRequest>,
    ) -> Result<Response<TenantReport>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        Ok(Response::new(self.engine.tenant_report(&tenant).await?))
    }

    async fn get_campaign_counts(
        &self,
        request: Request<GetCampaignCountsRequest>,
    ) -> Result<Response<CampaignCounts>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let id = required(&request.get_ref().campaign_id, "campaign_id")?;
        self.engine.campaign(&tenant, id).await?;
        let counts = self.engine.counts(&tenant, id).await?;
        let goal = counts
            .journeys
            .exits
            .iter()
            .filter(|(reason, _)| reason == "goal")
            .map(|(_, n)| n)
            .sum();
        let other = counts
            .journeys
            .exits
            .iter()
            .filter(|(reason, _)| reason != "goal" && reason != "holdout")
            .map(|(_, n)| n)
            .sum();
        let rules = |list: &[(String, u64)]| {
            list.iter()
                .map(|(rule, n)| RuleCount {
                    rule: rule.clone(),
                    num_sends: *n,
                })
                .collect()
        };
        Ok(Response::new(CampaignCounts {
            num_entered: counts.journeys.num_entered,
            num_holdout: counts.journeys.num_holdout,
            steps: counts
                .journeys
                .steps
                .iter()
                .map(|(step_id, n)| StepCount {
                    step_id: step_id.clone(),
                    num_users: *n,
                })
                .collect(),
            num_sent: counts.num_sent,
            delayed: rules(&counts.delayed),
            dropped: rules(&counts.dropped),
            num_held: counts.num_held,
            num_exited_goal: goal,
            num_exited_other: other,
        }))
    }
}

fn wire_settings(settings: &TenantSettings) -> Settings {
    Settings {
        pressure_rules: serde_json::to_string(&settings.pressure).unwrap_or_default(),
        banned_words: settings.banned_words.clone(),
        pause_ads_at: settings.pause_ads_at.as_str().into(),
        pause_content_at: settings
            .pause_content_at
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "never".into()),
        faq_cooldown_seconds: settings.faq_cooldown.as_secs(),
        attribution_window_seconds: settings.attribution_window.as_secs(),
    }
}

fn settings_of(wire: &Settings) -> Result<TenantSettings, CampaignError> {
    let defaults = TenantSettings::default();
    let pressure = if wire.pressure_rules.trim().is_empty() {
        defaults.pressure.clone()
    } else {
        serde_json::from_str(&wire.pressure_rules)
            .map_err(|e| CampaignError::InvalidArgument(format!("pressure_rules: {e}")))?
    };
    let severity = |name: &str, field: &str| {
        Severity::parse(name).ok_or_else(|| {
            CampaignError::InvalidArgument(format!(
                "{field}: {name:?} is not low, medium, high or critical"
            ))
        })
    };
    Ok(TenantSettings {
        pressure,
        banned_words: wire.banned_words.clone(),
        pause_ads_at: match wire.pause_ads_at.as_str() {
            "" => defaults.pause_ads_at,
            name => severity(name, "pause_ads_at")?,
        },
        pause_content_at: match wire.pause_content_at.as_str() {
            "" => defaults.pause_content_at,
            "never" => None,
            name => Some(severity(name, "pause_content_at")?),
        },
        faq_cooldown: match wire.faq_cooldown_seconds {
            0 => defaults.faq_cooldown,
            n => std::time::Duration::from_secs(n),
        },
        attribution_window: match wire.attribution_window_seconds {
            0 => defaults.attribution_window,
            n => std::time::Duration::from_secs(n),
        },
    })
}
