//! The engine every door calls: it owns the store, the clock and the outbox notifier, and runs
//! journeys. Its use cases live in their own modules: [`crate::react`] (profile changes and events
//! enter and move journeys), [`crate::decide`] (sends under pressure rules, published once),
//! [`crate::reply`] (FAQ answers), [`crate::pause`] (crisis pauses), [`crate::manage`] (campaign
//! lifecycle, review, settings) and [`crate::sweep`] (timers, delayed sends, scheduled entries).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use socialops_bus::OutgoingMessage;
use socialops_proto::campaigns::v1 as wire;
use socialops_storage::clock::Clock;
use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::domain::assign;
use crate::domain::definition::Facts;
use crate::domain::journey::{self, Effect, JourneyState};
use crate::domain::tenant::{Severity, TenantSettings, send_key};
use crate::error::CampaignError;
use crate::reply::TenantFaqs;
use crate::store::campaigns::CampaignRecord;
use crate::store::journeys::JourneyRecord;
use crate::store::sends::{DecisionRecord, SendRecord, SendState};
use crate::store::users::UserRecord;
use crate::store::{CampaignStore, campaigns, journeys, sends, tenants};
use crate::time::{from_micros, micros};

pub struct Engine {
    pub(crate) store: CampaignStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) campaigns_topic: String,
    pub(crate) outbox: Arc<Notify>,
    /// FAQ matchers per tenant, rebuilt when the tenant's entries change through this process and
    /// at most `FAQ_REFRESH_US` old otherwise (another replica may have changed them).
    pub(crate) faqs: Mutex<HashMap<String, (i64, Arc<TenantFaqs>)>>,
}

pub(crate) const FAQ_REFRESH_US: i64 = 5_000_000;

impl Engine {
    pub fn new(
        store: CampaignStore,
        clock: Arc<dyn Clock>,
        campaigns_topic: String,
        outbox: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            clock,
            campaigns_topic,
            outbox,
            faqs: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &CampaignStore {
        &self.store
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        from_micros(self.clock.now_us())
    }

    /// Enqueues the batch's messages, commits, and wakes the relay.
    pub(crate) async fn commit(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        batch: Batch,
    ) -> Result<BatchOutcome, CampaignError> {
        for (tenant_id, campaign_id, user_id, exit) in &batch.exits {
            sends::record_decision(&mut tx, tenant_id, campaign_id, user_id, exit).await?;
        }
        socialops_bus::Outbox::enqueue(&mut tx, &batch.outgoing).await?;
        tx.commit().await?;
        if !batch.outgoing.is_empty() {
            self.outbox.notify_one();
        }
        Ok(batch.outcome)
    }
}

/// What one transaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub entered: u64,
    pub sent: u64,
    pub delayed: u64,
    pub dropped: u64,
    pub held: u64,
}

/// What one transaction has read and decided so far: tenant settings and campaigns read once,
/// sends waiting for a decision, messages to publish.
pub(crate) struct Batch {
    pub now: DateTime<Utc>,
    pub now_us: i64,
    settings: HashMap<String, Arc<TenantSettings>>,
    campaigns: HashMap<(String, String), Option<Arc<CampaignRecord>>>,
    crises: HashMap<String, Option<(String, Severity)>>,
    peaks: HashMap<String, Option<u8>>,
    /// Sends to decide before commit.
    pub pending: Vec<SendRecord>,
    pub outgoing: Vec<OutgoingMessage>,
    /// Exit decisions, written last.
    pub exits: Vec<(String, String, String, DecisionRecord)>,
    pub outcome: BatchOutcome,
}

