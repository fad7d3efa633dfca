//! Attribution: an order is credited to the user's last touch within the tenant's attribution
//! window (a send, a campaign's holdout entry, or a send the global control group kept back), and a
//! refund takes its amount back; impressions and clicks that carry a send's key in their
//! `send_key` attribute are recorded against that send. Runs inside the events consumer's batch.

use chrono::{DateTime, Utc};
use socialops_proto::campaigns::v1 as wire;
use socialops_proto::events::v1::{SocialEvent, social_event::Payload};
use sqlx::AnyConnection;

use crate::engine::{Batch, Engine};
use crate::error::CampaignError;
use crate::store::attribution::{self, Conversion, Engagement};
use crate::time::micros;

/// The event attribute that names the send an impression or click came from.
pub const SEND_KEY_ATTRIBUTE: &str = "send_key";

/// What an event means for attribution.
pub(crate) enum Attributable {
    Order {
        order_id: String,
        amount_cents: i64,
    },
    Refund {
        order_id: String,
        amount_cents: i64,
    },
    Engagement {
        send_key: String,
        kind: &'static str,
    },
}

pub(crate) fn attributable(event: &SocialEvent) -> Option<Attributable> {
    let send_key = || {
        event
            .attributes
            .get(SEND_KEY_ATTRIBUTE)
            .filter(|k| !k.is_empty())
    };
    match event.payload.as_ref()? {
        Payload::OrderPlaced(order) if !order.order_id.is_empty() => Some(Attributable::Order {
            order_id: order.order_id.clone(),
            amount_cents: order.amount_cents,
        }),
        Payload::OrderRefunded(refund) if !refund.order_id.is_empty() => {
            Some(Attributable::Refund {
                order_id: refund.order_id.clone(),
                amount_cents: refund.amount_cents,
            })
        }
        Payload::ContentImpression(_) => Some(Attributable::Engagement {
            send_key: send_key()?.clone(),
            kind: "impression",
        }),
        Payload::ContentClick(_) => Some(Attributable::Engagement {
            send_key: send_key()?.clone(),
            kind: "click",
        }),
        _ => None,
    }
}

impl Engine {
    /// Records what the event means for attribution. The user's record in `batch` already holds
    /// the batch's orders (its first order's time tells a first order).
    pub(crate) async fn attribute(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        event: &SocialEvent,
        at: DateTime<Utc>,
        what: Attributable,
    ) -> Result<(), CampaignError> {
        let (tenant_id, user_id) = (event.tenant_id.as_str(), event.user_id.as_str());
        let at_us = micros(at);
        match what {
            Attributable::Order {
                order_id,
                amount_cents,
            } => {
                let window = batch.settings(conn, tenant_id).await?.attribution_window;
                let window_us = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
                let touch = attribution::last_touch(
                    conn,
                    tenant_id,
                    user_id,
                    at_us.saturating_sub(window_us),
                    at_us,
                )
                .await?;
                let key = (tenant_id.to_owned(), user_id.to_owned());
                let first_order = batch
                    .user(&key)
                    .is_ok_and(|u| u.first_order_at_us == Some(at_us));
                let recorded = attribution::record_conversion(
                    conn,
                    tenant_id,
                    &Conversion {
                        order_id: &order_id,
                        user_id,
                        touch: touch.as_ref(),
                        amount_cents: amount_cents.max(0),
                        first_order,
                        at_us,
                    },
                )
                .await?;
                if let Some(touch) = touch.filter(|_| recorded) {
                    let outcome = wire::campaign_outcome::Outcome::Conversion(wire::Conversion {
                        order_id,
                        campaign_id: touch.campaign_id,
                        variant_id: touch.variant_id,
                        arm: touch.arm.as_str().to_owned(),
                        send_key: touch.send_key.unwrap_or_default(),
                        amount_cents: amount_cents.max(0),
                        first_order,
                        ordered_at: Some(socialops_proto::timestamp(at_us)),
                        touched_at: Some(socialops_proto::timestamp(touch.at_us)),
                    });
                    batch
                        .outgoing
                        .push((None, self.outcome(tenant_id, user_id, outcome)));
                }
                Ok(())
            }
            Attributable::Refund {
                order_id,
                amount_cents,
            } => attribution::refund(conn, tenant_id, &order_id, amount_cents).await,
            Attributable::Engagement { send_key, kind } => {
                let Some((campaign_id, variant_id, sent_to)) =
                    attribution::send_of(conn, tenant_id, &send_key).await?
                else {
                    return Ok(());
                };
                if sent_to != user_id {
                    tracing::info!(
                        tenant_id,
                        event_id = event.event_id,
                        "engagement names another user's send; not counted"
                    );
                    return Ok(());
                }
                attribution::record_engagement(
                    conn,
                    tenant_id,
                    &Engagement {
                        send_key: &send_key,
                        kind,
                        user_id,
                        campaign_id: &campaign_id,
                        variant_id: &variant_id,
                        at_us,
                    },
                )
                .await
            }
        }
    }
}
