//! Profile changes and events: each enters users into the running campaigns whose entry it matches
//! and moves the journeys the user is in (a goal event exits, an awaited event resumes, a stage or
//! tier is remembered for branches). One consumer batch is one transaction; a message seen before
//! changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use socialops_proto::events::v1::{SocialEvent, social_event::Payload};
use socialops_proto::profiles::v1::{ProfileChange, profile_change::Change};
use sqlx::AnyConnection;

use crate::attribute::attributable;
use crate::domain::coupon::RedeemRequest;
use crate::domain::definition::{EventFact, EventType, Stage, Tier};
use crate::domain::journey::{self, Observation};
use crate::engine::{Batch, BatchOutcome, Engine, first_seen, time_zone};
use crate::error::CampaignError;
use crate::referrals::referral_op;
use crate::store::referrals as referral_store;
use crate::store::tenants;
use crate::store::users::UserRecord;
use crate::time::{from_micros, micros};

/// What a message says about one user, in the campaign's terms.
enum Said {
    Stage { from: Option<Stage>, to: Stage },
    Tier(Tier),
    SegmentEntered(String),
    SegmentLeft(String),
    Merged { merged_user_id: String },
    Event(EventFact, Option<DirectMessage>),
}

/// A user's direct message to the brand, for the FAQ.
pub(crate) struct DirectMessage {
    pub message_id: String,
    pub conversation_id: String,
    pub text: String,
}

pub(crate) fn stage(wire: i32) -> Option<Stage> {
    use socialops_proto::profiles::v1::Stage as W;
    match W::try_from(wire).ok()? {
        W::Potential => Some(Stage::Potential),
        W::New => Some(Stage::New),
        W::Active => Some(Stage::Active),
        W::Loyal => Some(Stage::Loyal),
        W::Churned => Some(Stage::Churned),
        W::Unspecified => None,
    }
}

fn tier(wire: i32) -> Option<Tier> {
    use socialops_proto::profiles::v1::ValueTier as W;
    match W::try_from(wire).ok()? {
        W::Unscored => Some(Tier::Unscored),
        W::LowValue => Some(Tier::LowValue),
        W::Regular => Some(Tier::Regular),
        W::PotentialHighValue => Some(Tier::PotentialHighValue),
        W::HighValue => Some(Tier::HighValue),
        W::Unspecified => None,
    }
}

fn said_of_change(change: &ProfileChange) -> Option<Said> {
    Some(match change.change.as_ref()? {
        Change::StageChanged(c) => Said::Stage {
            from: stage(c.from),
            to: stage(c.to)?,
        },
        Change::RfmChanged(c) => Said::Tier(tier(c.tier)?),
        Change::SegmentEntered(c) => Said::SegmentEntered(c.segment_id.clone()),
        Change::SegmentLeft(c) => Said::SegmentLeft(c.segment_id.clone()),
        Change::ProfilesMerged(c) => Said::Merged {
            merged_user_id: c.merged_user_id.clone(),
        },
    })
}

fn event_type(payload: &Payload) -> Option<EventType> {
    Some(match payload {
        Payload::OrderPlaced(_) => EventType::OrderPlaced,
        Payload::OrderRefunded(_) => EventType::OrderRefunded,
        Payload::Follow(_) => EventType::Follow,
        Payload::Unfollow(_) => EventType::Unfollow,
        Payload::DirectMessage(m) if !m.from_brand => EventType::DirectMessage,
        Payload::Comment(c) if !c.from_brand => EventType::Comment,
        Payload::Like(_) => EventType::Like,
        Payload::Share(_) => EventType::Share,
        Payload::ContentClick(_) => EventType::ContentClick,
        Payload::CouponRedeemed(_) => EventType::CouponRedeemed,
        Payload::Referral(_) => EventType::Referral,
        _ => return None,
    })
}

/// What an event asks of the coupons: a code redeemed (by `coupon_redeemed`, or on `order_placed`),
/// or an order refunded.
enum CouponOp {
    Redeem {
        code: String,
        order_id: String,
        order_amount_cents: Option<i64>,
        applied_cents: Option<i64>,
    },
    Refund {
        order_id: String,
        refunded_cents: i64,
    },
}