impl Batch {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            now_us: micros(now),
            settings: HashMap::new(),
            campaigns: HashMap::new(),
            crises: HashMap::new(),
            peaks: HashMap::new(),
            pending: Vec::new(),
            outgoing: Vec::new(),
            exits: Vec::new(),
            outcome: BatchOutcome::default(),
        }
    }

    pub async fn settings(
        &mut self,
        conn: &mut AnyConnection,
        tenant_id: &str,
    ) -> Result<Arc<TenantSettings>, CampaignError> {
        if let Some(settings) = self.settings.get(tenant_id) {
            return Ok(settings.clone());
        }
        let settings = Arc::new(tenants::settings(conn, tenant_id).await?);
        self.settings.insert(tenant_id.to_owned(), settings.clone());
        Ok(settings)
    }

    pub async fn campaign(
        &mut self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        campaign_id: &str,
    ) -> Result<Option<Arc<CampaignRecord>>, CampaignError> {
        let key = (tenant_id.to_owned(), campaign_id.to_owned());
        if let Some(campaign) = self.campaigns.get(&key) {
            return Ok(campaign.clone());
        }
        let campaign = campaigns::get(conn, tenant_id, campaign_id)
            .await?
            .map(Arc::new);
        self.campaigns.insert(key, campaign.clone());
        Ok(campaign)
    }

    /// The tenant's most severe open crisis.
    pub async fn crisis(
        &mut self,
        conn: &mut AnyConnection,
        tenant_id: &str,
    ) -> Result<Option<(String, Severity)>, CampaignError> {
        if let Some(crisis) = self.crises.get(tenant_id) {
            return Ok(crisis.clone());
        }
        let crisis = tenants::open_crises(conn, tenant_id)
            .await?
            .into_iter()
            .next();
        self.crises.insert(tenant_id.to_owned(), crisis.clone());
        Ok(crisis)
    }

    pub async fn peak_hour(
        &mut self,
        conn: &mut AnyConnection,
        tenant_id: &str,
    ) -> Result<Option<u8>, CampaignError> {
        if let Some(peak) = self.peaks.get(tenant_id) {
            return Ok(*peak);
        }
        let peak = tenants::peak_hour(conn, tenant_id).await?;
        self.peaks.insert(tenant_id.to_owned(), peak);
        Ok(peak)
    }
}

/// The user's time zone: their own when known, else the tenant's.
pub(crate) fn time_zone(user: &UserRecord, settings: &TenantSettings) -> Tz {
    user.time_zone
        .as_deref()
        .and_then(|name| name.parse().ok())
        .unwrap_or(settings.pressure.time_zone)
}

pub(crate) fn facts_of(user: &UserRecord) -> Facts {
    Facts {
        stage: user.stage,
        tier: user.tier,
        ..Facts::default()
    }
}

impl Engine {
    /// Enters the user into the campaign's journey if its re-entry rule allows, and runs the journey
    /// to its first wait. Returns whether the user entered (held-out users enter and exit at once).
    pub(crate) async fn enter(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        campaign: &CampaignRecord,
        user_id: &str,
        user: &UserRecord,
    ) -> Result<bool, CampaignError> {
        let (tenant_id, campaign_id) = (&campaign.tenant_id, &campaign.campaign_id);
        let latest = journeys::latest(conn, tenant_id, campaign_id, user_id).await?;
        let allowed = journey::may_reenter(
            &campaign.spec.reentry,
            latest.as_ref().map(|j| from_micros(j.entered_at_us)),
            latest.as_ref().is_some_and(|j| j.exited_at_us.is_some()),
            batch.now,
        );
        if !allowed {
            return Ok(false);
        }
        let occurrence = latest.map_or(1, |j| j.occurrence + 1);
        let settings = batch.settings(conn, tenant_id).await?;
        let tz = time_zone(user, &settings);
        let holdout = assign::in_holdout(tenant_id, campaign_id, user_id, campaign.spec.holdout);
        let weights: Vec<(&str, u32)> = campaign
            .spec
            .variants
            .iter()
            .map(|v| (v.id.as_str(), v.weight))
            .collect();
        let variant = assign::pick_variant(tenant_id, campaign_id, user_id, &weights).to_owned();
        let (state, effects) = if holdout {
            (
                JourneyState {
                    step: 0,
                    waiting: None,
                    facts: facts_of(user),
                    variant: variant.clone(),
                    entered_at: batch.now,
                    exited: None,
                },
                Vec::new(),
            )
        } else {
            journey::enter(&campaign.spec, &variant, facts_of(user), batch.now, tz)
        };
        let mut record = JourneyRecord {
            tenant_id: tenant_id.clone(),
            campaign_id: campaign_id.clone(),
            user_id: user_id.to_owned(),
            occurrence,
            holdout,
            variant_id: variant,
            step_id: String::new(),
            state,
            entered_at_us: batch.now_us,
            due_at_us: None,
            exited_at_us: holdout.then_some(batch.now_us),
            exit_reason: holdout.then(|| "holdout".to_owned()),
        };
        sends::record_decision(
            conn,
            tenant_id,
            campaign_id,
            user_id,
            &DecisionRecord {
                outcome: if holdout { "not_entered" } else { "entered" }.into(),
                rule: holdout.then(|| "holdout".to_owned()),
                detail: holdout.then(|| {
                    format!(
                        "held out: {:.0} % of entrants get nothing, to measure the lift",
                        campaign.spec.holdout * 100.0
                    )
                }),
                ..decision(batch.now_us)
            },
        )
        .await?;
        self.apply(conn, batch, campaign, &mut record, effects, true)
            .await?;
        batch.outcome.entered += 1;
        Ok(true)
    }

