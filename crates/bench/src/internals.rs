//! The one place a benchmark goes past a service's gRPC API and topics: the segmentation service's
//! tables and its RFM sweep, for the million-profile measurements ([`crate::segmentation`]).
//!
//! - The profiles are written straight into the store. A million users' histories through the
//!   canonical topic would take the better part of an hour at the measured fold rate before the first
//!   figure; generated in the database (`generate_series`) they take seconds. They are written as the
//!   service would have folded them: stages as the lifecycle rules give them, RFM scores and edges as
//!   the service computes them (nearest-rank quintiles are `percentile_disc`), so a recomputation at
//!   the same moment finds nothing to rescore, which cross-checks the two, and one a day later
//!   rescores the buyers whose scores moved.
//! - RFM recomputation is part of the service's clock-driven sweep, which no API starts, so it is
//!   called directly, on a manual clock that is moved a day on for the second run.
//! - Its baseline is the same quintiles as one `ntile` query on the same tables.

use std::sync::Arc;

use socialops_segmentation::config::TenantDirectory;
use socialops_segmentation::store::ProfileStore;
use socialops_segmentation::sweep::recompute_rfm;
use socialops_segmentation::update::Updater;
use socialops_segmentation::{ManualClock, SegmentationConfig};
use socialops_storage::{Backend, DatabaseConfig, Db, Row};
use tokio::sync::Notify;

/// Orders: 0 to 4 per profile (a fifth never ordered) over the last 400 days, one in 23 partly
/// refunded.
const ORDERS: &str =
    "INSERT INTO orders (tenant_id, profile_id, order_id, at_us, amount_cents, refunded_cents)
SELECT $1, 'u' || lpad(i::text, 7, '0'), 'o' || j,
       $2 - ((i * 7919 + j * 104729) % 400) * 86400000000 - (i % 86400) * 1000000,
       1000 + (i * 31 + j * 17) % 60000,
       CASE WHEN (i + j) % 23 = 0 THEN 500 ELSE 0 END
FROM generate_series(1, $3) AS i, generate_series(1, (i * 13) % 5) AS j";

/// Profiles with their order aggregates, counts, platforms and the stage the lifecycle rules give
/// them (default thresholds: new 30 days, loyal 3 orders in 180 days, churned after 90 quiet days).
const PROFILES: &str =
    "INSERT INTO profiles (tenant_id, profile_id, stage, tier, following, platforms,
    orders_count, orders_total_cents, refunded_cents, first_seen_at_us, last_seen_at_us,
    last_interaction_at_us, first_order_at_us, last_order_at_us, updated_at_us, count_comment,
    count_like, count_content_impression, count_follow, count_order_placed, doc)
SELECT $1, g.profile_id,
    CASE WHEN o.n IS NULL THEN 1
         WHEN $2 - GREATEST(o.last_at, g.last_interaction) >= 90 * 86400000000 THEN 5
         WHEN o.recent >= 3 THEN 4
         WHEN $2 - o.first_at < 30 * 86400000000 THEN 2
         ELSE 3 END,
    1, (g.i % 3 = 0)::int, 1 << (g.i % 7)::int,
    COALESCE(o.n, 0), COALESCE(o.total, 0), COALESCE(o.refunded, 0),
    LEAST(COALESCE(o.first_at, g.last_interaction), g.last_interaction - (g.i % 100) * 86400000000),
    GREATEST(COALESCE(o.last_at, g.last_interaction), g.last_interaction),
    g.last_interaction, o.first_at, o.last_at, $2,
    g.i % 20, (g.i * 7) % 30, (g.i * 11) % 50, (g.i % 3 = 0)::int, COALESCE(o.n, 0), '{}'
FROM (SELECT i, 'u' || lpad(i::text, 7, '0') AS profile_id,
             $2 - ((i * 6151) % 200) * 86400000000 AS last_interaction
      FROM generate_series(1, $3) AS i) g
LEFT JOIN (SELECT profile_id, COUNT(*) AS n, SUM(amount_cents) AS total,
                  SUM(refunded_cents) AS refunded, MIN(at_us) AS first_at, MAX(at_us) AS last_at,
                  COUNT(*) FILTER (WHERE at_us > $2 - 180 * 86400000000) AS recent
           FROM orders WHERE tenant_id = $1 GROUP BY profile_id) o ON o.profile_id = g.profile_id";

const ALIASES: &str = "INSERT INTO aliases (tenant_id, alias, profile_id)
SELECT $1, 'user:' || profile_id, profile_id FROM profiles WHERE tenant_id = $1";

/// One profile in ten says it has sensitive skin.
const TAGS: &str = "INSERT INTO profile_tags (tenant_id, profile_id, tag)
SELECT $1, profile_id, 'need:sensitive-skin' FROM profiles
WHERE tenant_id = $1 AND right(profile_id, 1) = '7'";

/// Each buyer's recency (as negated days, so that larger is better), frequency and net monetary
/// value in the 365-day window: the RFM inputs, on the same tables the service reads.
const VALUES: &str = "SELECT p.profile_id, -(($2 - p.last_order_at_us) / 86400000000) AS r,
       COALESCE(o.f, 0) AS f, COALESCE(o.m, 0) AS m
FROM profiles p LEFT JOIN (
    SELECT profile_id, COUNT(*) AS f, SUM(amount_cents - refunded_cents) AS m FROM orders
    WHERE tenant_id = $1 AND at_us > $2 - 365 * 86400000000 AND at_us <= $2 GROUP BY profile_id
) o ON o.profile_id = p.profile_id
WHERE p.tenant_id = $1 AND p.last_order_at_us IS NOT NULL";

