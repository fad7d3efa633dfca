//! Coupons: pools created over gRPC; codes issued over gRPC or by a journey step's coupon action;
//! redeemed over gRPC, by `coupon_redeemed` events and by `order_placed` events that carry a code;
//! restored by a refund within the pool's window. Each change is recorded in the code's history and
//! announced on `socialops.campaigns.v1` through the outbox, in the transaction that makes it.

use std::collections::HashMap;

use socialops_bus::OutgoingMessage;
use socialops_proto::campaigns::v1 as wire;
use sqlx::AnyConnection;

use crate::domain::coupon::{self, Coupon, Pool, PoolSpec, RedeemRequest, Redeemed, Refusal};
use crate::engine::Engine;
use crate::error::CampaignError;
use crate::store::coupons::{self as store, CouponEvent};

/// Tries before giving up on finding an unused code (each collides with probability about
/// issued / 2^60).
const CODE_TRIES: usize = 4;

/// Who asked for a code and under which key: one code per pool and key.
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    pub tenant_id: &'a str,
    pub pool_id: &'a str,
    pub user_id: &'a str,
    /// A journey send's key, or `api:<request id>`.
    pub issue_key: String,
    /// The campaign whose step issues it; empty over the API.
    pub campaign_id: &'a str,
    pub now_us: i64,
}

/// A code as issued: `new` is false when the key had been used and the earlier code is returned.
#[derive(Debug, Clone)]
pub struct Issued {
    pub coupon: Coupon,
    pub new: bool,
}

/// A redemption as done: `replayed` when the code had been redeemed for this order before.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub coupon: Coupon,
    pub discount_cents: i64,
    pub replayed: bool,
}

/// The announcement of a code's redemption on `socialops.campaigns.v1`.
fn redeemed_outcome(coupon: &Coupon, redeemed: &Redeemed) -> wire::campaign_outcome::Outcome {
    wire::campaign_outcome::Outcome::CouponRedeemed(wire::CouponRedeemed {
        pool_id: coupon.pool_id.clone(),
        code: coupon.code.clone(),
        order_id: redeemed.order_id.clone(),
        discount_cents: redeemed.discount_cents,
        currency: coupon.currency.clone(),
        redeemed_at: Some(socialops_proto::timestamp(redeemed.at_us)),
        campaign_id: coupon.campaign_id.clone(),
    })
}

/// The refusal as the error a gRPC client sees.
pub fn refused(refusal: Refusal) -> CampaignError {
    match refusal {
        Refusal::UnknownPool(_) | Refusal::UnknownCode => {
            CampaignError::NotFound(refusal.to_string())
        }
        r if r.is_exhausted() => CampaignError::Exhausted(r.to_string()),
        r => CampaignError::Precondition(r.to_string()),
    }
}

impl Engine {
    pub async fn create_pool(
        &self,
        tenant_id: &str,
        spec: &PoolSpec,
    ) -> Result<Pool, CampaignError> {
        spec.validate().map_err(CampaignError::InvalidArgument)?;
        let mut tx = self.store.db().begin_write().await?;
        store::insert_pool(&mut tx, tenant_id, spec, self.clock.now_us()).await?;
        let pool = store::pool(&mut tx, tenant_id, &spec.pool_id, false)
            .await?
            .ok_or_else(|| CampaignError::Runtime("coupon pool lost on insert".into()))?;
        tx.commit().await?;
        Ok(pool)
    }

