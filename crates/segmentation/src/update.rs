//! Where profiles change: canonical events folded in ([`Updater::apply_events`]), profiles
//! re-evaluated because time passed, RFM edges moved or a segment changed ([`Updater::reevaluate`],
//! [`Updater::reconcile_segment`], and the segment rebuilds of [`rebuild`]), and erasure
//! ([`Updater::erase`]). Each call is one transaction (or one per page) that writes the profiles,
//! their memberships, tags and transition log, and enqueues every resulting change for
//! `socialops.profiles.v1` in the outbox.

pub mod changes;
mod evaluate;
pub mod rebuild;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use socialops_bus::{Outbox, OutgoingMessage};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Alias, AliasKind, SocialEvent};
use socialops_proto::profiles::v1 as wire;
use sqlx::AnyConnection;
use tokio::sync::Notify;
use wire::profile_change::Change;

use crate::config::{TenantDirectory, TenantRules};
use crate::domain::state::{local_day, micros};
use crate::domain::{NeedTagRule, RfmEdges, RfmScore, Rule, Stage, ValueTier};
use crate::error::SegmentationError;
use crate::store::audience::{self, DailyCounts};
use crate::store::profiles::{self as profile_rows, StoredProfile};
use crate::store::{ProfileStore, ensure_tenant, segments, tags};
pub use changes::Cause;
pub use evaluate::matches;
use socialops_storage::clock::Clock;
use socialops_storage::processed;

/// Profiles re-evaluated per transaction when many change at once (a new segment, new RFM edges).
pub const REEVALUATE_PAGE: usize = 1_000;