    /// Turns journey effects into sends waiting for a decision and exits, then stores the journey.
    pub(crate) async fn apply(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        campaign: &CampaignRecord,
        record: &mut JourneyRecord,
        effects: Vec<Effect>,
        new: bool,
    ) -> Result<(), CampaignError> {
        for effect in effects {
            match effect {
                Effect::Send {
                    step_id,
                    text,
                    action,
                    ..
                } => {
                    let send =
                        self.journey_send(batch, campaign, record, &step_id, text, action)?;
                    if sends::insert_new(conn, &send).await? {
                        batch.pending.push(send);
                    }
                }
                Effect::Exited(reason) => {
                    record.exited_at_us = Some(batch.now_us);
                    record.exit_reason = Some(reason.as_str().to_owned());
                    // Recorded after the sends of this transaction are decided, so the story of a
                    // journey reads in order: its last message, then its exit.
                    batch.exits.push((
                        record.tenant_id.clone(),
                        record.campaign_id.clone(),
                        record.user_id.clone(),
                        DecisionRecord {
                            outcome: "exited".into(),
                            detail: Some(format!("left the journey: {}", reason.as_str())),
                            ..decision(batch.now_us)
                        },
                    ));
                }
            }
        }
        record.step_id = if record.exited_at_us.is_some() {
            String::new()
        } else {
            campaign
                .spec
                .steps
                .get(record.state.step)
                .map(|s| s.id().to_owned())
                .unwrap_or_default()
        };
        record.due_at_us = if record.exited_at_us.is_some() {
            None
        } else {
            journey::due_at(&record.state).map(micros)
        };
        if new {
            journeys::insert(conn, record).await?;
        } else {
            journeys::save(conn, record).await?;
        }
        Ok(())
    }

    fn journey_send(
        &self,
        batch: &Batch,
        campaign: &CampaignRecord,
        record: &JourneyRecord,
        step_id: &str,
        text: String,
        action: Option<crate::domain::definition::Action>,
    ) -> Result<SendRecord, CampaignError> {
        let key = send_key(
            &record.tenant_id,
            &record.campaign_id,
            step_id,
            &record.user_id,
            &record.occurrence.to_string(),
        );
        let body = wire::Send {
            send_key: key.clone(),
            campaign_id: record.campaign_id.clone(),
            campaign_name: campaign.spec.name.clone(),
            step_id: step_id.to_owned(),
            occurrence: record.occurrence,
            variant_id: record.variant_id.clone(),
            channel: crate::api::convert::channel(campaign.spec.channel) as i32,
            kind: crate::api::convert::kind(campaign.spec.kind) as i32,
            text,
            action: action.map(crate::api::convert::action),
            ..Default::default()
        };
        Ok(SendRecord {
            send_key: key,
            tenant_id: record.tenant_id.clone(),
            campaign_id: record.campaign_id.clone(),
            user_id: record.user_id.clone(),
            step_id: step_id.to_owned(),
            occurrence: record.occurrence,
            variant_id: record.variant_id.clone(),
            channel: campaign.spec.channel,
            kind: campaign.spec.kind,
            body: serde_json::to_string(&body)
                .map_err(|e| CampaignError::Runtime(format!("send body: {e}")))?,
            state: SendState::Delayed,
            rule: None,
            first_ready_at_us: batch.now_us,
            due_at_us: Some(batch.now_us),
            decided_at_us: None,
            created_at_us: batch.now_us,
        })
    }
}

/// A decision record at `at_us` with nothing else said yet.
pub(crate) fn decision(at_us: i64) -> DecisionRecord {
    DecisionRecord {
        send_key: None,
        step_id: None,
        outcome: String::new(),
        rule: None,
        detail: None,
        until_us: None,
        at_us,
    }
}