    pub async fn pool(&self, tenant_id: &str, pool_id: &str) -> Result<Pool, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        store::pool(&mut conn, tenant_id, pool_id, false)
            .await?
            .ok_or_else(|| refused(Refusal::UnknownPool(pool_id.to_owned())))
    }

    pub async fn pools(&self, tenant_id: &str) -> Result<Vec<Pool>, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        store::pools(&mut conn, tenant_id).await
    }

    /// The code with its history.
    pub async fn coupon(
        &self,
        tenant_id: &str,
        code: &str,
    ) -> Result<(Coupon, Vec<CouponEvent>), CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        let coupon = store::coupon(&mut conn, tenant_id, code, false)
            .await?
            .ok_or_else(|| refused(Refusal::UnknownCode))?;
        let history = store::history(&mut conn, tenant_id, code).await?;
        Ok((coupon, history))
    }

    pub async fn coupons_of(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Vec<Coupon>, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        store::of_user(&mut conn, tenant_id, user_id).await
    }

    /// Issues a code over the API, in its own transaction.
    pub async fn issue_coupon(&self, request: &IssueRequest<'_>) -> Result<Issued, CampaignError> {
        let mut tx = self.store.db().begin_write().await?;
        let mut outgoing = Vec::new();
        let issued = self
            .issue_in(&mut tx, request, &mut outgoing)
            .await?
            .map_err(refused)?;
        socialops_bus::Outbox::enqueue(&mut tx, &outgoing).await?;
        tx.commit().await?;
        self.wake_relay(&outgoing);
        Ok(issued)
    }

    fn wake_relay(&self, outgoing: &[OutgoingMessage]) {
        if !outgoing.is_empty() {
            self.outbox.notify_one();
        }
    }

    /// A message for `socialops.campaigns.v1` about one user.
    pub(crate) fn outcome(
        &self,
        tenant_id: &str,
        user_id: &str,
        outcome: wire::campaign_outcome::Outcome,
    ) -> OutgoingMessage {
        OutgoingMessage::encode(
            self.campaigns_topic.clone(),
            Some(format!("{tenant_id}:{user_id}")),
            &wire::CampaignOutcome {
                tenant_id: tenant_id.to_owned(),
                user_id: user_id.to_owned(),
                outcome: Some(outcome),
            },
        )
    }

    /// Issues a code inside the caller's transaction, locking the pool's row; the messages to
    /// publish are added to `outgoing`. A key used before returns its code and spends nothing.
    pub(crate) async fn issue_in(
        &self,
        conn: &mut AnyConnection,
        request: &IssueRequest<'_>,
        outgoing: &mut Vec<OutgoingMessage>,
    ) -> Result<Result<Issued, Refusal>, CampaignError> {
        let (tenant_id, pool_id) = (request.tenant_id, request.pool_id);
        let Some(pool) = store::pool(conn, tenant_id, pool_id, true).await? else {
            return Ok(Err(Refusal::UnknownPool(pool_id.to_owned())));
        };
        if let Some(coupon) =
            store::by_issue_key(conn, tenant_id, pool_id, &request.issue_key).await?
        {
            if coupon.user_id != request.user_id {
                return Err(CampaignError::AlreadyExists(format!(
                    "{} issued a code to another user",
                    request.issue_key
                )));
            }
            return Ok(Ok(Issued { coupon, new: false }));
        }
        let held = store::num_held(conn, tenant_id, pool_id, request.user_id).await?;
        if let Err(refusal) = coupon::check_issue(&pool, held, request.now_us) {
            return Ok(Err(refusal));
        }
        let spec = &pool.spec;
        for _ in 0..CODE_TRIES {
            let coupon = Coupon {
                code: coupon::new_code(&spec.code_prefix, &mut rand::rng()),
                pool_id: pool_id.to_owned(),
                user_id: request.user_id.to_owned(),
                issue_key: request.issue_key.clone(),
                campaign_id: request.campaign_id.to_owned(),
                value_cents: spec.value_cents,
                currency: spec.currency.clone(),
                issued_at_us: request.now_us,
                expires_at_us: spec.expiry(request.now_us),
                redemption: None,
            };
            if !store::insert_coupon(conn, tenant_id, &coupon).await? {
                continue;
            }
            store::add_to_pool(conn, tenant_id, pool_id, 1, 0, 0).await?;
            let event = CouponEvent {
                kind: "issued".into(),
                order_id: None,
                amount_cents: coupon.value_cents,
                reason: None,
                at_us: request.now_us,
            };
            store::record_event(conn, tenant_id, &coupon.code, &coupon.user_id, &event).await?;
            outgoing.push(self.outcome(
                tenant_id,
                &coupon.user_id,
                wire::campaign_outcome::Outcome::CouponIssued(wire::CouponIssued {
                    pool_id: pool_id.to_owned(),
                    code: coupon.code.clone(),
                    campaign_id: coupon.campaign_id.clone(),
                    send_key: if coupon.campaign_id.is_empty() {
                        String::new()
                    } else {
                        coupon.issue_key.clone()
                    },
                    value_cents: coupon.value_cents,
                    currency: coupon.currency.clone(),
                    issued_at: Some(socialops_proto::timestamp(coupon.issued_at_us)),
                    expires_at: coupon.expires_at_us.map(socialops_proto::timestamp),
                }),
            ));
            return Ok(Ok(Issued { coupon, new: true }));
        }
        Err(CampaignError::Runtime(format!(
            "no unused code after {CODE_TRIES} tries in pool {pool_id}"
        )))
    }

    /// Redeems a code inside the caller's transaction, locking the code's row and then its pool's.
    /// A refusal is recorded in the code's history (and returned); the messages to publish are
    /// added to `outgoing`.
    pub(crate) async fn redeem_in(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        code: &str,
        request: &RedeemRequest<'_>,
        outgoing: &mut Vec<OutgoingMessage>,
    ) -> Result<Result<Redemption, Refusal>, CampaignError> {
        let user_of_attempt = request.user_id.unwrap_or("");
        let refuse = |refusal: Refusal| CouponEvent {
            kind: "refused".into(),
            order_id: Some(request.order_id.to_owned()),
            amount_cents: request.order_amount_cents.unwrap_or(0),
            reason: Some(refusal.to_string()),
            at_us: request.at_us,
        };
        let Some(mut coupon) = store::coupon(conn, tenant_id, code, true).await? else {
            let refusal = Refusal::UnknownCode;
            store::record_event(
                conn,
                tenant_id,
                code,
                user_of_attempt,
                &refuse(refusal.clone()),
            )
            .await?;
            return Ok(Err(refusal));
        };
        let Some(pool) = store::pool(conn, tenant_id, &coupon.pool_id, true).await? else {
            return Err(CampaignError::Corrupt(format!(
                "coupon {code}: pool {} is gone",
                coupon.pool_id
            )));
        };
        let discount = match coupon::check_redeem(&coupon, &pool, request) {
            Ok(Some(discount)) => discount,
            Ok(None) => {
                let discount_cents = coupon.redemption.as_ref().map_or(0, |r| r.discount_cents);
                return Ok(Ok(Redemption {
                    coupon,
                    discount_cents,
                    replayed: true,
                }));
            }
            Err(refusal) => {
                let user = request.user_id.unwrap_or(&coupon.user_id);
                store::record_event(conn, tenant_id, code, user, &refuse(refusal.clone())).await?;
                return Ok(Err(refusal));
            }
        };
        let redeemed = Redeemed {
            at_us: request.at_us,
            order_id: request.order_id.to_owned(),
            order_amount_cents: request.order_amount_cents,
            discount_cents: discount,
        };
        store::set_redemption(conn, tenant_id, code, Some(&redeemed)).await?;
        store::add_to_pool(conn, tenant_id, &coupon.pool_id, 0, 1, discount).await?;
        let event = CouponEvent {
            kind: "redeemed".into(),
            order_id: Some(redeemed.order_id.clone()),
            amount_cents: discount,
            reason: None,
            at_us: request.at_us,
        };
        store::record_event(conn, tenant_id, code, &coupon.user_id, &event).await?;
        outgoing.push(self.outcome(
            tenant_id,
            &coupon.user_id,
            redeemed_outcome(&coupon, &redeemed),
        ));
        coupon.redemption = Some(redeemed);
        Ok(Ok(Redemption {
            coupon,
            discount_cents: discount,
            replayed: false,
        }))
    }

    /// A refund of an order: each code redeemed for it is made usable again when its pool restores
    /// within its window and the refund is of the whole order.
    pub(crate) async fn restore_in(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        order_id: &str,
        refunded_cents: i64,
        at_us: i64,
        outgoing: &mut Vec<OutgoingMessage>,
    ) -> Result<u64, CampaignError> {
        let mut restored = 0;
        for coupon in store::redeemed_for_order(conn, tenant_id, order_id, true).await? {
            let Some(pool) = store::pool(conn, tenant_id, &coupon.pool_id, true).await? else {
                continue;
            };
            let Some(done) = coupon.redemption.as_ref() else {
                continue;
            };
            if !coupon::restores(&coupon, &pool, refunded_cents, at_us) {
                continue;
            }
            store::set_redemption(conn, tenant_id, &coupon.code, None).await?;
            store::add_to_pool(
                conn,
                tenant_id,
                &coupon.pool_id,
                0,
                -1,
                -done.discount_cents,
            )
            .await?;
            let event = CouponEvent {
                kind: "restored".into(),
                order_id: Some(order_id.to_owned()),
                amount_cents: done.discount_cents,
                reason: Some("the order was refunded".into()),
                at_us,
            };
            store::record_event(conn, tenant_id, &coupon.code, &coupon.user_id, &event).await?;
            outgoing.push(self.outcome(
                tenant_id,
                &coupon.user_id,
                wire::campaign_outcome::Outcome::CouponRestored(wire::CouponRestored {
                    pool_id: coupon.pool_id.clone(),
                    code: coupon.code.clone(),
                    order_id: order_id.to_owned(),
                    discount_cents: done.discount_cents,
                    restored_at: Some(socialops_proto::timestamp(at_us)),
                }),
            ));
            restored += 1;
        }
        Ok(restored)
    }
}