/// The alias every user id is known by.
pub fn user_alias(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The alias an identify event links: kind, platform (for open ids) and the keyed hash.
pub fn identify_alias(alias: &Alias) -> Option<String> {
    if alias.value_hash.is_empty() {
        return None;
    }
    let kind = match AliasKind::try_from(alias.kind).ok()? {
        AliasKind::Unspecified => return None,
        AliasKind::OpenId => "open_id",
        AliasKind::UnionId => "union_id",
        AliasKind::Phone => "phone",
    };
    Some(format!("{kind}:{}:{}", alias.platform, alias.value_hash))
}

/// A segment as evaluation needs it.
#[derive(Debug, Clone)]
pub struct LiveSegment {
    pub segment_id: String,
    pub name: String,
    pub rule: Rule,
}

/// What evaluating a tenant's profiles needs, loaded once per transaction.
struct TenantContext {
    rules: TenantRules,
    need_rules: Vec<NeedTagRule>,
    segments: Vec<LiveSegment>,
    edges: Option<RfmEdges>,
}

/// A profile being changed, and what it was when loaded.
struct Working {
    stored: StoredProfile,
    /// `None` for a profile created in this transaction.
    stage_before: Option<Stage>,
    rfm_before: Option<RfmScore>,
    tier_before: ValueTier,
    next_check_before: Option<i64>,
    tags_before: BTreeSet<String>,
    segments_before: BTreeSet<String>,
    cause: Cause,
    /// Whether the row needs writing; set by events and merges, and by evaluation when a stored
    /// column moves.
    dirty: bool,
}

impl Working {
    fn loaded(stored: StoredProfile, segments_before: BTreeSet<String>, cause: Cause) -> Self {
        let p = &stored.state.profile;
        Self {
            stage_before: Some(p.stage),
            rfm_before: p.rfm,
            tier_before: p.tier,
            next_check_before: stored.next_check_at_us,
            tags_before: p.tags.clone(),
            segments_before,
            stored,
            cause,
            dirty: false,
        }
    }

    fn created(tenant_id: &str, user_id: &str, cause: Cause) -> Self {
        Self {
            stored: StoredProfile::new(tenant_id, user_id),
            stage_before: None,
            rfm_before: None,
            tier_before: ValueTier::Unscored,
            next_check_before: None,
            tags_before: BTreeSet::new(),
            segments_before: BTreeSet::new(),
            cause,
            dirty: true,
        }
    }
}

pub struct Updater {
    store: ProfileStore,
    tenants: TenantDirectory,
    clock: Arc<dyn Clock>,
    topic: String,
    relay: Arc<Notify>,
    /// Wakes the sweep's rebuild loop when a segment's rebuild is recorded.
    rebuild_requested: Notify,
    /// Wakes the calls waiting for a segment's rebuild when one is finished.
    rebuild_finished: Notify,
}

impl Updater {
    pub fn new(
        store: ProfileStore,
        tenants: TenantDirectory,
        clock: Arc<dyn Clock>,
        topic: String,
        relay: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            tenants,
            clock,
            topic,
            relay,
            rebuild_requested: Notify::new(),
            rebuild_finished: Notify::new(),
        }
    }

    pub fn store(&self) -> &ProfileStore {
        &self.store
    }

    pub fn now_us(&self) -> i64 {
        self.clock.now_us()
    }

    pub fn tenant_rules(&self, tenant_id: &str) -> TenantRules {
        self.tenants.rules(tenant_id)
    }

    /// Folds canonical events into their profiles in one transaction. An event already processed
    /// (same tenant and event id, in an earlier batch or earlier in this one) changes nothing.
    pub async fn apply_events(&self, events: &[SocialEvent]) -> Result<(), SegmentationError> {
        if events.is_empty() {
            return Ok(());
        }
        let now_us = self.clock.now_us();
        let mut tx = self.store.db().begin_write().await?;
        let keys: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.tenant_id.as_str(), e.event_id.as_str()))
            .collect();
        let mut new = processed::mark_processed(&mut tx, &keys, now_us).await?;
        let mut by_tenant: BTreeMap<&str, Vec<&SocialEvent>> = BTreeMap::new();
        for event in events {
            // Removing the key keeps a second copy in the same batch from counting again.
            if new.remove(&(event.tenant_id.clone(), event.event_id.clone())) {
                by_tenant.entry(&event.tenant_id).or_default().push(event);
            }
        }
        let mut messages = Vec::new();
        let mut daily = Vec::new();
        for (tenant_id, events) in by_tenant {
            let (tenant_messages, tenant_daily) = self
                .apply_tenant_events(&mut tx, tenant_id, &events, now_us)
                .await?;
            messages.extend(tenant_messages);
            daily.push((tenant_id, tenant_daily));
        }
        // Last: the tenant's daily counter row is shared by every writer, which holds its lock until
        // it commits.
        for (tenant_id, counts) in &daily {
            audience::add_daily(&mut tx, tenant_id, counts).await?;
        }
        Outbox::enqueue(&mut tx, &messages).await?;
        tx.commit().await?;
        if !messages.is_empty() {
            self.relay.notify_one();
        }
        Ok(())
    }

    async fn apply_tenant_events(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        events: &[&SocialEvent],
        now_us: i64,
    ) -> Result<(Vec<OutgoingMessage>, BTreeMap<i64, DailyCounts>), SegmentationError> {
        let ctx = self.context(conn, tenant_id).await?;
        let tz = ctx.rules.time_zone;
        let mut wanted: BTreeSet<String> = events.iter().map(|e| user_alias(&e.user_id)).collect();
        for event in events {
            if let Some(Payload::Identify(identify)) = &event.payload {
                wanted.extend(identify.aliases.iter().filter_map(identify_alias));
            }
        }
        let wanted: Vec<String> = wanted.into_iter().collect();
        let mut alias_map = profile_rows::resolve_aliases(conn, tenant_id, &wanted).await?;
        let unknown: BTreeSet<&str> = events
            .iter()
            .filter(|e| !alias_map.contains_key(&user_alias(&e.user_id)))
            .map(|e| e.user_id.as_str())
            .collect();
        let erased = if unknown.is_empty() {
            BTreeMap::new()
        } else {
            let unknown: Vec<&str> = unknown.into_iter().collect();
            profile_rows::erasures(conn, tenant_id, &unknown).await?
        };
        let ids: Vec<String> = alias_map
            .values()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut working = self.load_working(conn, tenant_id, &ids).await?;
        let mut touched_aliases: BTreeSet<String> = BTreeSet::new();
        let mut messages = Vec::new();
        let mut daily: BTreeMap<i64, DailyCounts> = BTreeMap::new();
        let mut active: BTreeSet<(i64, String)> = BTreeSet::new();

        for event in events {
            if erased
                .get(&event.user_id)
                .is_some_and(|&at| micros(event.occurred_at.as_ref()) <= at)
            {
                continue;
            }
            let cause = Cause {
                kind: wire::Cause::Event,
                event_id: event.event_id.clone(),
            };
            let alias = user_alias(&event.user_id);
            let mut profile_id = match alias_map.get(&alias) {
                Some(id) => id.clone(),
                None => {
                    working.insert(
                        event.user_id.clone(),
                        Working::created(tenant_id, &event.user_id, cause.clone()),
                    );
                    alias_map.insert(alias.clone(), event.user_id.clone());
                    touched_aliases.insert(alias.clone());
                    event.user_id.clone()
                }
            };
            if let Some(Payload::Identify(identify)) = &event.payload {
                for linked in identify.aliases.iter().filter_map(identify_alias) {
                    match alias_map.get(&linked).cloned() {
                        None => {
                            alias_map.insert(linked.clone(), profile_id.clone());
                            touched_aliases.insert(linked);
                        }
                        Some(owner) if owner == profile_id => {}
                        Some(owner) => {
                            let merge = Merge {
                                loser: &profile_id,
                                winner: &owner,
                                linking_alias: &linked,
                                cause: &cause,
                                now_us,
                            };
                            self.merge(conn, tenant_id, &mut working, merge, &mut messages)
                                .await?;
                            for target in alias_map.values_mut() {
                                if *target == profile_id {
                                    target.clone_from(&owner);
                                }
                            }
                            profile_id = owner;
                        }
                    }
                }
            }
            let Some(w) = working.get_mut(&profile_id) else {
                return Err(SegmentationError::Runtime(format!(
                    "profile `{profile_id}` resolved but not loaded"
                )));
            };
            let day_before = w
                .stored
                .state
                .profile
                .last_interaction_at_us
                .map(|at| local_day(at, tz));
            let applied = w.stored.state.apply(event, &ctx.need_rules, tz);
            w.cause = cause;
            w.dirty = true;
            let day = daily.entry(applied.local_day).or_default();
            day.new_followers += i64::from(applied.new_follower);
            day.unfollows += i64::from(applied.unfollowed);
            day.interactions += i64::from(applied.interaction);
            day.impressions += i64::from(applied.impression);
            // A day already recorded for the profile needs no second row.
            if applied.interaction && day_before != Some(applied.local_day) {
                active.insert((applied.local_day, alias));
            }
        }

        let aliases: Vec<(String, String)> = touched_aliases
            .into_iter()
            .filter_map(|a| alias_map.get(&a).map(|p| (a, p.clone())))
            .collect();
        profile_rows::insert_new_aliases(conn, tenant_id, &aliases).await?;
        let active: Vec<(i64, String)> = active
            .into_iter()
            .filter_map(|(day, alias)| alias_map.get(&alias).map(|p| (day, p.clone())))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        audience::add_active_days(conn, tenant_id, &active).await?;
        ensure_tenant(conn, tenant_id).await?;
        messages.extend(
            self.finish(conn, &ctx, working.into_values().collect(), now_us)
                .await?,
        );
        Ok((messages, daily))
    }

    /// Folds the profile `loser` into `winner` (the profile that already owned the linking alias).
    async fn merge(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        working: &mut HashMap<String, Working>,
        merge: Merge<'_>,
        messages: &mut Vec<OutgoingMessage>,
    ) -> Result<(), SegmentationError> {
        let Merge {
            loser,
            winner,
            linking_alias,
            cause,
            now_us,
        } = merge;
        if !working.contains_key(winner) {
            let loaded = self
                .load_working(conn, tenant_id, &[winner.to_owned()])
                .await?;
            working.extend(loaded);
        }
        let Some(absorbed) = working.remove(loser) else {
            return Err(SegmentationError::Runtime(format!(
                "profile `{loser}` to merge is not loaded"
            )));
        };
        profile_rows::repoint(conn, tenant_id, loser, winner).await?;
        profile_rows::delete_profile(conn, tenant_id, loser, true).await?;
        let merge_cause = Cause {
            kind: wire::Cause::Merge,
            event_id: cause.event_id.clone(),
        };
        for segment_id in &absorbed.segments_before {
            let name = segments::get_segment(conn, tenant_id, segment_id)
                .await?
                .map(|s| s.name)
                .unwrap_or_default();
            messages.push(changes::message(
                &self.topic,
                tenant_id,
                loser,
                &merge_cause,
                now_us,
                Change::SegmentLeft(wire::SegmentLeft {
                    segment_id: segment_id.clone(),
                    segment_name: name,
                }),
            ));
        }
        let Some(survivor) = working.get_mut(winner) else {
            return Err(SegmentationError::Runtime(format!(
                "profile `{winner}` owning alias `{linking_alias}` is not loaded"
            )));
        };
        survivor.stored.state.merge(absorbed.stored.state);
        survivor.dirty = true;
        messages.push(changes::message(
            &self.topic,
            tenant_id,
            winner,
            &merge_cause,
            now_us,
            Change::ProfilesMerged(wire::ProfilesMerged {
                merged_user_id: loser.to_owned(),
                linking_alias: linking_alias.to_owned(),
            }),
        ));
        tracing::info!(tenant_id, loser, winner, "merged profiles");
        Ok(())
    }

    /// Re-evaluates the named profiles at the current time (stage, RFM score with the stored edges,
    /// segment memberships) in one transaction and publishes what changed. Returns how many changes
    /// were published.
    pub async fn reevaluate(
        &self,
        tenant_id: &str,
        profile_ids: &[String],
        cause: wire::Cause,
    ) -> Result<usize, SegmentationError> {
        let now_us = self.clock.now_us();
        let mut tx = self.store.db().begin_write().await?;
        let ctx = self.context(&mut tx, tenant_id).await?;
        let mut working = self.load_working(&mut tx, tenant_id, profile_ids).await?;
        for w in working.values_mut() {
            w.cause = Cause::of(cause);
        }
        let messages = self
            .finish(&mut tx, &ctx, working.into_values().collect(), now_us)
            .await?;
        Outbox::enqueue(&mut tx, &messages).await?;
        tx.commit().await?;
        if !messages.is_empty() {
            self.relay.notify_one();
        }
        Ok(messages.len())
    }

    /// Brings the segment's membership in line with its rule at the current time: the database
    /// finds the profiles whose membership disagrees with the rule, and those are re-evaluated (and
    /// their entering or leaving published) a page per transaction. Returns how many profiles were
    /// re-evaluated.
    pub async fn reconcile_segment(
        &self,
        tenant_id: &str,
        segment_id: &str,
        cause: wire::Cause,
    ) -> Result<usize, SegmentationError> {
        let segment = {
            let mut conn = self.store.conn().await?;
            segments::get_segment(&mut conn, tenant_id, segment_id).await?
        };
        let Some(segment) = segment else {
            return Ok(0);
        };
        let rule = crate::domain::parse(&segment.rule)?;
        let now_us = self.clock.now_us();
        let mismatched = self
            .store
            .membership_mismatches(tenant_id, segment_id, &rule, now_us)
            .await?;
        for page in mismatched.chunks(REEVALUATE_PAGE) {
            self.reevaluate(tenant_id, page, cause).await?;
        }
        Ok(mismatched.len())
    }

    /// Deletes the segment and announces every member's leaving (cause: segment definition) in the
    /// same transaction, so that whoever follows memberships through `socialops.profiles.v1` is not
    /// left with members of a segment that no longer exists. Returns whether the segment existed.
    pub async fn delete_segment(
        &self,
        tenant_id: &str,
        segment_id: &str,
    ) -> Result<bool, SegmentationError> {
        let now_us = self.clock.now_us();
        let mut tx = self.store.db().begin_write().await?;
        let Some(deleted) = segments::delete_segment(&mut tx, tenant_id, segment_id).await? else {
            return Ok(false);
        };
        let members = deleted.members;
        let cause = Cause::of(wire::Cause::SegmentDefinition);
        let messages: Vec<OutgoingMessage> = members
            .iter()
            .map(|profile_id| {
                changes::message(
                    &self.topic,
                    tenant_id,
                    profile_id,
                    &cause,
                    now_us,
                    Change::SegmentLeft(wire::SegmentLeft {
                        segment_id: segment_id.to_owned(),
                        segment_name: deleted.name.clone(),
                    }),
                )
            })
            .collect();
        Outbox::enqueue(&mut tx, &messages).await?;
        tx.commit().await?;
        if !messages.is_empty() {
            self.relay.notify_one();
        }
        tracing::info!(
            tenant = tenant_id,
            segment = segment_id,
            members = members.len(),
            "segment deleted"
        );
        Ok(true)
    }

    /// Removes the profile the user id points to (with everything merged into it), its aliases,
    /// orders, tags, memberships and activity, and remembers the erasure so that the user's older
    /// events still on the topic do not bring it back. Returns whether there was a profile.
    pub async fn erase(
        &self,
        tenant_id: &str,
        user_id: &str,
        requested_at_us: i64,
    ) -> Result<bool, SegmentationError> {
        let mut tx = self.store.db().begin_write().await?;
        let handled = profile_rows::erasures(&mut tx, tenant_id, &[user_id]).await?;
        if handled
            .get(user_id)
            .is_some_and(|&at| at >= requested_at_us)
        {
            // A redelivered request: what it erased is gone, and what came after it stays.
            return Ok(false);
        }
        profile_rows::put_erasure(&mut tx, tenant_id, user_id, requested_at_us).await?;
        let alias = user_alias(user_id);
        let profile_id =
            profile_rows::resolve_aliases(&mut tx, tenant_id, std::slice::from_ref(&alias))
                .await?
                .remove(&alias);
        if let Some(profile_id) = &profile_id {
            profile_rows::delete_profile(&mut tx, tenant_id, profile_id, false).await?;
        }
        tx.commit().await?;
        Ok(profile_id.is_some())
    }

    async fn context(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
    ) -> Result<TenantContext, SegmentationError> {
        let need_rules = tags::tag_rules(conn, tenant_id)
            .await?
            .into_iter()
            .filter_map(|r| NeedTagRule::new(&r.pattern, &r.tag).ok())
            .collect();
        let segments = segments::segments_for_evaluation(conn, tenant_id)
            .await?
            .into_iter()
            .filter_map(|s| {
                let rule = crate::domain::parse(&s.rule).ok()?;
                Some(LiveSegment {
                    segment_id: s.segment_id,
                    name: s.name,
                    rule,
                })
            })
            .collect();
        let edges = audience::edges(conn, tenant_id).await?.map(|e| e.edges);
        Ok(TenantContext {
            rules: self.tenants.rules(tenant_id),
            need_rules,
            segments,
            edges,
        })
    }

    async fn load_working(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        ids: &[String],
    ) -> Result<HashMap<String, Working>, SegmentationError> {
        let loaded = profile_rows::load_profiles(conn, tenant_id, ids).await?;
        let ids: Vec<String> = loaded.keys().cloned().collect();
        let mut memberships = segments::memberships(conn, tenant_id, &ids).await?;
        Ok(loaded
            .into_iter()
            .map(|(id, stored)| {
                let segments_before = memberships.remove(&id).unwrap_or_default();
                let w = Working::loaded(stored, segments_before, Cause::of(wire::Cause::Clock));
                (id, w)
            })
            .collect())
    }
}

/// The two profiles of a merge and why.
struct Merge<'a> {
    loser: &'a str,
    winner: &'a str,
    linking_alias: &'a str,
    cause: &'a Cause,
    now_us: i64,
}
