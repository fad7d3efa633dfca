//! Referral programmes: invite codes over gRPC; `referral` events checked for fraud and recorded;
//! an invitee's first order crediting the inviter, a reward coupon every `reward_every` credits (and
//! the invitee's own, if the programme gives one); a refund of that order within the window
//! reversing the credit. Aliases from `identify` events and merged profiles feed the self-referral
//! check. All of it runs in the events consumer's batch, except the gRPC reads and the codes.

use socialops_bus::OutgoingMessage;
use socialops_proto::campaigns::v1 as wire;
use socialops_proto::events::v1::{AliasKind, SocialEvent, social_event::Payload};
use sqlx::AnyConnection;

use crate::coupons::IssueRequest;
use crate::domain::referral::{self, ProgrammeSpec, ReferralFacts};
use crate::engine::{Batch, Engine};
use crate::error::CampaignError;
use crate::store::referrals::{self as store, LedgerEntry, Referral};

/// Invite codes: eight characters of the coupon alphabet (40 random bits) after `R-`.
const CODE_PREFIX: &str = "R-";
const CODE_TRIES: usize = 4;

/// A programme with its totals.
#[derive(Debug, Clone)]
pub struct ProgrammeView {
    pub spec: ProgrammeSpec,
    pub created_at_us: i64,
    pub inviters: u64,
    pub referrals: u64,
    pub flagged: u64,
    pub converted: u64,
    pub rewards: u64,
    pub reward_cost_cents: i64,
    pub reversals: u64,
}

/// What an event means for the referral programmes.
pub(crate) enum ReferralOp {
    Aliases(Vec<(String, String)>),
    Referred { code: String, invitee: String },
    Ordered { order_id: String },
    Refunded { order_id: String },
}

pub(crate) fn referral_op(event: &SocialEvent) -> Option<ReferralOp> {
    match event.payload.as_ref()? {
        Payload::Identify(identify) => Some(ReferralOp::Aliases(
            identify
                .aliases
                .iter()
                .filter(|a| !a.value_hash.is_empty())
                .filter_map(|a| {
                    let kind = match AliasKind::try_from(a.kind).ok()? {
                        AliasKind::Phone => "phone".to_owned(),
                        AliasKind::UnionId => "union_id".to_owned(),
                        AliasKind::OpenId => format!("open_id:{}", a.platform),
                        AliasKind::Unspecified => return None,
                    };
                    Some((kind, a.value_hash.clone()))
                })
                .collect(),
        )),
        Payload::Referral(r) if !r.referral_code.is_empty() => Some(ReferralOp::Referred {
            code: r.referral_code.clone(),
            invitee: if r.invitee_user_id.is_empty() {
                event.user_id.clone()
            } else {
                r.invitee_user_id.clone()
            },
        }),
        Payload::OrderPlaced(o) if !o.order_id.is_empty() => Some(ReferralOp::Ordered {
            order_id: o.order_id.clone(),
        }),
        Payload::OrderRefunded(r) if !r.order_id.is_empty() => Some(ReferralOp::Refunded {
            order_id: r.order_id.clone(),
        }),
        _ => None,
    }
}

impl Engine {
    pub async fn create_programme(
        &self,
        tenant_id: &str,
        spec: ProgrammeSpec,
    ) -> Result<ProgrammeView, CampaignError> {
        let spec = spec.with_defaults();
        spec.validate().map_err(CampaignError::InvalidArgument)?;
        for pool in [&spec.reward_pool_id, &spec.invitee_pool_id] {
            if !pool.is_empty() {
                self.pool(tenant_id, pool).await?;
            }
        }
        let mut tx = self.store.db().begin_write().await?;
        store::insert_programme(&mut tx, tenant_id, &spec, self.clock.now_us()).await?;
        tx.commit().await?;
        self.programme(tenant_id, &spec.programme_id).await
    }