fn coupon_op(payload: &Payload) -> Option<CouponOp> {
    match payload {
        Payload::OrderPlaced(order) if !order.coupon_code.is_empty() => Some(CouponOp::Redeem {
            code: order.coupon_code.clone(),
            order_id: order.order_id.clone(),
            order_amount_cents: Some(order.amount_cents),
            applied_cents: None,
        }),
        Payload::CouponRedeemed(redeemed) if !redeemed.coupon_code.is_empty() => {
            Some(CouponOp::Redeem {
                code: redeemed.coupon_code.clone(),
                order_id: redeemed.order_id.clone(),
                order_amount_cents: None,
                applied_cents: Some(redeemed.discount_cents),
            })
        }
        Payload::OrderRefunded(refund) if !refund.order_id.is_empty() => Some(CouponOp::Refund {
            order_id: refund.order_id.clone(),
            refunded_cents: refund.amount_cents,
        }),
        _ => None,
    }
}

/// One user's messages of a batch, in their order.
struct UserMessages {
    said: Vec<(Said, DateTime<Utc>)>,
    /// Activity by UTC time, for the hour histograms.
    activity: Vec<DateTime<Utc>>,
    time_zone: Option<String>,
}

impl Engine {
    /// Applies a batch of `socialops.profiles.v1` changes.
    pub async fn handle_profile_changes(
        &self,
        changes: &[ProfileChange],
    ) -> Result<BatchOutcome, CampaignError> {
        let now = self.now();
        let mut tx = self.store.db().begin_write().await?;
        let ids = changes
            .iter()
            .map(|c| (c.tenant_id.as_str(), format!("profile:{}", c.change_id)));
        let fresh = first_seen(&mut tx, ids, micros(now)).await?;
        let mut by_user: BTreeMap<(String, String), UserMessages> = BTreeMap::new();
        for (change, fresh) in changes.iter().zip(fresh) {
            if !fresh {
                continue;
            }
            let Some(said) = said_of_change(change) else {
                continue;
            };
            let at =
                socialops_proto::micros_of(change.occurred_at.as_ref()).map_or(now, from_micros);
            user_messages(&mut by_user, &change.tenant_id, &change.user_id)
                .said
                .push((said, at));
        }
        let mut batch = Batch::new(now);
        self.apply_users(&mut tx, &mut batch, by_user).await?;
        self.decide_pending(&mut tx, &mut batch).await?;
        self.commit(tx, batch).await
    }

