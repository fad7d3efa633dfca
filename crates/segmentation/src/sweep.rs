//! What the clock changes without any event: the sweep re-evaluates profiles whose
//! `next_check_at_us` has come (a customer going quiet becomes churned, a `within 30d` segment loses
//! a member), recomputes each tenant's RFM quintile edges every `rfm_interval` and rescores the buyers
//! whose score moved, and appends segment size history points.
//!
//! Finding due profiles is one index range scan on `next_check_at_us`, which the event path and the
//! sweep set from [`crate::domain::next_stage_change_at`] and
//! [`crate::domain::next_membership_change_at`], so a tick costs in proportion to the profiles that
//! actually change, not to the number of profiles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use socialops_proto::profiles::v1::Cause;
use tokio_util::sync::CancellationToken;

use crate::domain::{RfmEdges, RfmValues};
use crate::error::SegmentationError;
use crate::store::ProfileQuery;
use crate::store::audience::{self, StoredEdges};
use crate::store::profiles::due_profiles;
use crate::store::segments::record_sizes;
use crate::update::Updater;

/// Profiles read per page while recomputing RFM edges.
const RFM_PAGE: usize = 5_000;

pub struct Sweeper {
    pub updater: Arc<Updater>,
    pub interval: Duration,
    pub batch: usize,
    pub rfm_interval: Duration,
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
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SegmentationError> {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {
                    if let Err(error) = self.tick().await {
                        tracing::warn!(error = %error, "sweep failed, retrying next tick");
                    }
                }
            }
        }
    }

    /// One pass: due profiles, then RFM edges that are due, then size history.
    pub async fn tick(&self) -> Result<(), SegmentationError> {
        let now_us = self.updater.now_us();
        loop {
            let due = {
                let mut conn = self.updater.store().conn().await?;
                due_profiles(&mut conn, now_us, self.batch).await?
            };
            let num_due = due.len();
            let mut by_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (tenant_id, profile_id) in due {
                by_tenant.entry(tenant_id).or_default().push(profile_id);
            }
            for (tenant_id, ids) in by_tenant {
                self.updater
                    .reevaluate(&tenant_id, &ids, Cause::Clock)
                    .await?;
            }
            if num_due < self.batch {
                break;
            }
        }
        let tenants = {
            let mut conn = self.updater.store().conn().await?;
            audience::tenants_with_buyers(&mut conn).await?
        };
        let rfm_interval_us = i64::try_from(self.rfm_interval.as_micros()).unwrap_or(i64::MAX);
        for (tenant_id, computed_at_us) in tenants {
            if computed_at_us.is_none_or(|at| now_us.saturating_sub(at) >= rfm_interval_us) {
                let run = recompute_rfm(&self.updater, &tenant_id, self.batch).await?;
                tracing::info!(
                    tenant = %tenant_id,
                    buyers = run.buyers,
                    rescored = run.rescored,
                    "rfm edges recomputed"
                );
            }
        }
        let mut conn = self.updater.store().conn().await?;
        record_sizes(&mut conn, now_us).await?;
        Ok(())
    }
}

/// Recomputes the tenant's RFM quintile edges from every buyer's orders at the current time, stores
/// them, and rescores (publishing `RfmChanged` and any segment changes) the buyers whose score or
/// tier moved. Reads every buyer once; writes only those that changed.
pub async fn recompute_rfm(
    updater: &Updater,
    tenant_id: &str,
    page_size: usize,
) -> Result<RfmRun, SegmentationError> {
    let now_us = updater.now_us();
    let rules = updater.tenant_rules(tenant_id);
    let store = updater.store();
    let mut values = Vec::new();
    let mut scored = Vec::new();
    let mut after: Option<String> = None;
    let mut conn = store.conn().await?;
    loop {
        let page = store
            .list_profiles(
                &mut conn,
                &ProfileQuery {
                    tenant_id,
                    after: after.as_deref(),
                    stage: None,
                    buyers_only: true,
                    limit: RFM_PAGE,
                },
            )
            .await?;
        for stored in &page {
            let p = &stored.state.profile;
            if let Some(v) = RfmValues::compute(&p.orders, p.last_order_at_us, &rules.rfm, now_us) {
                values.push(v);
                scored.push((p.user_id.clone(), p.rfm, p.tier, v));
            }
        }
        after = page.last().map(|s| s.state.profile.user_id.clone());
        if page.len() < RFM_PAGE {
            break;
        }
    }
    drop(conn);
    let Some(edges) = RfmEdges::compute(&values) else {
        return Ok(RfmRun {
            buyers: 0,
            rescored: 0,
            edges: None,
        });
    };
    let mut conn = store.conn().await?;
    audience::put_edges(
        &mut conn,
        tenant_id,
        &StoredEdges {
            edges,
            window_days: i64::from(rules.rfm.window_days),
            num_buyers: values.len() as i64,
            computed_at_us: now_us,
        },
    )
    .await?;
    drop(conn);
    let changed: Vec<String> = scored
        .into_iter()
        .filter(|(_, rfm, tier, v)| {
            let score = edges.score(v);
            *rfm != Some(score) || *tier != rules.tiers.tier(Some(score))
        })
        .map(|(id, ..)| id)
        .collect();
    for page in changed.chunks(page_size.max(1)) {
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
