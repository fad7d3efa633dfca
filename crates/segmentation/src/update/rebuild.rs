//! Segment rebuilds: bringing a segment's membership in line with its rule after the segment is
//! created or its rule changes, whatever happens to the call that asked for it.
//!
//! The call writes the segment and its row in `segment_rebuilds` in one transaction, wakes the
//! rebuild loop ([`run`], a task beside the sweep) and waits, at most until shortly before its
//! deadline, for the row to go. The loop (also run every `sweep_interval`, which picks up what a
//! failure or a stopped process left) finds in one scan the profiles whose membership disagrees with
//! the rule and re-evaluates them a page per transaction, each page writing the memberships and
//! queueing their enters and leaves in the outbox together. A page is all or nothing and a profile it
//! has done no longer disagrees, so a rebuild cut off anywhere (the call cancelled, the process
//! killed) is finished by a later pass without announcing anything twice. The row is deleted once a
//! pass has re-evaluated every profile it found, and only if no rule change has replaced its request
//! since: a newer rule gets a pass of its own.

use std::sync::Arc;

use socialops_proto::profiles::v1 as wire;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::{REEVALUATE_PAGE, Updater};
use crate::error::SegmentationError;
use crate::store::segments::{self, PendingRebuild, SegmentRow};

/// The advisory lock `(class, key)` a replica holds while it finishes segment rebuilds (the sweep's
/// is `(class, 0)`): one replica rebuilds at a time, and a long sweep does not hold rebuilds up.
/// Passes of two replicas at once would still publish nothing twice, but do the work twice.
pub const REBUILD_LOCK: (i32, i32) = (0x5345_4731, 1);

/// How often a call waiting for a rebuild looks at the store when no wake-up comes: a rebuild finished
/// by another replica wakes nobody here.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// Finishes segment rebuilds until `shutdown`: at once when a call in this process records one, and
/// every `interval` (the sweep's) for those that a failure, another replica or a stopped process
/// left. A pass under way when shutdown comes stops between two pages.
pub async fn run(
    updater: Arc<Updater>,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<(), SegmentationError> {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = updater.rebuild_requested.notified() => {}
            _ = ticker.tick() => {}
        }
        if let Err(error) = updater.rebuild_exclusive(&shutdown).await {
            tracing::warn!(error = %error, "segment rebuilds failed, retrying next tick");
        }
    }
}

impl Updater {
    /// Creates the segment and records its rebuild in one transaction, then wakes the rebuild loop.
    pub async fn create_segment(&self, segment: &SegmentRow) -> Result<(), SegmentationError> {
        let mut tx = self.store.db().begin_write().await?;
        segments::insert_segment(&mut tx, segment).await?;
        segments::request_rebuild(
            &mut tx,
            &segment.tenant_id,
            &segment.segment_id,
            segment.created_at_us,
        )
        .await?;
        tx.commit().await?;
        self.rebuild_requested.notify_one();
        Ok(())
    }

    /// Replaces the segment's name, description and rule. A changed rule is written with the segment
    /// held ([`segments::lock_segment`]) and its rebuild recorded in the same transaction. Returns
    /// whether the segment exists.
    pub async fn update_segment(
        &self,
        segment: &SegmentRow,
        rule_changed: bool,
    ) -> Result<bool, SegmentationError> {
        let (tenant_id, segment_id) = (&segment.tenant_id, &segment.segment_id);
        let mut tx = self.store.db().begin_write().await?;
        if rule_changed && !segments::lock_segment(&mut tx, tenant_id, segment_id).await? {
            return Ok(false);
        }
        if !segments::update_segment(&mut tx, segment).await? {
            return Ok(false);
        }
        if rule_changed {
            segments::request_rebuild(&mut tx, tenant_id, segment_id, segment.updated_at_us)
                .await?;
        }
        tx.commit().await?;
        if rule_changed {
            self.rebuild_requested.notify_one();
        }
        Ok(true)
    }

