//! The referral API: programmes, invite codes, the ledger and flagged referrals.

use std::sync::Arc;

use socialops_auth::Role;
use socialops_proto::campaign::v1::referral_service_server::ReferralService;
use socialops_proto::campaign::v1::{
    CreateProgrammeRequest, FlaggedReferral, GetInviteCodeRequest, GetProgrammeRequest, InviteCode,
    LedgerEntry, ListFlaggedRequest, ListFlaggedResponse, ListLedgerRequest, ListLedgerResponse,
    ListProgrammesRequest, ListProgrammesResponse, Programme, ProgrammeStats,
};
use tonic::{Request, Response, Status};

use super::{caller, required, seconds_us};
use crate::domain::referral::ProgrammeSpec;
use crate::engine::Engine;
use crate::error::CampaignError;
use crate::referrals::ProgrammeView;

pub struct ReferralApi {
    engine: Arc<Engine>,
}

impl ReferralApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

fn wire_programme(view: ProgrammeView) -> Programme {
    let spec = view.spec;
    let seconds = |us: i64| u64::try_from(us / 1_000_000).unwrap_or(0);
    Programme {
        id: spec.programme_id,
        name: spec.name,
        reward_pool_id: spec.reward_pool_id,
        invitee_pool_id: spec.invitee_pool_id,
        reward_every: spec.reward_every,
        reversal_window_seconds: seconds(spec.reversal_window_us),
        burst_limit: spec.burst_limit,
        burst_window_seconds: seconds(spec.burst_window_us),
        stats: Some(ProgrammeStats {
            inviters: view.inviters,
            referrals: view.referrals,
            flagged: view.flagged,
            converted_invitees: view.converted,
            fission_rate: if view.inviters == 0 {
                0.0
            } else {
                view.converted as f64 / view.inviters as f64
            },
            rewards: view.rewards,
            reward_cost_cents: view.reward_cost_cents,
            reversals: view.reversals,
        }),
        created_at: Some(socialops_proto::timestamp(view.created_at_us)),
    }
}

#[tonic::async_trait]
impl ReferralService for ReferralApi {
    async fn create_programme(
        &self,
        request: Request<CreateProgrammeRequest>,
    ) -> Result<Response<Programme>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let wire = request
            .into_inner()
            .programme
            .ok_or_else(|| CampaignError::InvalidArgument("programme: required".into()))?;
        let spec = ProgrammeSpec {
            reversal_window_us: seconds_us(
                wire.reversal_window_seconds,
                "reversal_window_seconds",
            )?,
            burst_window_us: seconds_us(wire.burst_window_seconds, "burst_window_seconds")?,
            programme_id: wire.id,
            name: wire.name,
            reward_pool_id: wire.reward_pool_id,
            invitee_pool_id: wire.invitee_pool_id,
            reward_every: wire.reward_every,
            burst_limit: wire.burst_limit,
        };
        let view = self.engine.create_programme(&tenant, spec).await?;
        Ok(Response::new(wire_programme(view)))
    }

    async fn get_programme(
        &self,
        request: Request<GetProgrammeRequest>,
    ) -> Result<Response<Programme>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let id = required(&request.get_ref().programme_id, "programme_id")?;
        Ok(Response::new(wire_programme(
            self.engine.programme(&tenant, id).await?,
        )))
    }

    async fn list_programmes(
        &self,
        request: Request<ListProgrammesRequest>,
    ) -> Result<Response<ListProgrammesResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let programmes = self.engine.programmes(&tenant).await?;
        Ok(Response::new(ListProgrammesResponse {
            programmes: programmes.into_iter().map(wire_programme).collect(),
        }))
    }

    async fn get_invite_code(
        &self,
        request: Request<GetInviteCodeRequest>,
    ) -> Result<Response<InviteCode>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let body = request.get_ref();
        let programme_id = required(&body.programme_id, "programme_id")?;
        let user_id = required(&body.user_id, "user_id")?;
        let code = self
            .engine
            .invite_code(&tenant, programme_id, user_id)
            .await?;
        Ok(Response::new(InviteCode {
            code,
            programme_id: programme_id.to_owned(),
            user_id: user_id.to_owned(),
        }))
    }

    async fn list_ledger(
        &self,
        request: Request<ListLedgerRequest>,
    ) -> Result<Response<ListLedgerResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let body = request.get_ref();
        let programme_id = required(&body.programme_id, "programme_id")?;
        let user = (!body.user_id.is_empty()).then_some(body.user_id.as_str());
        let entries = self.engine.ledger(&tenant, programme_id, user).await?;
        Ok(Response::new(ListLedgerResponse {
            entries: entries
                .into_iter()
                .map(|e| LedgerEntry {
                    seq: u64::try_from(e.seq).unwrap_or(0),
                    programme_id: e.programme_id,
                    user_id: e.user_id,
                    kind: e.kind,
                    invitee_user_id: e.invitee_user_id,
                    order_id: e.order_id.unwrap_or_default(),
                    coupon_code: e.coupon_code.unwrap_or_default(),
                    reverses_seq: e
                        .reverses_seq
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                    at: Some(socialops_proto::timestamp(e.at_us)),
                })
                .collect(),
        }))
    }

    async fn list_flagged(
        &self,
        request: Request<ListFlaggedRequest>,
    ) -> Result<Response<ListFlaggedResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let programme_id = required(&request.get_ref().programme_id, "programme_id")?;
        let flagged = self.engine.flagged_referrals(&tenant, programme_id).await?;
        Ok(Response::new(ListFlaggedResponse {
            referrals: flagged
                .into_iter()
                .map(|r| FlaggedReferral {
                    programme_id: r.programme_id,
                    inviter_user_id: r.inviter_user_id,
                    invitee_user_id: r.invitee_user_id,
                    check: r.flag_check.unwrap_or_default(),
                    reason: r.reason.unwrap_or_default(),
                    at: Some(socialops_proto::timestamp(r.referred_at_us)),
                })
                .collect(),
        }))
    }
}