    /// Applies a batch of `socialops.events.v1` events.
    pub async fn handle_events(
        &self,
        events: &[SocialEvent],
    ) -> Result<BatchOutcome, CampaignError> {
        let now = self.now();
        let mut tx = self.store.db().begin_write().await?;
        let ids = events
            .iter()
            .map(|e| (e.tenant_id.as_str(), format!("event:{}", e.event_id)));
        let fresh = first_seen(&mut tx, ids, micros(now)).await?;
        let mut by_user: BTreeMap<(String, String), UserMessages> = BTreeMap::new();
        let mut coupon_ops = Vec::new();
        let mut attributions = Vec::new();
        let mut referral_ops = Vec::new();
        for (event, fresh) in events.iter().zip(fresh) {
            if event.user_id.is_empty() || !fresh {
                continue;
            }
            let at =
                socialops_proto::micros_of(event.occurred_at.as_ref()).map_or(now, from_micros);
            if let Some(op) = event.payload.as_ref().and_then(coupon_op) {
                coupon_ops.push((event, at.min(now), op));
            }
            if let Some(what) = attributable(event) {
                attributions.push((event, at, what));
            }
            if let Some(op) = referral_op(event) {
                referral_ops.push((event, at, op));
            }
            let messages = user_messages(&mut by_user, &event.tenant_id, &event.user_id);
            if let Some(zone) = event.attributes.get("time_zone")
                && zone.parse::<chrono_tz::Tz>().is_ok()
            {
                messages.time_zone = Some(zone.clone());
            }
            let Some(payload) = &event.payload else {
                continue;
            };
            let from_brand = matches!(payload, Payload::DirectMessage(m) if m.from_brand)
                || matches!(payload, Payload::Comment(c) if c.from_brand)
                || matches!(payload, Payload::PostPublished(_));
            if !from_brand {
                messages.activity.push(at);
            }
            let Some(event_type) = event_type(payload) else {
                continue;
            };
            let amount_cents = match payload {
                Payload::OrderPlaced(order) => Some(order.amount_cents),
                _ => None,
            };
            let direct = match payload {
                Payload::DirectMessage(m) => Some(DirectMessage {
                    message_id: if m.message_id.is_empty() {
                        event.event_id.clone()
                    } else {
                        m.message_id.clone()
                    },
                    conversation_id: if m.conversation_id.is_empty() {
                        event.user_id.clone()
                    } else {
                        m.conversation_id.clone()
                    },
                    text: m.text.clone(),
                }),
                _ => None,
            };
            let fact = EventFact {
                event: event_type,
                amount_cents,
                // Settled per user below, from what the store knows.
                first_order: false,
                at,
            };
            messages.said.push((Said::Event(fact, direct), at));
        }
        let mut batch = Batch::new(now);
        self.apply_users(&mut tx, &mut batch, by_user).await?;
        // Codes are locked after the users and before any pool a send's coupon action locks.
        let mut outgoing = Vec::new();
        for (event, at, op) in coupon_ops {
            let (tenant_id, user_id) = (event.tenant_id.as_str(), event.user_id.as_str());
            match op {
                CouponOp::Redeem {
                    code,
                    order_id,
                    order_amount_cents,
                    applied_cents,
                } => {
                    let request = RedeemRequest {
                        user_id: Some(user_id),
                        order_id: &order_id,
                        order_amount_cents,
                        applied_cents,
                        at_us: micros(at),
                    };
                    if let Err(refusal) = self
                        .redeem_in(&mut tx, tenant_id, &code, &request, &mut outgoing)
                        .await?
                    {
                        tracing::info!(
                            tenant_id,
                            event_id = event.event_id,
                            reason = %refusal,
                            "coupon redemption refused"
                        );
                    }
                }
                CouponOp::Refund {
                    order_id,
                    refunded_cents,
                } => {
                    self.restore_in(
                        &mut tx,
                        tenant_id,
                        &order_id,
                        refunded_cents,
                        micros(at),
                        &mut outgoing,
                    )
                    .await?;
                }
            }
        }
        // Rewards lock their pools after every code this batch redeemed.
        for (event, at, op) in referral_ops {
            self.apply_referral(&mut tx, &mut batch, event, micros(at), op, &mut outgoing)
                .await?;
        }
        batch
            .outgoing
            .extend(outgoing.into_iter().map(|m| (None, m)));
        for (event, at, what) in attributions {
            self.attribute(&mut tx, &mut batch, event, at, what).await?;
        }
        self.decide_pending(&mut tx, &mut batch).await?;
        self.commit(tx, batch).await
    }

