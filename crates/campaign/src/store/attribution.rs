//! Attribution: impressions and clicks of sends, orders attributed to the last touch, and the
//! aggregates a campaign report is made of.

use socialops_storage::Row;
use sqlx::AnyConnection;

use super::count;
use crate::error::CampaignError;

/// How a user was touched by a campaign: sent to, held out of it, or kept from it by the global
/// control group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arm {
    Variant,
    Holdout,
    Control,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Variant => "variant",
            Self::Holdout => "holdout",
            Self::Control => "control",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Variant, Self::Holdout, Self::Control]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub campaign_id: String,
    pub variant_id: String,
    pub arm: Arm,
    pub send_key: Option<String>,
    pub at_us: i64,
}

/// Where each kind of touch is found. A send on the `platform` channel touches when an impression
/// reports it; a send on any other channel (the platforms report nothing back) when it is sent.
const TOUCHES: [(&str, &str); 4] = [
    (
        "variant",
        "SELECT campaign_id, variant_id, send_key, decided_at_us FROM sends \
         WHERE tenant_id = $1 AND user_id = $2 AND state = 'sent' AND channel <> 'platform' \
         AND campaign_id <> 'faq' AND decided_at_us > $3 AND decided_at_us <= $4 \
         ORDER BY decided_at_us DESC LIMIT 1",
    ),
    (
        "variant",
        "SELECT campaign_id, variant_id, send_key, at_us FROM engagements \
         WHERE tenant_id = $1 AND user_id = $2 AND kind = 'impression' \
         AND at_us > $3 AND at_us <= $4 ORDER BY at_us DESC LIMIT 1",
    ),
    (
        "holdout",
        "SELECT campaign_id, variant_id, NULL, entered_at_us FROM journeys \
         WHERE tenant_id = $1 AND user_id = $2 AND holdout = 1 \
         AND entered_at_us > $3 AND entered_at_us <= $4 ORDER BY entered_at_us DESC LIMIT 1",
    ),
    (
        "control",
        "SELECT campaign_id, variant_id, send_key, decided_at_us FROM sends \
         WHERE tenant_id = $1 AND user_id = $2 AND state = 'dropped' AND rule = 'control_group' \
         AND decided_at_us > $3 AND decided_at_us <= $4 ORDER BY decided_at_us DESC LIMIT 1",
    ),
];

/// The user's last touch after `since_us` and at or before `at_us`.
pub async fn last_touch(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    since_us: i64,
    at_us: i64,
) -> Result<Option<Touch>, CampaignError> {
    let mut last: Option<Touch> = None;
    for (arm, sql) in TOUCHES {
        let row = sqlx::query(sql)
            .bind(tenant_id)
            .bind(user_id)
            .bind(since_us)
            .bind(at_us)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { continue };
        let touch = Touch {
            campaign_id: row.try_get(0)?,
            variant_id: row.try_get(1)?,
            arm: Arm::parse(arm).unwrap_or(Arm::Variant),
            send_key: row.try_get(2)?,
            at_us: row.try_get(3)?,
        };
        if last.as_ref().is_none_or(|l| touch.at_us > l.at_us) {
            last = Some(touch);
        }
    }
    Ok(last)
}

/// The campaign and variant of a send, for an engagement that names it.
pub async fn send_of(
    conn: &mut AnyConnection,
    tenant_id: &str,
    send_key: &str,
) -> Result<Option<(String, String, String)>, CampaignError> {
    let row = sqlx::query(
        "SELECT campaign_id, variant_id, user_id FROM sends WHERE send_key = $1 AND tenant_id = $2",
    )
    .bind(send_key)
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}

#[derive(Debug, Clone)]
pub struct Engagement<'a> {
    pub send_key: &'a str,
    pub kind: &'a str,
    pub user_id: &'a str,
    pub campaign_id: &'a str,
    pub variant_id: &'a str,
    pub at_us: i64,
}

/// Records the first impression or click of a send; later ones change nothing.
pub async fn record_engagement(
    conn: &mut AnyConnection,
    tenant_id: &str,
    engagement: &Engagement<'_>,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO engagements (tenant_id, send_key, kind, user_id, campaign_id, variant_id, \
         at_us) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(engagement.send_key)
    .bind(engagement.kind)
    .bind(engagement.user_id)
    .bind(engagement.campaign_id)
    .bind(engagement.variant_id)
    .bind(engagement.at_us)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Conversion<'a> {
    pub order_id: &'a str,
    pub user_id: &'a str,
    pub touch: Option<&'a Touch>,
    pub amount_cents: i64,
    pub first_order: bool,
    pub at_us: i64,
}

