//! The engine every door calls: it owns the store, the clock and the outbox notifier, and runs
//! journeys. Its use cases live in their own modules: [`crate::react`] (profile changes and events
//! enter and move journeys), [`crate::decide`] (sends under pressure rules, published once),
//! [`crate::reply`] (FAQ answers), [`crate::pause`] (crisis pauses), [`crate::manage`] (campaign
//! lifecycle, review, settings) and [`crate::sweep`] (timers, delayed sends, scheduled entries).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
use crate::domain::pressure::PastSend;
use crate::domain::tenant::{Severity, TenantSettings, send_key};
use crate::error::CampaignError;
use crate::reply::TenantFaqs;
use crate::store::campaigns::CampaignRecord;
use crate::store::journeys::JourneyRecord;
use crate::store::sends::{DecisionRecord, SendRecord, SendState};
use crate::store::users::UserRecord;
use crate::store::{CampaignStore, UserKey, campaigns, journeys, sends, tenants, users};
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

    /// Writes what the batch decided, a statement per table: new and changed journeys, new sends
    /// (a send whose key another transaction took is neither recorded nor published), decisions in
    /// their order, users, segment members, and the messages to publish; then commits and wakes the
    /// relay.
    pub(crate) async fn commit(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        mut batch: Batch,
    ) -> Result<BatchOutcome, CampaignError> {
        let new_journeys: Vec<&JourneyRecord> = batch
            .journey_writes
            .values()
            .filter(|(_, new)| *new)
            .map(|(record, _)| record)
            .collect();
        journeys::insert_all(&mut tx, &new_journeys).await?;
        for (record, new) in batch.journey_writes.values() {
            if !new {
                journeys::save(&mut tx, record).await?;
            }
        }
        let inserted = sends::insert_new_all(&mut tx, &batch.new_sends).await?;
        let unstored = std::mem::take(&mut batch.unstored);
        let lost = |key: &Option<String>| {
            key.as_ref()
                .is_some_and(|k| unstored.contains(k) && !inserted.contains(k))
        };
        let lost_sent = batch
            .new_sends
            .iter()
            .filter(|s| s.state == SendState::Sent && !inserted.contains(&s.send_key))
            .count() as u64;
        batch.outcome.sent -= lost_sent.min(batch.outcome.sent);
        let decisions: Vec<(&str, &str, &str, &DecisionRecord)> = batch
            .decisions
            .iter()
            .chain(&batch.exits)
            .filter(|(_, _, _, d)| !lost(&d.send_key))
            .map(|(t, c, u, d)| (t.as_str(), c.as_str(), u.as_str(), d))
            .collect();
        sends::record_decisions(&mut tx, &decisions).await?;
        let dirty: Vec<(&UserKey, &UserRecord)> = batch
            .dirty_users
            .iter()
            .filter_map(|key| batch.users.get(key).map(|user| (key, user)))
            .collect();
        users::save_all(&mut tx, &dirty).await?;
        campaigns::set_segment_members(&mut tx, &batch.members).await?;
        let outgoing: Vec<OutgoingMessage> = std::mem::take(&mut batch.outgoing)
            .into_iter()
            .filter(|(key, _)| !lost(key))
            .map(|(_, message)| message)
            .collect();
        socialops_bus::Outbox::enqueue(&mut tx, &outgoing).await?;
        tx.commit().await?;
        if !outgoing.is_empty() {
            self.outbox.notify_one();
        }
        Ok(batch.outcome)
    }
}