    async fn apply_users(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        by_user: BTreeMap<(String, String), UserMessages>,
    ) -> Result<(), CampaignError> {
        let mut tenant_hours: BTreeMap<String, [u32; 24]> = BTreeMap::new();
        batch.load_users(conn, by_user.keys().cloned()).await?;
        for ((tenant_id, user_id), messages) in by_user {
            let key = (tenant_id, user_id);
            let mut user = batch.user(&key)?.clone();
            let (tenant_id, user_id) = (&key.0, &key.1);
            if messages.time_zone.is_some() {
                user.time_zone = messages.time_zone.clone();
            }
            let settings = batch.settings(conn, tenant_id).await?;
            let tz = time_zone(&user, &settings);
            let hours = tenant_hours.entry(tenant_id.clone()).or_insert([0; 24]);
            for at in &messages.activity {
                user.hours.record(*at, tz);
                hours[usize::from(local_hour(*at, tz))] += 1;
            }
            for (said, at) in messages.said {
                self.apply_said(conn, batch, tenant_id, user_id, &mut user, said, at)
                    .await?;
            }
            *batch.user_mut(&key)? = user;
        }
        for (tenant_id, hours) in tenant_hours {
            tenants::add_hours(conn, &tenant_id, &hours).await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_said(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        tenant_id: &str,
        user_id: &str,
        user: &mut UserRecord,
        said: Said,
        at: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        match said {
            Said::Stage { from, to } => {
                user.stage = Some(to);
                self.observe(
                    conn,
                    batch,
                    tenant_id,
                    user_id,
                    user,
                    &Observation::Stage(to),
                )
                .await?;
                for campaign in batch
                    .running_by_entry(conn, tenant_id, "stage_changed", to.as_str())
                    .await?
                {
                    if campaign.spec.entry.matches_stage(from, to) {
                        self.enter(conn, batch, &campaign, user_id, user).await?;
                    }
                }
            }
            Said::Tier(tier) => {
                user.tier = Some(tier);
                self.observe(
                    conn,
                    batch,
                    tenant_id,
                    user_id,
                    user,
                    &Observation::Tier(tier),
                )
                .await?;
            }
            Said::SegmentEntered(segment_id) => {
                batch.members.push((
                    tenant_id.to_owned(),
                    segment_id.clone(),
                    user_id.to_owned(),
                    true,
                ));
                for campaign in batch
                    .running_by_entry(conn, tenant_id, "segment_entered", &segment_id)
                    .await?
                {
                    self.enter(conn, batch, &campaign, user_id, user).await?;
                }
            }
            Said::SegmentLeft(segment_id) => {
                batch.members.push((
                    tenant_id.to_owned(),
                    segment_id.clone(),
                    user_id.to_owned(),
                    false,
                ));
                let left = Observation::SegmentLeft {
                    segment_id: segment_id.clone(),
                };
                self.observe(conn, batch, tenant_id, user_id, user, &left)
                    .await?;
                for campaign in batch
                    .running_by_entry(conn, tenant_id, "segment_left", &segment_id)
                    .await?
                {
                    self.enter(conn, batch, &campaign, user_id, user).await?;
                }
            }
            Said::Merged { merged_user_id } => {
                // The surviving profile goes on in its own journeys; the merged one's end here.
                // One person now: the merge is an alias the two share, for the referral checks.
                for user in [user_id, merged_user_id.as_str()] {
                    referral_store::add_alias(conn, tenant_id, "profile", user_id, user).await?;
                }
                let merged = (tenant_id.to_owned(), merged_user_id);
                batch.load_users(conn, [merged.clone()]).await?;
                for mut record in batch.open_journeys(&merged) {
                    record.exited_at_us = Some(batch.now_us);
                    record.exit_reason = Some("merged".into());
                    record.due_at_us = None;
                    record.step_id.clear();
                    batch.put_journey(&record, false);
                }
            }
            Said::Event(mut fact, direct) => {
                if fact.event == EventType::OrderPlaced {
                    fact.first_order = user.first_order_at_us.is_none();
                    if fact.first_order {
                        user.first_order_at_us = Some(micros(at));
                    }
                }
                self.observe(
                    conn,
                    batch,
                    tenant_id,
                    user_id,
                    user,
                    &Observation::Event(fact.clone()),
                )
                .await?;
                for campaign in batch
                    .running_by_entry(conn, tenant_id, "event", fact.event.as_str())
                    .await?
                {
                    if campaign.spec.entry.matches_event(&fact) {
                        self.enter(conn, batch, &campaign, user_id, user).await?;
                    }
                }
                if let Some(direct) = direct {
                    self.reply(conn, batch, tenant_id, user_id, &direct).await?;
                }
            }
        }
        Ok(())
    }

    /// Shows the observation to every journey the user is in.
    async fn observe(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        tenant_id: &str,
        user_id: &str,
        user: &UserRecord,
        observation: &Observation,
    ) -> Result<(), CampaignError> {
        let key = (tenant_id.to_owned(), user_id.to_owned());
        for mut record in batch.open_journeys(&key) {
            let Some(campaign) = batch.campaign(conn, tenant_id, &record.campaign_id).await? else {
                continue;
            };
            let settings = batch.settings(conn, tenant_id).await?;
            let tz = time_zone(user, &settings);
            let before = serde_json::to_string(&record.state).unwrap_or_default();
            let effects = journey::observe(
                &campaign.spec,
                &mut record.state,
                observation,
                batch.now,
                tz,
            );
            let after = serde_json::to_string(&record.state).unwrap_or_default();
            if effects.is_empty() && before == after {
                continue;
            }
            self.apply(batch, &campaign, &mut record, effects, false)?;
        }
        Ok(())
    }
}

fn user_messages<'a>(
    by_user: &'a mut BTreeMap<(String, String), UserMessages>,
    tenant_id: &str,
    user_id: &str,
) -> &'a mut UserMessages {
    by_user
        .entry((tenant_id.to_owned(), user_id.to_owned()))
        .or_insert_with(|| UserMessages {
            said: Vec::new(),
            activity: Vec::new(),
            time_zone: None,
        })
}

fn local_hour(at: DateTime<Utc>, tz: chrono_tz::Tz) -> u8 {
    use chrono::Timelike;
    u8::try_from(at.with_timezone(&tz).hour()).unwrap_or(0)
}