    /// Waits until the segment has no rebuild pending, or until `deadline`; returns whether none is
    /// pending.
    pub async fn wait_rebuilt(
        &self,
        tenant_id: &str,
        segment_id: &str,
        deadline: Instant,
    ) -> Result<bool, SegmentationError> {
        loop {
            // Registered before looking, so that a rebuild finished in between still wakes this call.
            let finished = self.rebuild_finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let pending = {
                let mut conn = self.store.conn().await?;
                segments::is_rebuilding(&mut conn, tenant_id, segment_id).await?
            };
            if !pending {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::select! {
                () = &mut finished => {}
                () = tokio::time::sleep_until(deadline.min(now + WAIT_POLL)) => {}
            }
        }
    }

    /// Finishes the pending rebuilds unless another replica holds [`REBUILD_LOCK`]; returns how many
    /// it finished.
    pub async fn rebuild_exclusive(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<usize, SegmentationError> {
        let mut num_finished = 0;
        // Looking again after letting go of the lock: another replica may have recorded a rebuild
        // while it was held here, and left it to this one when it found the lock taken.
        loop {
            let pending = {
                let mut conn = self.store.conn().await?;
                segments::pending_rebuilds(&mut conn).await?
            };
            if pending.is_empty() || shutdown.is_cancelled() {
                return Ok(num_finished);
            }
            // Beside the pool: the pass needs pool connections while it holds the lock.
            let (class, key) = REBUILD_LOCK;
            let Some(rebuilding) = self
                .store
                .db()
                .try_exclusive_beside_pool(class, key)
                .await?
            else {
                tracing::debug!("another replica is rebuilding segments");
                return Ok(num_finished);
            };
            let rebuilt = self.rebuild_pending(shutdown).await;
            rebuilding.release().await;
            num_finished += rebuilt?;
        }
    }

    /// Finishes the pending rebuilds, oldest first, until none is left or `shutdown` is requested, and
    /// returns how many it finished. A rebuild that fails does not hold up the others; the first
    /// failure is returned after them. Passes of two replicas at once publish nothing twice (each page
    /// holds its profiles' rows and reads their memberships after taking them), but do the same work
    /// twice: replicas go through [`Self::rebuild_exclusive`].
    pub async fn rebuild_pending(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<usize, SegmentationError> {
        let mut num_finished = 0;
        loop {
            let pending = {
                let mut conn = self.store.conn().await?;
                segments::pending_rebuilds(&mut conn).await?
            };
            if pending.is_empty() {
                return Ok(num_finished);
            }
            let mut failure = None;
            for rebuild in &pending {
                if shutdown.is_cancelled() {
                    return Ok(num_finished);
                }
                match self.rebuild(rebuild, shutdown).await {
                    Ok(true) => num_finished += 1,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(
                            tenant = %rebuild.tenant_id,
                            segment = %rebuild.segment_id,
                            error = %error,
                            "segment rebuild failed"
                        );
                        failure.get_or_insert(error);
                    }
                }
            }
            if let Some(error) = failure {
                return Err(error);
            }
        }
    }

    /// One pass over a pending rebuild; returns whether it finished the rebuild (false when
    /// `shutdown` stopped it or a rule change replaced its request).
    async fn rebuild(
        &self,
        pending: &PendingRebuild,
        shutdown: &CancellationToken,
    ) -> Result<bool, SegmentationError> {
        let (tenant_id, segment_id) = (&pending.tenant_id, &pending.segment_id);
        let mut num_reevaluated = 0;
        match crate::domain::parse(&pending.rule) {
            Ok(rule) => {
                let mismatched = self
                    .store
                    .membership_mismatches(tenant_id, segment_id, &rule, self.clock.now_us())
                    .await?;
                for page in mismatched.chunks(REEVALUATE_PAGE) {
                    if shutdown.is_cancelled() {
                        return Ok(false);
                    }
                    self.reevaluate(tenant_id, page, wire::Cause::SegmentDefinition)
                        .await?;
                    num_reevaluated += page.len();
                }
            }
            // Evaluation leaves out a segment whose stored rule no longer parses: there is no
            // membership to build.
            Err(error) => {
                tracing::warn!(tenant = %tenant_id, segment = %segment_id, error = %error, "segment rule does not parse; rebuild dropped");
            }
        }
        let finished = {
            let mut conn = self.store.conn().await?;
            segments::finish_rebuild(&mut conn, tenant_id, segment_id, &pending.request_id).await?
        };
        if finished {
            self.rebuild_finished.notify_waiters();
            tracing::info!(tenant = %tenant_id, segment = %segment_id, reevaluated = num_reevaluated, "segment rebuilt");
        }
        Ok(finished)
    }
}