/// Records the messages' ids, `(tenant, id)`, as processed and tells message by message whether it
/// is seen for the first time: only those take effect, so a redelivered message changes nothing.
pub(crate) async fn first_seen<'a>(
    conn: &mut AnyConnection,
    ids: impl IntoIterator<Item = (&'a str, String)>,
    now_us: i64,
) -> Result<Vec<bool>, CampaignError> {
    let ids: Vec<(&str, String)> = ids.into_iter().collect();
    let refs: Vec<(&str, &str)> = ids.iter().map(|(t, k)| (*t, k.as_str())).collect();
    let mut new = socialops_storage::processed::mark_processed(conn, &refs, now_us).await?;
    Ok(ids
        .into_iter()
        .map(|(tenant, id)| new.remove(&(tenant.to_owned(), id)))
        .collect())
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

/// What one transaction has read and decided so far: tenant settings, campaigns and the users it
/// works on (locked, with their journeys and send history) read once, sends waiting for a
/// decision, and everything to write at commit.
pub(crate) struct Batch {
    pub now: DateTime<Utc>,
    pub now_us: i64,
    settings: HashMap<String, Arc<TenantSettings>>,
    campaigns: HashMap<(String, String), Option<Arc<CampaignRecord>>>,
    entries: HashMap<(String, &'static str, String), Vec<Arc<CampaignRecord>>>,
    crises: HashMap<String, Option<(String, Severity)>>,
    peaks: HashMap<String, Option<u8>>,
    /// Users loaded (and on PostgreSQL locked) in this transaction.
    users: HashMap<UserKey, UserRecord>,
    pub dirty_users: BTreeSet<UserKey>,
    /// The loaded users' open journeys and latest journey per campaign, as this batch left them.
    journeys: HashMap<UserKey, Vec<JourneyRecord>>,
    /// Journeys to write at commit, and whether each is new.
    journey_writes: BTreeMap<(String, String, String, u32), (JourneyRecord, bool)>,
    /// The loaded users' sends published within the longest history horizon.
    history: HashMap<UserKey, Vec<PastSend>>,
    /// Sends to decide before commit.
    pub pending: Vec<SendRecord>,
    /// Keys of the pending and decided sends not in the store yet.
    unstored: HashSet<String>,
    /// Decided sends not in the store yet, inserted at commit.
    pub new_sends: Vec<SendRecord>,
    /// Decisions in their order; one about a send not stored yet is kept only if the send is.
    pub decisions: Vec<(String, String, String, DecisionRecord)>,
    /// Messages to publish, each with the key of the unstored send it announces.
    pub outgoing: Vec<(Option<String>, OutgoingMessage)>,
    /// Exit decisions, written last.
    pub exits: Vec<(String, String, String, DecisionRecord)>,
    /// Segment entries (true) and exits, in order.
    pub members: Vec<(String, String, String, bool)>,
    pub outcome: BatchOutcome,
}

impl Batch {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            now_us: micros(now),
            settings: HashMap::new(),
            campaigns: HashMap::new(),
            entries: HashMap::new(),
            crises: HashMap::new(),
            peaks: HashMap::new(),
            users: HashMap::new(),
            dirty_users: BTreeSet::new(),
            journeys: HashMap::new(),
            journey_writes: BTreeMap::new(),
            history: HashMap::new(),
            pending: Vec::new(),
            unstored: HashSet::new(),
            new_sends: Vec::new(),
            decisions: Vec::new(),
            outgoing: Vec::new(),
            exits: Vec::new(),
            members: Vec::new(),
            outcome: BatchOutcome::default(),
        }
    }

    /// Loads and locks the users not loaded yet, with their journeys and send history: a few
    /// statements for the whole set, in `(tenant, user)` order.
    pub async fn load_users(
        &mut self,
        conn: &mut AnyConnection,
        keys: impl IntoIterator<Item = UserKey>,
    ) -> Result<(), CampaignError> {
        let mut missing: Vec<UserKey> = keys
            .into_iter()
            .filter(|key| !self.users.contains_key(key))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let mut horizon = chrono::Duration::zero();
        let tenants: BTreeSet<&str> = missing.iter().map(|(t, _)| t.as_str()).collect();
        let mut horizons = HashMap::new();
        for tenant_id in tenants {
            let settings = self.settings(conn, tenant_id).await?;
            let h = chrono::Duration::from_std(settings.pressure.history_horizon())
                .unwrap_or(chrono::Duration::days(8));
            horizon = horizon.max(h);
            horizons.insert(tenant_id.to_owned(), self.now - h);
        }
        let users = users::lock_all(conn, &missing).await?;
        let mut history =
            sends::history_of_users(conn, &missing, micros(self.now - horizon)).await?;
        for record in journeys::of_users(conn, &missing).await? {
            self.journeys
                .entry((record.tenant_id.clone(), record.user_id.clone()))
                .or_default()
                .push(record);
        }
        for key in missing {
            let user = users.get(&key).cloned().unwrap_or_default();
            let since = horizons.get(&key.0).copied().unwrap_or(self.now);
            let mut past = history.remove(&key).unwrap_or_default();
            past.retain(|p| p.at >= since);
            self.history.insert(key.clone(), past);
            self.users.insert(key, user);
        }
        Ok(())
    }

    /// A loaded user's record.
    pub fn user(&self, key: &UserKey) -> Result<&UserRecord, CampaignError> {
        self.users
            .get(key)
            .ok_or_else(|| CampaignError::Runtime(format!("user {}:{} not loaded", key.0, key.1)))
    }

    /// A loaded user's record, to change; it is written at commit.
    pub fn user_mut(&mut self, key: &UserKey) -> Result<&mut UserRecord, CampaignError> {
        self.dirty_users.insert(key.clone());
        self.users
            .get_mut(key)
            .ok_or_else(|| CampaignError::Runtime(format!("user {}:{} not loaded", key.0, key.1)))
    }

    /// A loaded user's sends published within the horizon, this batch's included.
    pub fn history_mut(&mut self, key: &UserKey) -> &mut Vec<PastSend> {
        self.history.entry(key.clone()).or_default()
    }

    /// A loaded user's journeys still under way, by campaign.
    pub fn open_journeys(&self, key: &UserKey) -> Vec<JourneyRecord> {
        self.journeys
            .get(key)
            .map(|all| {
                all.iter()
                    .filter(|j| j.exited_at_us.is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A loaded user's latest journey through the campaign.
    pub fn latest_journey(&self, key: &UserKey, campaign_id: &str) -> Option<&JourneyRecord> {
        self.journeys
            .get(key)?
            .iter()
            .filter(|j| j.campaign_id == campaign_id)
            .max_by_key(|j| j.occurrence)
    }

    /// Keeps the journey as the batch left it, to write at commit.
    pub fn put_journey(&mut self, record: &JourneyRecord, new: bool) {
        let key = (record.tenant_id.clone(), record.user_id.clone());
        if let Some(all) = self.journeys.get_mut(&key) {
            match all
                .iter_mut()
                .find(|j| j.campaign_id == record.campaign_id && j.occurrence == record.occurrence)
            {
                Some(existing) => *existing = record.clone(),
                None => all.push(record.clone()),
            }
        } else if self.users.contains_key(&key) {
            self.journeys.insert(key, vec![record.clone()]);
        }
        let write_key = (
            record.tenant_id.clone(),
            record.campaign_id.clone(),
            record.user_id.clone(),
            record.occurrence,
        );
        let new = new
            || self
                .journey_writes
                .get(&write_key)
                .is_some_and(|(_, was_new)| *was_new);
        self.journey_writes.insert(write_key, (record.clone(), new));
    }

    /// Queues a send that is not in the store yet for a decision.
    pub fn propose(&mut self, send: SendRecord) {
        if self.unstored.insert(send.send_key.clone()) {
            self.pending.push(send);
        }
    }

    pub fn is_unstored(&self, send_key: &str) -> bool {
        self.unstored.contains(send_key)
    }

    /// Records a decision, written at commit in the order recorded.
    pub fn decided(
        &mut self,
        tenant_id: &str,
        campaign_id: &str,
        user_id: &str,
        decision: DecisionRecord,
    ) {
        self.decisions.push((
            tenant_id.to_owned(),
            campaign_id.to_owned(),
            user_id.to_owned(),
            decision,
        ));
    }

    /// The running campaigns of the tenant that a message of this entry type and key may start.
    pub async fn running_by_entry(
        &mut self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        entry_type: &'static str,
        entry_key: &str,
    ) -> Result<Vec<Arc<CampaignRecord>>, CampaignError> {
        let key = (tenant_id.to_owned(), entry_type, entry_key.to_owned());
        if let Some(found) = self.entries.get(&key) {
            return Ok(found.clone());
        }
        let found: Vec<Arc<CampaignRecord>> =
            campaigns::running_by_entry(conn, tenant_id, entry_type, entry_key)
                .await?
                .into_iter()
                .map(Arc::new)
                .collect();
        self.entries.insert(key, found.clone());
        Ok(found)
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
        let key = (tenant_id.clone(), user_id.to_owned());
        batch.load_users(conn, [key.clone()]).await?;
        let latest = batch.latest_journey(&key, campaign_id).cloned();
        let allowed = journey::may_reenter(
            &campaign.spec.reentry,
            latest.as_ref().map(|j| from_micros(j.entered_at_us)),
            latest.as_ref().is_some_and(|j| j.exited_at_us.is_some()),
            batch.now,
        );
        if !allowed {
            return Ok(false);
        }
        let occurrence = latest.as_ref().map_or(1, |j| j.occurrence + 1);
        let settings = batch.settings(conn, tenant_id).await?;
        let tz = time_zone(user, &settings);
        let holdout = assign::in_holdout(tenant_id, campaign_id, user_id, campaign.spec.holdout);
        let weights: Vec<(&str, u32)> = campaign
            .spec
            .variants
            .iter()
            .map(|v| (v.id.as_str(), v.weight))
            .collect();
        // After a roll-out a new entrant gets the winner; one who entered before keeps the variant
        // they were assigned.
        let variant = match (&campaign.winner, &latest) {
            (Some(winner), None) => winner.clone(),
            _ => assign::pick_variant(tenant_id, campaign_id, user_id, &weights).to_owned(),
        };
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
        batch.decided(
            tenant_id,
            campaign_id,
            user_id,
            DecisionRecord {
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
        );
        self.apply(batch, campaign, &mut record, effects, true)?;
        batch.outcome.entered += 1;
        Ok(true)
    }

    /// Turns journey effects into sends waiting for a decision and exits, and keeps the journey
    /// to store at commit.
    pub(crate) fn apply(
        &self,
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
                    batch.propose(send);
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
        batch.put_journey(record, new);
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
