//! The sweep: journeys whose timer is due wake up, delayed sends are decided again, scheduled entries
//! fire, and members queued by a launch or a schedule enter. Each step is one transaction of at most
//! `sweep_batch` items; a tick keeps stepping while there is work, for a while.

use std::time::{Duration, Instant};

use socialops_storage::processed;
use sqlx::AnyConnection;

use crate::domain::definition::Entry;
use crate::domain::journey;
use crate::engine::{Batch, Engine, time_zone};
use crate::error::CampaignError;
use crate::store::{campaigns, journeys, sends};
use crate::time::micros;

/// How long one tick keeps working through a backlog before it lets the next tick come.
const TICK_BUDGET: Duration = Duration::from_secs(2);

/// Queued members a sweep step enters, as a multiple of its batch: entering a member adds rows to
/// the step's statements, not statements of its own.
const QUEUED_PER_BATCH: usize = 4;

/// How often processed message ids older than the deduplication window are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

pub struct Sweeper {
    pub engine: std::sync::Arc<Engine>,
    pub batch: usize,
    pub dedup_window: Duration,
    pub last_forget: std::sync::Mutex<Option<Instant>>,
    pub rollout_every: Duration,
    pub last_rollout_check: std::sync::Mutex<Option<Instant>>,
}

impl Sweeper {
    pub async fn tick(&self) -> Result<(), CampaignError> {
        let started = Instant::now();
        let forget = {
            let mut last = self.last_forget.lock().expect("sweeper lock");
            let due = last.is_none_or(|at| at.elapsed() >= FORGET_EVERY);
            if due {
                *last = Some(started);
            }
            due
        };
        if forget {
            let cutoff = processed::dedup_cutoff(self.engine.clock.now_us(), self.dedup_window);
            let forgotten = processed::forget_processed(self.engine.store.db(), cutoff).await?;
            if forgotten > 0 {
                tracing::debug!(forgotten, "processed message ids forgotten");
            }
        }
        let check_rollouts = {
            let mut last = self.last_rollout_check.lock().expect("sweeper lock");
            let due = last.is_none_or(|at| at.elapsed() >= self.rollout_every);
            if due {
                *last = Some(started);
            }
            due
        };
        if check_rollouts {
            self.engine.check_rollouts().await?;
        }
        loop {
            let did = self.engine.sweep_step(self.batch).await?;
            if did == 0 || started.elapsed() > TICK_BUDGET {
                return Ok(());
            }
        }
    }
}

impl Engine {
    /// One sweep step; returns how many items it handled.
    pub async fn sweep_step(&self, limit: usize) -> Result<usize, CampaignError> {
        let mut handled = self.wake_due(limit).await?;
        handled += self.redecide_due(limit).await?;
        handled += self.fire_entries(limit).await?;
        handled += self.enter_queued(limit * QUEUED_PER_BATCH).await?;
        Ok(handled)
    }

    async fn wake_due(&self, limit: usize) -> Result<usize, CampaignError> {
        let mut batch = Batch::new(self.now());
        let mut tx = self.store.db().begin_write().await?;
        let mut due = journeys::due(&mut tx, batch.now_us, limit).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let handled = due.len();
        due.sort_by(|a, b| (&a.tenant_id, &a.user_id).cmp(&(&b.tenant_id, &b.user_id)));
        batch
            .load_users(
                &mut tx,
                due.iter().map(|r| (r.tenant_id.clone(), r.user_id.clone())),
            )
            .await?;
        for mut record in due {
            let key = (record.tenant_id.clone(), record.user_id.clone());
            let user = batch.user(&key)?.clone();
            let Some(campaign) = batch
                .campaign(&mut tx, &record.tenant_id, &record.campaign_id)
                .await?
            else {
                continue;
            };
            let settings = batch.settings(&mut tx, &record.tenant_id).await?;
            let tz = time_zone(&user, &settings);
            let effects = journey::wake(&campaign.spec, &mut record.state, batch.now, tz);
            self.apply(&mut batch, &campaign, &mut record, effects, false)?;
        }
        self.decide_pending(&mut tx, &mut batch).await?;
        self.commit(tx, batch).await?;
        Ok(handled)
    }