/// Scores and tiers as the service gives them: nearest-rank edges, one plus the edges a value is
/// strictly above, the default tier thresholds. Stores the edges as the service does.
fn score_sql() -> String {
    let above = |v: &str, e: &str| {
        format!(
            "1 + ({v} > {e}[1])::int + ({v} > {e}[2])::int + ({v} > {e}[3])::int + ({v} > {e}[4])::int"
        )
    };
    format!(
        "WITH v AS ({VALUES}),
e AS (SELECT percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY r) AS re,
             percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY f) AS fe,
             percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY m) AS me,
             COUNT(*) AS n FROM v),
s AS (SELECT v.profile_id, {} AS rs, {} AS fs, {} AS ms FROM v, e),
t AS (INSERT INTO tenants (tenant_id, rfm_recency_days, rfm_frequency, rfm_monetary_cents,
          rfm_window_days, rfm_num_buyers, rfm_computed_at_us)
      SELECT $1, concat_ws(',', -re[1], -re[2], -re[3], -re[4]),
             array_to_string(fe, ','), array_to_string(me, ','), 365, n, $2 FROM e)
UPDATE profiles p SET rfm_r = s.rs, rfm_f = s.fs, rfm_m = s.ms,
    tier = CASE WHEN s.rs >= 4 AND s.fs >= 4 AND s.ms >= 4 THEN 5
                WHEN s.rs >= 4 AND s.ms >= 4 AND s.fs <= 3 THEN 4
                WHEN s.rs <= 2 AND s.ms <= 2 THEN 2
                ELSE 3 END
FROM s WHERE p.tenant_id = $1 AND p.profile_id = s.profile_id",
        above("v.r", "e.re"),
        above("v.f", "e.fe"),
        above("v.m", "e.me"),
    )
}

/// The baseline: quintiles by `ntile` over the same inputs, counted per (R, F, M) cell so that
/// nothing but the distribution leaves the database. `ntile` splits ties arbitrarily where the
/// service gives equal values equal scores, so the cells differ; the work is the same.
fn ntile_sql() -> String {
    format!(
        "SELECT rs, fs, ms, COUNT(*) FROM (
    SELECT ntile(5) OVER (ORDER BY r) AS rs, ntile(5) OVER (ORDER BY f) AS fs,
           ntile(5) OVER (ORDER BY m) AS ms FROM ({VALUES}) v
) s GROUP BY rs, fs, ms"
    )
}

/// The segmentation store of the running service, for one tenant.
pub struct SegmentationTables {
    db: Db,
    tenant: String,
}

impl SegmentationTables {
    pub async fn connect(database: &DatabaseConfig, tenant: &str) -> anyhow::Result<Self> {
        let db = Db::connect(database).await?;
        anyhow::ensure!(db.backend() == Backend::Postgres, "PostgreSQL only");
        Ok(Self {
            db,
            tenant: tenant.to_owned(),
        })
    }

    /// Writes `profiles` profiles with their orders, aliases, tags and RFM scores as of `now_us`;
    /// returns the number of orders.
    pub async fn generate(&self, profiles: usize, now_us: i64) -> anyhow::Result<i64> {
        let pool = self.db.pool();
        for statement in [ORDERS, PROFILES] {
            sqlx::query(statement)
                .bind(&self.tenant)
                .bind(now_us)
                .bind(profiles as i64)
                .execute(pool)
                .await?;
        }
        for statement in [ALIASES, TAGS] {
            sqlx::query(statement)
                .bind(&self.tenant)
                .execute(pool)
                .await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(score_sql()))
            .bind(&self.tenant)
            .bind(now_us)
            .execute(pool)
            .await?;
        sqlx::query("ANALYZE").execute(pool).await?;
        let num_orders: i64 = sqlx::query("SELECT COUNT(*) FROM orders WHERE tenant_id = $1")
            .bind(&self.tenant)
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        Ok(num_orders)
    }

    /// The baseline: the (R, F, M) cells of the `ntile` quintiles as of `now_us`; returns how many.
    pub async fn ntile_cells(&self, now_us: i64) -> anyhow::Result<usize> {
        let cells = sqlx::query(sqlx::AssertSqlSafe(ntile_sql()))
            .bind(&self.tenant)
            .bind(now_us)
            .fetch_all(self.db.pool())
            .await?;
        Ok(cells.len())
    }

    /// The service's RFM recomputation on a clock that starts at `now_us`.
    pub async fn rfm_sweep(
        &self,
        config: &SegmentationConfig,
        now_us: i64,
    ) -> anyhow::Result<RfmSweep> {
        let clock = ManualClock::new(now_us);
        let updater = Updater::new(
            ProfileStore::open(self.db.clone()).await?,
            TenantDirectory::from_config(config)?,
            Arc::new(clock.clone()),
            format!("socialops.profiles.v1.{}", self.tenant),
            Arc::new(Notify::new()),
        );
        Ok(RfmSweep {
            updater,
            clock,
            tenant: self.tenant.clone(),
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

pub struct RfmSweep {
    updater: Updater,
    clock: ManualClock,
    tenant: String,
}

/// What one recomputation did.
pub struct Recomputed {
    pub buyers: usize,
    /// Buyers whose score or tier changed, each with its `RfmChanged` queued for publishing.
    pub rescored: usize,
}

impl RfmSweep {
    pub async fn run(&self) -> anyhow::Result<Recomputed> {
        let run = recompute_rfm(&self.updater, &self.tenant).await?;
        Ok(Recomputed {
            buyers: run.buyers,
            rescored: run.rescored,
        })
    }

    pub fn set_now(&self, now_us: i64) {
        self.clock.set(now_us);
    }
}
