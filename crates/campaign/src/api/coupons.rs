//! The coupon API: pools, issuing, redeeming and looking up codes.

use std::sync::Arc;

use socialops_auth::Role;
use socialops_proto::campaign::v1::coupon_service_server::CouponService;
use socialops_proto::campaign::v1::{
    Coupon, CouponEvent, CouponPool, CouponState, CreatePoolRequest, GetCouponRequest,
    GetPoolRequest, IssueCouponRequest, ListCouponsRequest, ListCouponsResponse, ListPoolsRequest,
    ListPoolsResponse, RedeemCouponRequest, Redemption,
};
use tonic::{Request, Response, Status};

use super::{caller, required, seconds_us};
use crate::coupons::{IssueRequest, Redeemer};
use crate::domain::coupon::{self, Pool, PoolSpec};
use crate::engine::Engine;
use crate::error::CampaignError;
use crate::store::coupons::CouponEvent as StoredEvent;

const MAX_CODE: usize = 128;

pub struct CouponApi {
    engine: Arc<Engine>,
    redeemer: Redeemer,
}

impl CouponApi {
    pub fn new(engine: Arc<Engine>, redeemer: Redeemer) -> Self {
        Self { engine, redeemer }
    }
}

fn spec_of(pool: CouponPool) -> Result<PoolSpec, CampaignError> {
    Ok(PoolSpec {
        valid_for_us: seconds_us(pool.valid_for_seconds, "valid_for_seconds")?,
        restore_window_us: seconds_us(pool.restore_window_seconds, "restore_window_seconds")?,
        ends_at_us: socialops_proto::micros_of(pool.ends_at.as_ref()),
        pool_id: pool.id,
        name: pool.name,
        code_prefix: pool.code_prefix,
        value_cents: pool.value_cents,
        currency: pool.currency,
        max_issued: pool.max_issued,
        value_budget_cents: pool.value_budget_cents,
        per_user_limit: pool.per_user_limit.max(1),
        min_order_cents: pool.min_order_cents,
    })
}

fn wire_pool(pool: Pool) -> CouponPool {
    let spec = pool.spec;
    let seconds = |us: i64| u64::try_from(us / 1_000_000).unwrap_or(0);
    CouponPool {
        id: spec.pool_id,
        name: spec.name,
        code_prefix: spec.code_prefix,
        value_cents: spec.value_cents,
        currency: spec.currency,
        max_issued: spec.max_issued,
        value_budget_cents: spec.value_budget_cents,
        per_user_limit: spec.per_user_limit,
        min_order_cents: spec.min_order_cents,
        valid_for_seconds: seconds(spec.valid_for_us),
        ends_at: spec.ends_at_us.map(socialops_proto::timestamp),
        restore_window_seconds: seconds(spec.restore_window_us),
        num_issued: pool.num_issued,
        num_redeemed: pool.num_redeemed,
        redeemed_value_cents: pool.redeemed_value_cents,
        created_at: Some(socialops_proto::timestamp(pool.created_at_us)),
    }
}

fn wire_coupon(coupon: coupon::Coupon, now_us: i64, history: Vec<StoredEvent>) -> Coupon {
    let state = match (&coupon.redemption, coupon.expires_at_us) {
        (Some(_), _) => CouponState::Redeemed,
        (None, Some(end)) if now_us >= end => CouponState::Expired,
        (None, _) => CouponState::Issued,
    };
    let redemption = coupon.redemption.as_ref();
    Coupon {
        state: state as i32,
        value_cents: coupon.value_cents,
        issued_at: Some(socialops_proto::timestamp(coupon.issued_at_us)),
        expires_at: coupon.expires_at_us.map(socialops_proto::timestamp),
        redeemed_at: redemption.map(|r| socialops_proto::timestamp(r.at_us)),
        order_id: redemption.map(|r| r.order_id.clone()).unwrap_or_default(),
        discount_cents: redemption.map_or(0, |r| r.discount_cents),
        history: history
            .into_iter()
            .map(|event| CouponEvent {
                kind: event.kind,
                order_id: event.order_id.unwrap_or_default(),
                amount_cents: event.amount_cents,
                reason: event.reason.unwrap_or_default(),
                at: Some(socialops_proto::timestamp(event.at_us)),
            })
            .collect(),
        code: coupon.code,
        pool_id: coupon.pool_id,
        user_id: coupon.user_id,
        currency: coupon.currency,
        campaign_id: coupon.campaign_id,
    }
}