    async fn redecide_due(&self, limit: usize) -> Result<usize, CampaignError> {
        let mut batch = Batch::new(self.now());
        let mut tx = self.store.db().begin_write().await?;
        let due = sends::due(&mut tx, batch.now_us, limit).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let handled = due.len();
        batch.pending = due;
        self.decide_pending(&mut tx, &mut batch).await?;
        self.commit(tx, batch).await?;
        Ok(handled)
    }

    /// Scheduled entries whose time has come queue the segment's members and set the next time.
    async fn fire_entries(&self, limit: usize) -> Result<usize, CampaignError> {
        let now = self.now();
        let mut tx = self.store.db().begin_write().await?;
        let due = campaigns::due_entries(&mut tx, micros(now), limit).await?;
        if due.is_empty() {
            return Ok(0);
        }
        for campaign in &due {
            let (tenant_id, campaign_id) = (&campaign.tenant_id, &campaign.campaign_id);
            let next = match &campaign.spec.entry {
                Entry::Schedule { segment_id, .. } => {
                    let queued = campaigns::queue_segment_members(
                        &mut tx,
                        tenant_id,
                        campaign_id,
                        segment_id,
                    )
                    .await?;
                    tracing::info!(tenant = %tenant_id, campaign = %campaign_id, queued, "scheduled entry fired");
                    let settings = crate::store::tenants::settings(&mut tx, tenant_id).await?;
                    campaign
                        .spec
                        .entry
                        .next_schedule_after(now, settings.pressure.time_zone)
                        .map(micros)
                }
                _ => None,
            };
            campaigns::set_next_entry(&mut tx, tenant_id, campaign_id, next).await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }

    /// Members queued by a launch or a schedule enter their campaign.
    async fn enter_queued(&self, limit: usize) -> Result<usize, CampaignError> {
        let mut batch = Batch::new(self.now());
        let mut tx = self.store.db().begin_write().await?;
        let queued = campaigns::with_queued_members(&mut tx, 16).await?;
        let mut handled = 0;
        for (tenant_id, campaign_id) in queued {
            if handled >= limit {
                break;
            }
            let Some(campaign) = campaigns::get(&mut tx, &tenant_id, &campaign_id).await? else {
                continue;
            };
            if campaign.status != crate::domain::campaign::Status::Running {
                continue;
            }
            let members =
                campaigns::take_launch_members(&mut tx, &tenant_id, &campaign_id, limit - handled)
                    .await?;
            handled += members.len();
            self.enter_members(&mut tx, &mut batch, &campaign, &members)
                .await?;
        }
        if handled == 0 {
            return Ok(0);
        }
        self.decide_pending(&mut tx, &mut batch).await?;
        self.commit(tx, batch).await?;
        Ok(handled)
    }

    async fn enter_members(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        campaign: &campaigns::CampaignRecord,
        members: &[String],
    ) -> Result<(), CampaignError> {
        batch
            .load_users(
                conn,
                members
                    .iter()
                    .map(|user_id| (campaign.tenant_id.clone(), user_id.clone())),
            )
            .await?;
        for user_id in members {
            let key = (campaign.tenant_id.clone(), user_id.clone());
            let user = batch.user(&key)?.clone();
            self.enter(conn, batch, campaign, user_id, &user).await?;
        }
        Ok(())
    }
}

impl Engine {
    /// Sweeps until nothing is due now; returns how many items it handled.
    pub async fn sweep_until_idle(&self, limit: usize) -> Result<usize, CampaignError> {
        let mut handled = 0;
        loop {
            match self.sweep_step(limit).await? {
                0 => return Ok(handled),
                n => handled += n,
            }
        }
    }
}