    pub async fn programme(
        &self,
        tenant_id: &str,
        programme_id: &str,
    ) -> Result<ProgrammeView, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        let (spec, created_at_us) = store::programme(&mut conn, tenant_id, programme_id)
            .await?
            .ok_or_else(|| {
                CampaignError::NotFound(format!("no referral programme {programme_id}"))
            })?;
        view(&mut conn, tenant_id, spec, created_at_us).await
    }

    pub async fn programmes(&self, tenant_id: &str) -> Result<Vec<ProgrammeView>, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        let mut views = Vec::new();
        for (spec, created_at_us) in store::programmes(&mut conn, tenant_id).await? {
            views.push(view(&mut conn, tenant_id, spec, created_at_us).await?);
        }
        Ok(views)
    }

    /// The user's invite code, made on first request.
    pub async fn invite_code(
        &self,
        tenant_id: &str,
        programme_id: &str,
        user_id: &str,
    ) -> Result<String, CampaignError> {
        self.programme(tenant_id, programme_id).await?;
        let mut tx = self.store.db().begin_write().await?;
        if let Some(code) = store::code_of(&mut tx, tenant_id, programme_id, user_id).await? {
            return Ok(code);
        }
        for _ in 0..CODE_TRIES {
            let code = crate::domain::coupon::new_code(CODE_PREFIX, &mut rand::rng());
            let code = code[..CODE_PREFIX.len() + 8].to_owned();
            if store::insert_code(&mut tx, tenant_id, programme_id, user_id, &code).await? {
                tx.commit().await?;
                return Ok(code);
            }
            if let Some(code) = store::code_of(&mut tx, tenant_id, programme_id, user_id).await? {
                return Ok(code);
            }
        }
        Err(CampaignError::Runtime(format!(
            "no unused invite code after {CODE_TRIES} tries"
        )))
    }

    pub async fn ledger(
        &self,
        tenant_id: &str,
        programme_id: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<LedgerEntry>, CampaignError> {
        self.programme(tenant_id, programme_id).await?;
        let mut conn = self.store.db().pool().acquire().await?;
        store::ledger(&mut conn, tenant_id, programme_id, user_id).await
    }

    pub async fn flagged_referrals(
        &self,
        tenant_id: &str,
        programme_id: &str,
    ) -> Result<Vec<Referral>, CampaignError> {
        self.programme(tenant_id, programme_id).await?;
        let mut conn = self.store.db().pool().acquire().await?;
        store::flagged(&mut conn, tenant_id, programme_id).await
    }

    /// Applies what one event means for the programmes, inside the batch's transaction. The
    /// event's user is loaded in `batch`, with this batch's orders applied.
    pub(crate) async fn apply_referral(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        event: &SocialEvent,
        at_us: i64,
        op: ReferralOp,
        outgoing: &mut Vec<OutgoingMessage>,
    ) -> Result<(), CampaignError> {
        let tenant_id = event.tenant_id.as_str();
        match op {
            ReferralOp::Aliases(aliases) => {
                for (kind, hash) in aliases {
                    store::add_alias(conn, tenant_id, &kind, &hash, &event.user_id).await?;
                }
            }
            ReferralOp::Referred { code, invitee } => {
                self.referred(conn, batch, tenant_id, &code, &invitee, at_us)
                    .await?;
            }
            ReferralOp::Ordered { order_id } => {
                let key = (tenant_id.to_owned(), event.user_id.clone());
                let first = batch
                    .user(&key)
                    .is_ok_and(|u| u.first_order_at_us == Some(at_us));
                if first {
                    self.converted(conn, tenant_id, &event.user_id, &order_id, at_us, outgoing)
                        .await?;
                }
            }
            ReferralOp::Refunded { order_id } => {
                self.refunded(conn, tenant_id, &event.user_id, &order_id, at_us, outgoing)
                    .await?;
            }
        }
        Ok(())
    }

    async fn referred(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        tenant_id: &str,
        code: &str,
        invitee: &str,
        at_us: i64,
    ) -> Result<(), CampaignError> {
        let Some((programme_id, inviter)) = store::code_owner(conn, tenant_id, code).await? else {
            tracing::info!(tenant_id, "referral with an unknown invite code; ignored");
            return Ok(());
        };
        let Some((spec, _)) = store::programme(conn, tenant_id, &programme_id).await? else {
            return Ok(());
        };
        let invitee_key = (tenant_id.to_owned(), invitee.to_owned());
        batch.load_users(conn, [invitee_key.clone()]).await?;
        let invitee_first_order_at_us = batch.user(&invitee_key)?.first_order_at_us;
        let facts = ReferralFacts {
            inviter: &inviter,
            invitee,
            shared_alias: store::shared_alias(conn, tenant_id, &inviter, invitee).await?,
            invitee_first_order_at_us,
            referred_at_us: at_us,
            reverse_exists: store::referred(conn, tenant_id, &programme_id, invitee, &inviter)
                .await?,
            inviter_recent: store::num_recent(
                conn,
                tenant_id,
                &programme_id,
                &inviter,
                at_us - spec.burst_window_us,
            )
            .await?,
        };
        let flag = referral::flag(&spec, &facts);
        if let Some(flag) = &flag {
            tracing::info!(
                tenant_id,
                programme_id,
                check = flag.check(),
                "referral flagged"
            );
        }
        store::insert_referral(
            conn,
            tenant_id,
            &Referral {
                programme_id,
                invitee_user_id: invitee.to_owned(),
                inviter_user_id: inviter,
                state: if flag.is_some() { "flagged" } else { "pending" }.to_owned(),
                flag_check: flag.as_ref().map(|f| f.check().to_owned()),
                reason: flag.as_ref().map(ToString::to_string),
                referred_at_us: at_us,
                order_id: None,
                converted_at_us: None,
            },
        )
        .await?;
        Ok(())
    }

    /// The invitee's first order: each pending referral credits its inviter, with a reward coupon
    /// every `reward_every` standing credits, and the invitee's own coupon if the programme has one.
    async fn converted(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        invitee: &str,
        order_id: &str,
        at_us: i64,
        outgoing: &mut Vec<OutgoingMessage>,
    ) -> Result<(), CampaignError> {
        for mut referral in store::of_invitee(conn, tenant_id, invitee, "pending").await? {
            let Some((spec, _)) = store::programme(conn, tenant_id, &referral.programme_id).await?
            else {
                continue;
            };
            referral.state = "converted".into();
            referral.order_id = Some(order_id.to_owned());
            referral.converted_at_us = Some(at_us);
            store::set_state(conn, tenant_id, &referral).await?;
            let inviter = referral.inviter_user_id.clone();
            let entry = |user_id: &str, kind: &str, coupon_code: Option<String>| LedgerEntry {
                programme_id: spec.programme_id.clone(),
                user_id: user_id.to_owned(),
                kind: kind.to_owned(),
                invitee_user_id: invitee.to_owned(),
                order_id: Some(order_id.to_owned()),
                coupon_code,
                at_us,
                ..LedgerEntry::default()
            };
            self.append(conn, tenant_id, entry(&inviter, "credit", None), outgoing)
                .await?;
            let standing =
                store::num_standing_credits(conn, tenant_id, &spec.programme_id, &inviter).await?;
            if referral::earns_reward(&spec, standing) {
                let key = format!("referral:{}:{inviter}:{standing}", spec.programme_id);
                let code = self
                    .reward(
                        conn,
                        tenant_id,
                        &spec.reward_pool_id,
                        &inviter,
                        key,
                        at_us,
                        outgoing,
                    )
                    .await?;
                self.append(conn, tenant_id, entry(&inviter, "reward", code), outgoing)
                    .await?;
            }
            if !spec.invitee_pool_id.is_empty() {
                let key = format!("referral:{}:invitee:{invitee}", spec.programme_id);
                let code = self
                    .reward(
                        conn,
                        tenant_id,
                        &spec.invitee_pool_id,
                        invitee,
                        key,
                        at_us,
                        outgoing,
                    )
                    .await?;
                self.append(
                    conn,
                    tenant_id,
                    entry(invitee, "invitee_reward", code),
                    outgoing,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Issues a reward coupon; `None` (logged) when the pool cannot, so the ledger still shows the
    /// reward was earned.
    #[allow(clippy::too_many_arguments)]
    async fn reward(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        pool_id: &str,
        user_id: &str,
        issue_key: String,
        at_us: i64,
        outgoing: &mut Vec<OutgoingMessage>,
    ) -> Result<Option<String>, CampaignError> {
        let request = IssueRequest {
            tenant_id,
            pool_id,
            user_id,
            issue_key,
            campaign_id: "",
            now_us: at_us,
        };
        match self.issue_in(conn, &request, outgoing).await? {
            Ok(issued) => Ok(Some(issued.coupon.code)),
            Err(refusal) => {
                tracing::warn!(tenant_id, pool_id, reason = %refusal, "referral reward not issued");
                Ok(None)
            }
        }
    }

    /// A refund of an invitee's first order within the window reverses the inviter's credit.
    async fn refunded(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        invitee: &str,
        order_id: &str,
        at_us: i64,
        outgoing: &mut Vec<OutgoingMessage>,
    ) -> Result<(), CampaignError> {
        for mut referral in store::of_invitee(conn, tenant_id, invitee, "converted").await? {
            if referral.order_id.as_deref() != Some(order_id) {
                continue;
            }
            let Some((spec, _)) = store::programme(conn, tenant_id, &referral.programme_id).await?
            else {
                continue;
            };
            let converted_at = referral.converted_at_us.unwrap_or(referral.referred_at_us);
            if !referral::reverses(&spec, converted_at, at_us) {
                continue;
            }
            let credit = store::ledger(
                conn,
                tenant_id,
                &spec.programme_id,
                Some(&referral.inviter_user_id),
            )
            .await?
            .into_iter()
            .find(|e| {
                e.kind == "credit"
                    && e.invitee_user_id == invitee
                    && e.order_id.as_deref() == Some(order_id)
            });
            let Some(credit) = credit else { continue };
            self.append(
                conn,
                tenant_id,
                LedgerEntry {
                    programme_id: spec.programme_id.clone(),
                    user_id: referral.inviter_user_id.clone(),
                    kind: "reversal".into(),
                    invitee_user_id: invitee.to_owned(),
                    order_id: Some(order_id.to_owned()),
                    reverses_seq: Some(credit.seq),
                    at_us,
                    ..LedgerEntry::default()
                },
                outgoing,
            )
            .await?;
            referral.state = "reversed".into();
            store::set_state(conn, tenant_id, &referral).await?;
        }
        Ok(())
    }
}

impl Engine {
    /// Appends a ledger entry and announces it to its user on `socialops.campaigns.v1`.
    async fn append(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        entry: LedgerEntry,
        outgoing: &mut Vec<OutgoingMessage>,
    ) -> Result<i64, CampaignError> {
        let seq = store::append(conn, tenant_id, &entry).await?;
        let outcome = wire::campaign_outcome::Outcome::Referral(wire::ReferralEntry {
            programme_id: entry.programme_id,
            seq: u64::try_from(seq).unwrap_or(0),
            kind: entry.kind,
            invitee_user_id: entry.invitee_user_id,
            order_id: entry.order_id.unwrap_or_default(),
            coupon_code: entry.coupon_code.unwrap_or_default(),
            reverses_seq: entry
                .reverses_seq
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0),
            at: Some(socialops_proto::timestamp(entry.at_us)),
        });
        outgoing.push(self.outcome(tenant_id, &entry.user_id, outcome));
        Ok(seq)
    }
}

async fn view(
    conn: &mut AnyConnection,
    tenant_id: &str,
    spec: ProgrammeSpec,
    created_at_us: i64,
) -> Result<ProgrammeView, CampaignError> {
    let (inviters, referrals, flagged, converted, rewards, reward_cost_cents, reversals) =
        store::stats(conn, tenant_id, &spec.programme_id).await?;
    Ok(ProgrammeView {
        spec,
        created_at_us,
        inviters,
        referrals,
        flagged,
        converted,
        rewards,
        reward_cost_cents,
        reversals,
    })
}