/// A caller's id: at most 256 bytes, no control characters (no store holds a NUL).
fn id<'a>(value: &'a str, field: &str) -> Result<&'a str, CampaignError> {
    let value = required(value, field)?;
    if value.len() > 256 || value.chars().any(char::is_control) {
        return Err(CampaignError::InvalidArgument(format!(
            "{field}: at most 256 bytes, no control characters"
        )));
    }
    Ok(value)
}

fn id_if_given(value: &str, field: &str) -> Result<(), CampaignError> {
    if value.is_empty() {
        Ok(())
    } else {
        id(value, field).map(|_| ())
    }
}

fn code(value: &str) -> Result<&str, CampaignError> {
    let value = id(value, "code")?;
    if value.len() > MAX_CODE {
        return Err(CampaignError::InvalidArgument(format!(
            "code: longer than {MAX_CODE} bytes"
        )));
    }
    Ok(value)
}

#[tonic::async_trait]
impl CouponService for CouponApi {
    async fn create_pool(
        &self,
        request: Request<CreatePoolRequest>,
    ) -> Result<Response<CouponPool>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let pool = request
            .into_inner()
            .pool
            .ok_or_else(|| CampaignError::InvalidArgument("pool: required".into()))?;
        let pool = self.engine.create_pool(&tenant, &spec_of(pool)?).await?;
        Ok(Response::new(wire_pool(pool)))
    }

    async fn get_pool(
        &self,
        request: Request<GetPoolRequest>,
    ) -> Result<Response<CouponPool>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let pool_id = required(&request.get_ref().pool_id, "pool_id")?;
        Ok(Response::new(wire_pool(
            self.engine.pool(&tenant, pool_id).await?,
        )))
    }

    async fn list_pools(
        &self,
        request: Request<ListPoolsRequest>,
    ) -> Result<Response<ListPoolsResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let pools = self.engine.pools(&tenant).await?;
        Ok(Response::new(ListPoolsResponse {
            pools: pools.into_iter().map(wire_pool).collect(),
        }))
    }

    async fn issue_coupon(
        &self,
        request: Request<IssueCouponRequest>,
    ) -> Result<Response<Coupon>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let body = request.get_ref();
        let pool_id = required(&body.pool_id, "pool_id")?;
        let user_id = id(&body.user_id, "user_id")?;
        id_if_given(&body.request_id, "request_id")?;
        let request_id = if body.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            body.request_id.clone()
        };
        let now_us = self.engine.clock.now_us();
        let issued = self
            .engine
            .issue_coupon(&IssueRequest {
                tenant_id: &tenant,
                pool_id,
                user_id,
                issue_key: format!("api:{request_id}"),
                campaign_id: "",
                now_us,
            })
            .await?;
        Ok(Response::new(wire_coupon(
            issued.coupon,
            now_us,
            Vec::new(),
        )))
    }

    async fn redeem_coupon(
        &self,
        request: Request<RedeemCouponRequest>,
    ) -> Result<Response<Redemption>, Status> {
        let (_, tenant) = caller(&request, Role::Writer)?;
        let body = request.get_ref();
        let code = code(&body.code)?;
        let user_id = id(&body.user_id, "user_id")?;
        let order_id = id(&body.order_id, "order_id")?;
        if body.order_amount_cents <= 0 {
            return Err(CampaignError::InvalidArgument(
                "order_amount_cents: must be positive".into(),
            )
            .into());
        }
        let now_us = self.engine.clock.now_us();
        let redemption = self
            .redeemer
            .redeem(
                &tenant,
                code,
                user_id,
                order_id,
                body.order_amount_cents,
                now_us,
            )
            .await?;
        Ok(Response::new(Redemption {
            coupon: Some(wire_coupon(redemption.coupon, now_us, Vec::new())),
            discount_cents: redemption.discount_cents,
            replayed: redemption.replayed,
        }))
    }

    async fn get_coupon(
        &self,
        request: Request<GetCouponRequest>,
    ) -> Result<Response<Coupon>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let code = code(&request.get_ref().code)?;
        let (coupon, history) = self.engine.coupon(&tenant, code).await?;
        Ok(Response::new(wire_coupon(
            coupon,
            self.engine.clock.now_us(),
            history,
        )))
    }

    async fn list_coupons(
        &self,
        request: Request<ListCouponsRequest>,
    ) -> Result<Response<ListCouponsResponse>, Status> {
        let (_, tenant) = caller(&request, Role::Reader)?;
        let user_id = required(&request.get_ref().user_id, "user_id")?;
        let now_us = self.engine.clock.now_us();
        let coupons = self.engine.coupons_of(&tenant, user_id).await?;
        Ok(Response::new(ListCouponsResponse {
            coupons: coupons
                .into_iter()
                .map(|c| wire_coupon(c, now_us, Vec::new()))
                .collect(),
        }))
    }
}