/// Records an order with its touch; an order seen before keeps its first record (and false is
/// returned).
pub async fn record_conversion(
    conn: &mut AnyConnection,
    tenant_id: &str,
    conversion: &Conversion<'_>,
) -> Result<bool, CampaignError> {
    let touch = conversion.touch;
    Ok(sqlx::query(
        "INSERT INTO conversions (tenant_id, order_id, user_id, campaign_id, variant_id, arm, \
         send_key, touched_at_us, amount_cents, first_order, at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(conversion.order_id)
    .bind(conversion.user_id)
    .bind(touch.map_or("", |t| t.campaign_id.as_str()))
    .bind(touch.map_or("", |t| t.variant_id.as_str()))
    .bind(touch.map_or("", |t| t.arm.as_str()))
    .bind(touch.and_then(|t| t.send_key.as_deref()))
    .bind(touch.map(|t| t.at_us))
    .bind(conversion.amount_cents)
    .bind(i64::from(conversion.first_order))
    .bind(conversion.at_us)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Takes a refund off the order's revenue, never below nothing; `0` refunds the whole order.
pub async fn refund(
    conn: &mut AnyConnection,
    tenant_id: &str,
    order_id: &str,
    refunded_cents: i64,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE conversions SET refunded_cents = CASE \
         WHEN $3 <= 0 OR refunded_cents + $3 >= amount_cents THEN amount_cents \
         ELSE refunded_cents + $3 END WHERE tenant_id = $1 AND order_id = $2",
    )
    .bind(tenant_id)
    .bind(order_id)
    .bind(refunded_cents)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the user's id on their orders with an unlinkable one, so that totals stay and the
/// person is gone; removes their engagements.
pub async fn anonymise(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<u64, CampaignError> {
    let anonymous = format!("erased:{}", uuid::Uuid::new_v4());
    let changed =
        sqlx::query("UPDATE conversions SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .bind(anonymous)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    let removed = sqlx::query("DELETE FROM engagements WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(changed + removed)
}

/// Per arm of a campaign (holdout, variant id): what the report counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArmTotals {
    pub audience: u64,
    pub sent: u64,
    pub sent_users: u64,
    /// Sends not sent, by state and rule (`dropped:frequency_cap` …).
    pub held: Vec<(String, u64)>,
    pub impressed_users: u64,
    pub clicked_users: u64,
    pub converted_users: u64,
    pub orders: u64,
    pub first_orders: u64,
    pub repeat_buyers: u64,
    pub revenue_cents: i64,
    /// Sum over converted users of their revenue squared (cents²), for the variance.
    pub revenue_sq_sum: f64,
    pub coupon_cost_cents: i64,
}

/// Key of an arm in the report: held out or not, and the variant.
pub type ArmKey = (bool, String);

async fn grouped(
    db: &socialops_storage::Db,
    sql: &'static str,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<Vec<sqlx::any::AnyRow>, CampaignError> {
    Ok(sqlx::query(sql)
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_all(db.pool())
        .await?)
}

fn cents(value: Option<i64>) -> i64 {
    value.unwrap_or(0)
}

/// A user's arm: their first journey through the campaign (assignment is sticky, so every later
/// one is in the same arm).
const AUDIENCE: &str = "SELECT holdout, variant_id, COUNT(*) FROM journeys \
     WHERE tenant_id = $1 AND campaign_id = $2 AND occurrence = 1 GROUP BY holdout, variant_id";
/// Read from `sends_report` alone, in its order, so the distinct users need no sort.
const SENDS: &str = "SELECT variant_id, state, rule, COUNT(*), COUNT(DISTINCT user_id) FROM sends \
     WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY variant_id, state, rule \
     ORDER BY variant_id, state, rule";
const ENGAGEMENTS: &str = "SELECT variant_id, kind, COUNT(DISTINCT user_id) FROM engagements \
     WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY variant_id, kind";
const CONVERSIONS: &str = "SELECT arm, variant_id, COUNT(*), CAST(SUM(orders) AS BIGINT), \
     CAST(SUM(first_orders) AS BIGINT), \
     CAST(SUM(CASE WHEN orders > 1 THEN 1 ELSE 0 END) AS BIGINT), \
     CAST(SUM(revenue) AS BIGINT), \
     CAST(SUM(CAST(revenue AS DOUBLE PRECISION) * revenue) AS DOUBLE PRECISION) \
     FROM (SELECT arm, variant_id, user_id, COUNT(*) AS orders, \
     CAST(SUM(first_order) AS BIGINT) AS first_orders, \
     CAST(SUM(amount_cents - refunded_cents) AS BIGINT) AS revenue FROM conversions \
     WHERE tenant_id = $1 AND campaign_id = $2 AND arm IN ('variant', 'holdout') \
     GROUP BY arm, variant_id, user_id) AS per_user GROUP BY arm, variant_id";
const COUPON_COST: &str = "SELECT s.variant_id, CAST(SUM(c.discount_cents) AS BIGINT) \
     FROM coupons c JOIN sends s ON s.send_key = c.issue_key WHERE c.tenant_id = $1 \
     AND c.campaign_id = $2 AND c.redeemed_at_us IS NOT NULL GROUP BY s.variant_id";

/// The campaign's totals per arm: five grouped statements over its journeys, sends, engagements,
/// conversions and coupons, run at once on connections of the pool.
pub async fn campaign_totals(
    db: &socialops_storage::Db,
    tenant_id: &str,
    campaign_id: &str,
) -> Result<std::collections::BTreeMap<ArmKey, ArmTotals>, CampaignError> {
    let (audience, sends, engagements, conversions, coupon_cost) = tokio::try_join!(
        grouped(db, AUDIENCE, tenant_id, campaign_id),
        grouped(db, SENDS, tenant_id, campaign_id),
        grouped(db, ENGAGEMENTS, tenant_id, campaign_id),
        grouped(db, CONVERSIONS, tenant_id, campaign_id),
        grouped(db, COUPON_COST, tenant_id, campaign_id),
    )?;
    let mut arms: std::collections::BTreeMap<ArmKey, ArmTotals> = Default::default();
    for row in audience {
        let holdout: i64 = row.try_get(0)?;
        let arm = arms.entry((holdout != 0, row.try_get(1)?)).or_default();
        arm.audience = count(row.try_get(2)?);
    }
    for row in sends {
        let arm = arms.entry((false, row.try_get(0)?)).or_default();
        let state: String = row.try_get(1)?;
        let rule: Option<String> = row.try_get(2)?;
        let n = count(row.try_get(3)?);
        if state == "sent" {
            arm.sent += n;
            arm.sent_users += count(row.try_get(4)?);
        } else {
            let name = match rule {
                Some(rule) => format!("{state}:{rule}"),
                None => state,
            };
            arm.held.push((name, n));
        }
    }
    for row in engagements {
        let arm = arms.entry((false, row.try_get(0)?)).or_default();
        let kind: String = row.try_get(1)?;
        let n = count(row.try_get(2)?);
        match kind.as_str() {
            "impression" => arm.impressed_users = n,
            "click" => arm.clicked_users = n,
            _ => {}
        }
    }
    for row in conversions {
        let arm_name: String = row.try_get(0)?;
        let arm = arms
            .entry((arm_name == "holdout", row.try_get(1)?))
            .or_default();
        arm.converted_users = count(row.try_get(2)?);
        arm.orders = count(cents(row.try_get(3)?));
        arm.first_orders = count(cents(row.try_get(4)?));
        arm.repeat_buyers = count(cents(row.try_get(5)?));
        arm.revenue_cents = cents(row.try_get(6)?);
        arm.revenue_sq_sum = row.try_get::<Option<f64>, _>(7)?.unwrap_or(0.0);
    }
    for row in coupon_cost {
        let arm = arms.entry((false, row.try_get(0)?)).or_default();
        arm.coupon_cost_cents = cents(row.try_get(1)?);
    }
    Ok(arms)
}

/// Users per arm, `(holdout, variant)`, whose first journey began before `before_us`: the audience
/// an experiment's split is checked on once a roll-out sends every new entrant to one variant.
pub async fn audience_before(
    db: &socialops_storage::Db,
    tenant_id: &str,
    campaign_id: &str,
    before_us: i64,
) -> Result<std::collections::BTreeMap<ArmKey, u64>, CampaignError> {
    let rows = sqlx::query(
        "SELECT holdout, variant_id, COUNT(*) FROM journeys WHERE tenant_id = $1 \
         AND campaign_id = $2 AND occurrence = 1 AND entered_at_us < $3 GROUP BY holdout, variant_id",
    )
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(before_us)
    .fetch_all(db.pool())
    .await?;
    let mut arms = std::collections::BTreeMap::new();
    for row in rows {
        let holdout: i64 = row.try_get(0)?;
        arms.insert((holdout != 0, row.try_get(1)?), count(row.try_get(2)?));
    }
    Ok(arms)
}

const TENANT_USERS: &str = "SELECT CASE WHEN state = 'sent' THEN 'treated' ELSE 'control' END, \
     COUNT(DISTINCT user_id), COUNT(*) FROM sends WHERE tenant_id = $1 AND campaign_id <> 'faq' \
     AND (state = 'sent' OR (state = 'dropped' AND rule = 'control_group')) \
     GROUP BY CASE WHEN state = 'sent' THEN 'treated' ELSE 'control' END";
const TENANT_CONVERSIONS: &str = "SELECT arm, COUNT(*), CAST(SUM(orders) AS BIGINT), \
     CAST(SUM(first_orders) AS BIGINT), \
     CAST(SUM(CASE WHEN orders > 1 THEN 1 ELSE 0 END) AS BIGINT), \
     CAST(SUM(revenue) AS BIGINT), \
     CAST(SUM(CAST(revenue AS DOUBLE PRECISION) * revenue) AS DOUBLE PRECISION) \
     FROM (SELECT arm, user_id, COUNT(*) AS orders, CAST(SUM(first_order) AS BIGINT) AS first_orders, \
     CAST(SUM(amount_cents - refunded_cents) AS BIGINT) AS revenue FROM conversions \
     WHERE tenant_id = $1 AND arm IN ('variant', 'control') GROUP BY arm, user_id) AS per_user \
     GROUP BY arm";
const TENANT_COUPON_COST: &str = "SELECT CAST(COALESCE(SUM(discount_cents), 0) AS BIGINT) \
     FROM coupons WHERE tenant_id = $1 AND redeemed_at_us IS NOT NULL";

/// The tenant's totals over all campaigns: `treated` (users sent to) and `control` (users the
/// global control group kept a send from), and the cost of every redeemed coupon.
pub async fn tenant_totals(
    db: &socialops_storage::Db,
    tenant_id: &str,
) -> Result<(ArmTotals, ArmTotals, i64), CampaignError> {
    let one = |sql: &'static str| async move {
        sqlx::query(sql).bind(tenant_id).fetch_all(db.pool()).await
    };
    let (users, conversions, cost) = tokio::try_join!(
        one(TENANT_USERS),
        one(TENANT_CONVERSIONS),
        one(TENANT_COUPON_COST)
    )?;
    let (mut treated, mut control) = (ArmTotals::default(), ArmTotals::default());
    for row in users {
        let arm: String = row.try_get(0)?;
        let totals = if arm == "treated" {
            &mut treated
        } else {
            &mut control
        };
        totals.audience = count(row.try_get(1)?);
        totals.sent_users = totals.audience;
        if arm == "treated" {
            totals.sent = count(row.try_get(2)?);
        } else {
            totals
                .held
                .push(("dropped:control_group".into(), count(row.try_get(2)?)));
        }
    }
    for row in conversions {
        let arm: String = row.try_get(0)?;
        let totals = if arm == "variant" {
            &mut treated
        } else {
            &mut control
        };
        totals.converted_users = count(row.try_get(1)?);
        totals.orders = count(cents(row.try_get(2)?));
        totals.first_orders = count(cents(row.try_get(3)?));
        totals.repeat_buyers = count(cents(row.try_get(4)?));
        totals.revenue_cents = cents(row.try_get(5)?);
        totals.revenue_sq_sum = row.try_get::<Option<f64>, _>(6)?.unwrap_or(0.0);
    }
    let coupon_cost = match cost.first() {
        Some(row) => cents(row.try_get(0)?),
        None => 0,
    };
    treated.coupon_cost_cents = coupon_cost;
    Ok((treated, control, coupon_cost))
}
