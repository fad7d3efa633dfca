//! What the clock changes without any event. Every `sweep_interval` the sweep
//!
//! 1. re-evaluates the profiles whose `next_check_at_us` has come: the stage a quiet customer moves
//!    to (new → active, loyal → active, → churned) is known in advance, so finding them is one
//!    index range scan and costs in proportion to the profiles that change;
//! 2. reconciles every segment whose rule has a relative time (`last_order_at within 30d`): one
//!    scan in the database finds the profiles whose membership the clock changed;
//! 3. recomputes the RFM quintile edges of every tenant whose edges are older than `rfm_interval`
//!    and rescores the buyers whose score or tier moved;
//! 4. appends a size history point for every segment whose size changed;
//! 5. forgets the processed-event keys older than `dedup_window`.
//!
//! With several replicas on one PostgreSQL store, one sweeps at a time: a pass starts only when its
//! replica takes the store's sweep lock (a session advisory lock), and a replica that finds it taken
//! skips that tick. The row locks of every profile update keep even overlapping passes from
//! publishing a change twice; the lock keeps them from doing the same work twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use socialops_proto::profiles::v1::Cause;
use socialops_storage::processed;

use crate::domain::{RfmEdges, Rule};
use crate::error::SegmentationError;
use crate::store::audience::{self, StoredEdges};
use crate::store::profiles::due_profiles;
use crate::store::segments::{all_segments, record_sizes};
use crate::update::{REEVALUATE_PAGE, Updater};

/// The advisory lock `(class, key)` a replica holds while it sweeps.
pub const SWEEP_LOCK: (i32, i32) = (0x5345_4731, 0);

/// One pass of the sweep; the service skeleton runs it every `sweep_interval`.
pub struct Sweeper {
    pub updater: Arc<Updater>,
    pub batch: usize,
    pub rfm_interval: Duration,
    pub dedup_window: Duration,
}

/// What one RFM recomputation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmRun {
    pub buyers: usize,
    /// Buyers whose score or tier changed and were rescored.
    pub rescored: usize,
    pub edges: Option<RfmEdges>,
}

impl Sweeper {
    /// One pass, unless another replica is sweeping the same store; returns whether it ran.
    pub async fn tick_exclusive(&self) -> Result<bool, SegmentationError> {
        let (class, key) = SWEEP_LOCK;
        let Some(sweeping) = self.updater.store().db().try_exclusive(class, key).await? else {
            tracing::debug!("another replica is sweeping; this tick is skipped");
            return Ok(false);
        };
        let swept = self.tick().await;
        sweeping.release().await;
        swept.map(|()| true)
    }

    /// One pass: due profiles, time-dependent segments, RFM edges that are due, size history,
    /// expired processed-event keys.
    pub async fn tick(&self) -> Result<(), SegmentationError> {
        let updater = &self.updater;
        let now_us = updater.now_us();
        loop {
            let due = {
                let mut conn = updater.store().conn().await?;
                due_profiles(&mut conn, now_us, self.batch).await?
            };
            let num_due = due.len();
            let mut by_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (tenant_id, profile_id) in due {
                by_tenant.entry(tenant_id).or_default().push(profile_id);
            }
            for (tenant_id, ids) in by_tenant {
                updater.reevaluate(&tenant_id, &ids, Cause::Clock).await?;
            }
            if num_due < self.batch {
                break;
            }
        }

        let segments = {
            let mut conn = updater.store().conn().await?;
            all_segments(&mut conn).await?
        };
        for segment in segments {
            let time_dependent = crate::domain::parse(&segment.rule)
                .as_ref()
                .is_ok_and(Rule::is_time_dependent);
            if time_dependent {
                updater
                    .reconcile_segment(&segment.tenant_id, &segment.segment_id, Cause::Clock)
                    .await?;
            }
        }

        let rfm_interval_us = i64::try_from(self.rfm_interval.as_micros()).unwrap_or(i64::MAX);
        let due_tenants = {
            let mut conn = updater.store().conn().await?;
            audience::tenants_due_for_rfm(&mut conn, now_us.saturating_sub(rfm_interval_us)).await?
        };
        for tenant_id in due_tenants {
            let run = recompute_rfm(updater, &tenant_id).await?;
            tracing::info!(
                tenant = %tenant_id,
                buyers = run.buyers,
                rescored = run.rescored,
                "rfm edges recomputed"
            );
        }

        {
            let mut conn = updater.store().conn().await?;
            record_sizes(&mut conn, now_us).await?;
        }

        let cutoff = processed::dedup_cutoff(now_us, self.dedup_window);
        let forgotten = processed::forget_processed(updater.store().db(), cutoff).await?;
        if forgotten > 0 {
            tracing::debug!(forgotten, "expired processed-event keys deleted");
        }
        Ok(())
    }
}

/// Recomputes the tenant's RFM quintile edges from every buyer's orders at the current time, stores
/// them, and rescores (publishing `RfmChanged` and any segment changes) the buyers whose score or
/// tier moved. The database sums each buyer's orders in the window; the quintiles are computed here.
pub async fn recompute_rfm(
    updater: &Updater,
    tenant_id: &str,
) -> Result<RfmRun, SegmentationError> {
    let now_us = updater.now_us();
    let rules = updater.tenant_rules(tenant_id);
    let mut buyers = Vec::new();
    updater
        .store()
        .buyer_values(tenant_id, rules.rfm.window_days, now_us, |b| {
            buyers.push((b.profile_id.to_owned(), b.values, b.stored, b.stored_tier));
        })
        .await?;
    let values: Vec<_> = buyers.iter().map(|(_, v, ..)| *v).collect();
    let edges = RfmEdges::compute(&values);
    let stored = edges.map(|edges| StoredEdges {
        edges,
        window_days: i64::from(rules.rfm.window_days),
        num_buyers: values.len() as i64,
        computed_at_us: now_us,
    });
    {
        let mut conn = updater.store().conn().await?;
        audience::put_edges(&mut conn, tenant_id, stored.as_ref(), now_us).await?;
    }
    let Some(edges) = edges else {
        return Ok(RfmRun {
            buyers: 0,
            rescored: 0,
            edges: None,
        });
    };
    let changed: Vec<String> = buyers
        .into_iter()
        .filter(|(_, values, score, tier)| {
            let new = edges.score(values);
            *score != Some(new) || *tier != rules.tiers.tier(Some(new))
        })
        .map(|(id, ..)| id)
        .collect();
    for page in changed.chunks(REEVALUATE_PAGE) {
        updater
            .reevaluate(tenant_id, page, Cause::RfmRecompute)
            .await?;
    }
    Ok(RfmRun {
        buyers: values.len(),
        rescored: changed.len(),
        edges: Some(edges),
    })
}