/// Redemptions over gRPC, committed in groups: one worker takes every request waiting (up to
/// [`REDEEM_BATCH`]) and redeems them in one transaction, in arrival order, so concurrent callers
/// share one commit and one turn on the pool's row instead of queueing for it one by one. A
/// refusal is one caller's answer; a database error fails the group, and each caller may retry.
#[derive(Clone)]
pub struct Redeemer {
    jobs: tokio::sync::mpsc::Sender<RedeemJob>,
}

/// Redemptions one transaction takes at most.
pub const REDEEM_BATCH: usize = 128;

struct RedeemJob {
    tenant_id: String,
    code: String,
    user_id: String,
    order_id: String,
    order_amount_cents: i64,
    at_us: i64,
    reply: tokio::sync::oneshot::Sender<Result<Redemption, CampaignError>>,
}

impl Redeemer {
    /// The redeemer and its worker, which runs until `shutdown`.
    pub fn start(
        engine: std::sync::Arc<Engine>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> (
        Self,
        impl std::future::Future<Output = Result<(), CampaignError>>,
    ) {
        let (jobs, mut queue) = tokio::sync::mpsc::channel::<RedeemJob>(4 * REDEEM_BATCH);
        let worker = async move {
            let mut batch = Vec::with_capacity(REDEEM_BATCH);
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return Ok(()),
                    n = queue.recv_many(&mut batch, REDEEM_BATCH) => {
                        if n == 0 {
                            return Ok(());
                        }
                    }
                }
                engine.redeem_batch(&mut batch).await;
            }
        };
        (Self { jobs }, worker)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn redeem(
        &self,
        tenant_id: &str,
        code: &str,
        user_id: &str,
        order_id: &str,
        order_amount_cents: i64,
        at_us: i64,
    ) -> Result<Redemption, CampaignError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = RedeemJob {
            tenant_id: tenant_id.to_owned(),
            code: code.to_owned(),
            user_id: user_id.to_owned(),
            order_id: order_id.to_owned(),
            order_amount_cents,
            at_us,
            reply,
        };
        let stopped = || CampaignError::Runtime("the coupon redeemer has stopped".into());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Engine {
    /// Redeems the jobs in one transaction and answers each; empties `jobs`.
    async fn redeem_batch(&self, jobs: &mut Vec<RedeemJob>) {
        match self.redeem_all(jobs).await {
            Ok(results) => {
                for (job, result) in jobs.drain(..).zip(results) {
                    let _ = job.reply.send(result.map_err(refused));
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, jobs = jobs.len(), "coupon redemptions failed");
                let code = error.code();
                let message = error.to_string();
                for job in jobs.drain(..) {
                    let again = match code {
                        tonic::Code::Aborted => CampaignError::Conflict(message.clone()),
                        tonic::Code::Internal => CampaignError::Runtime(message.clone()),
                        _ => CampaignError::Unavailable(message.clone()),
                    };
                    let _ = job.reply.send(Err(again));
                }
            }
        }
    }

    /// The jobs in one transaction, in arrival order: their codes locked in one statement, each
    /// pool once, the outcomes decided in memory (a code redeemed by an earlier job is seen by
    /// later ones), then one statement for the codes, one per pool, one for the history.
    async fn redeem_all(
        &self,
        jobs: &[RedeemJob],
    ) -> Result<Vec<Result<Redemption, Refusal>>, CampaignError> {
        let mut tx = self.store.db().begin_write().await?;
        let mut keys: Vec<(String, String)> = jobs
            .iter()
            .map(|j| (j.tenant_id.clone(), j.code.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let mut coupons: HashMap<(String, String), Coupon> = store::coupons_locked(&mut tx, &keys)
            .await?
            .into_iter()
            .map(|(tenant_id, c)| ((tenant_id, c.code.clone()), c))
            .collect();
        let mut pool_keys: Vec<(String, String)> = coupons
            .iter()
            .map(|((tenant_id, _), c)| (tenant_id.clone(), c.pool_id.clone()))
            .collect();
        pool_keys.sort();
        pool_keys.dedup();
        let mut pools: HashMap<(String, String), (Pool, i64, i64)> = HashMap::new();
        for (tenant_id, pool_id) in pool_keys {
            if let Some(pool) = store::pool(&mut tx, &tenant_id, &pool_id, true).await? {
                pools.insert((tenant_id, pool_id), (pool, 0, 0));
            }
        }
        let mut results = Vec::with_capacity(jobs.len());
        let mut events = Vec::new();
        let mut changed = Vec::new();
        let mut outgoing = Vec::new();
        for job in jobs {
            let refusal_event = |refusal: &Refusal| CouponEvent {
                kind: "refused".into(),
                order_id: Some(job.order_id.clone()),
                amount_cents: job.order_amount_cents,
                reason: Some(refusal.to_string()),
                at_us: job.at_us,
            };
            let key = (job.tenant_id.clone(), job.code.clone());
            let Some(coupon) = coupons.get_mut(&key) else {
                let refusal = Refusal::UnknownCode;
                events.push((job, job.user_id.clone(), refusal_event(&refusal)));
                results.push(Err(refusal));
                continue;
            };
            let pool_key = (job.tenant_id.clone(), coupon.pool_id.clone());
            let Some((pool, redeemed, value)) = pools.get_mut(&pool_key) else {
                return Err(CampaignError::Corrupt(format!(
                    "coupon {}: pool {} is gone",
                    job.code, coupon.pool_id
                )));
            };
            let request = RedeemRequest {
                user_id: Some(&job.user_id),
                order_id: &job.order_id,
                order_amount_cents: Some(job.order_amount_cents),
                applied_cents: None,
                at_us: job.at_us,
            };
            match coupon::check_redeem(coupon, pool, &request) {
                Ok(Some(discount)) => {
                    pool.num_redeemed += 1;
                    pool.redeemed_value_cents += discount;
                    *redeemed += 1;
                    *value += discount;
                    coupon.redemption = Some(Redeemed {
                        at_us: job.at_us,
                        order_id: job.order_id.clone(),
                        order_amount_cents: Some(job.order_amount_cents),
                        discount_cents: discount,
                    });
                    events.push((
                        job,
                        coupon.user_id.clone(),
                        CouponEvent {
                            kind: "redeemed".into(),
                            order_id: Some(job.order_id.clone()),
                            amount_cents: discount,
                            reason: None,
                            at_us: job.at_us,
                        },
                    ));
                    if let Some(redeemed) = &coupon.redemption {
                        outgoing.push(self.outcome(
                            &job.tenant_id,
                            &coupon.user_id,
                            redeemed_outcome(coupon, redeemed),
                        ));
                    }
                    changed.push(key);
                    results.push(Ok(Redemption {
                        coupon: coupon.clone(),
                        discount_cents: discount,
                        replayed: false,
                    }));
                }
                Ok(None) => results.push(Ok(Redemption {
                    discount_cents: coupon.redemption.as_ref().map_or(0, |r| r.discount_cents),
                    coupon: coupon.clone(),
                    replayed: true,
                })),
                Err(refusal) => {
                    events.push((job, job.user_id.clone(), refusal_event(&refusal)));
                    results.push(Err(refusal));
                }
            }
        }
        changed.sort();
        changed.dedup();
        let saved: Vec<(&str, &Coupon)> = changed
            .iter()
            .filter_map(|key| coupons.get(key).map(|c| (key.0.as_str(), c)))
            .collect();
        store::save_redemptions(&mut tx, &saved).await?;
        for ((tenant_id, pool_id), (_, redeemed, value)) in &pools {
            if *redeemed > 0 {
                store::add_to_pool(&mut tx, tenant_id, pool_id, 0, *redeemed, *value).await?;
            }
        }
        let history: Vec<(&str, &str, &str, CouponEvent)> = events
            .iter()
            .map(|(job, user, event)| {
                (
                    job.tenant_id.as_str(),
                    job.code.as_str(),
                    user.as_str(),
                    event.clone(),
                )
            })
            .collect();
        store::record_events(&mut tx, &history).await?;
        socialops_bus::Outbox::enqueue(&mut tx, &outgoing).await?;
        tx.commit().await?;
        self.wake_relay(&outgoing);
        Ok(results)
    }
}
