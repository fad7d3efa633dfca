//! Where profiles change: canonical events folded in ([`Updater::apply_events`]), profiles
//! re-evaluated because time passed, RFM edges moved or a segment changed ([`Updater::reevaluate`]),
//! and erasure ([`Updater::erase`]). Each call is one transaction that writes the profiles, their
//! memberships, tags and transition log, and enqueues every resulting change for
//! `socialops.profiles.v1` in the outbox.

pub mod changes;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use socialops_bus::{Outbox, OutgoingMessage};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{Alias, AliasKind, SocialEvent};
use socialops_proto::profiles::v1 as wire;
use sqlx::AnyConnection;
use tokio::sync::Notify;
use wire::profile_change::Change;

use crate::clock::Clock;
use crate::config::{TenantDirectory, TenantRules};
use crate::domain::state::ProfileState;
use crate::domain::{
    NeedTagRule, RfmEdges, RfmScore, RfmValues, Rule, Stage, ValueTier, evaluate,
    next_membership_change_at, next_stage_change_at, stage_at,
};
use crate::error::SegmentationError;
use crate::store::audience::{self, DailyCounts, TransitionRow};
use crate::store::profiles::{self as profile_rows, StoredProfile, stage_code};
use crate::store::{ProfileStore, segments, tags};
pub use changes::Cause;

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
    tags_before: BTreeSet<String>,
    segments_before: BTreeSet<String>,
    cause: Cause,
}

impl Working {
    fn loaded(stored: StoredProfile, segments_before: BTreeSet<String>, cause: Cause) -> Self {
        let p = &stored.state.profile;
        Self {
            stage_before: Some(p.stage),
            rfm_before: p.rfm,
            tier_before: p.tier,
            tags_before: p.tags.clone(),
            segments_before,
            stored,
            cause,
        }
    }

    fn created(tenant_id: &str, user_id: &str, cause: Cause) -> Self {
        Self {
            stored: StoredProfile {
                state: ProfileState::new(tenant_id, user_id),
                next_check_at_us: None,
            },
            stage_before: None,
            rfm_before: None,
            tier_before: ValueTier::Unscored,
            tags_before: BTreeSet::new(),
            segments_before: BTreeSet::new(),
            cause,
        }
    }
}

pub struct Updater {
    store: ProfileStore,
    tenants: TenantDirectory,
    clock: Arc<dyn Clock>,
    topic: String,
    relay: Arc<Notify>,
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

    /// Folds canonical events into their profiles. An event already processed (same tenant and event
    /// id, in an earlier batch or earlier in this one) changes nothing.
    pub async fn apply_events(&self, events: &[SocialEvent]) -> Result<(), SegmentationError> {
        if events.is_empty() {
            return Ok(());
        }
        let now_us = self.clock.now_us();
        let mut tx = self.store.db().begin().await?;
        let keys: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.tenant_id.as_str(), e.event_id.as_str()))
            .collect();
        let new = profile_rows::mark_processed(&mut tx, &keys).await?;
        let mut seen = HashSet::new();
        let mut by_tenant: BTreeMap<&str, Vec<&SocialEvent>> = BTreeMap::new();
        for event in events {
            let key = (event.tenant_id.clone(), event.event_id.clone());
            if new.contains(&key) && seen.insert(key) {
                by_tenant.entry(&event.tenant_id).or_default().push(event);
            }
        }
        let mut messages = Vec::new();
        for (tenant_id, events) in by_tenant {
            messages.extend(
                self.apply_tenant_events(&mut tx, tenant_id, &events, now_us)
                    .await?,
            );
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
    ) -> Result<Vec<OutgoingMessage>, SegmentationError> {
        let ctx = self.context(conn, tenant_id).await?;
        let user_aliases: Vec<String> = events
            .iter()
            .map(|e| user_alias(&e.user_id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut alias_map = profile_rows::resolve_aliases(conn, tenant_id, &user_aliases).await?;
        let ids: Vec<String> = alias_map
            .values()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut working = self.load_working(conn, tenant_id, &ids).await?;
        let mut new_aliases: Vec<(String, String)> = Vec::new();
        let mut messages = Vec::new();
        let mut merged_into: HashMap<String, String> = HashMap::new();
        let mut daily: BTreeMap<i64, DailyCounts> = BTreeMap::new();
        let mut active: BTreeSet<(i64, String)> = BTreeSet::new();

        for event in events {
            let event_cause = Cause {
                kind: wire::Cause::Event,
                event_id: event.event_id.clone(),
            };
            let alias = user_alias(&event.user_id);
            let mut profile_id = match alias_map.get(&alias) {
                Some(id) => id.clone(),
                None => {
                    working.insert(
                        event.user_id.clone(),
                        Working::created(tenant_id, &event.user_id, event_cause.clone()),
                    );
                    alias_map.insert(alias.clone(), event.user_id.clone());
                    new_aliases.push((alias, event.user_id.clone()));
                    event.user_id.clone()
                }
            };
            if let Some(Payload::Identify(identify)) = &event.payload {
                for linked in identify.aliases.iter().filter_map(identify_alias) {
                    let owner = match alias_map.get(&linked) {
                        Some(owner) => Some(owner.clone()),
                        None => profile_rows::resolve_aliases(
                            conn,
                            tenant_id,
                            std::slice::from_ref(&linked),
                        )
                        .await?
                        .remove(&linked),
                    };
                    match owner {
                        None => {
                            alias_map.insert(linked.clone(), profile_id.clone());
                            new_aliases.push((linked, profile_id.clone()));
                        }
                        Some(owner) if owner == profile_id => {
                            alias_map.insert(linked, owner);
                        }
                        Some(owner) => {
                            self.merge(
                                conn,
                                tenant_id,
                                &mut working,
                                &profile_id,
                                &owner,
                                &linked,
                                &event_cause,
                                now_us,
                                &mut messages,
                            )
                            .await?;
                            for target in alias_map
                                .values_mut()
                                .chain(new_aliases.iter_mut().map(|(_, p)| p))
                                .chain(merged_into.values_mut())
                            {
                                if *target == profile_id {
                                    target.clone_from(&owner);
                                }
                            }
                            alias_map.insert(linked, owner.clone());
                            merged_into.insert(profile_id.clone(), owner.clone());
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
            let applied = w
                .stored
                .state
                .apply(event, &ctx.need_rules, ctx.rules.time_zone);
            w.cause = event_cause;
            let day = daily.entry(applied.local_day).or_default();
            day.new_followers += i64::from(applied.new_follower);
            day.unfollows += i64::from(applied.unfollowed);
            day.interactions += i64::from(applied.interaction);
            day.impressions += i64::from(applied.impression);
            if applied.interaction {
                active.insert((applied.local_day, profile_id.clone()));
            }
        }

        profile_rows::put_aliases(conn, tenant_id, &new_aliases).await?;
        let active: Vec<(i64, String)> = active
            .into_iter()
            .map(|(day, id)| {
                let id = merged_into.get(&id).cloned().unwrap_or(id);
                (day, id)
            })
            .collect();
        audience::add_active_days(conn, tenant_id, &active).await?;
        audience::add_daily(conn, tenant_id, &daily).await?;
        messages.extend(
            self.finish(conn, &ctx, working.into_values().collect(), now_us)
                .await?,
        );
        Ok(messages)
    }

    /// Folds the profile `loser` into `winner` (the profile that already owned the linking alias).
    #[allow(clippy::too_many_arguments)]
    async fn merge(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        working: &mut HashMap<String, Working>,
        loser: &str,
        winner: &str,
        linking_alias: &str,
        cause: &Cause,
        now_us: i64,
        messages: &mut Vec<OutgoingMessage>,
    ) -> Result<(), SegmentationError> {
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
        tags::update_profile_tags(
            conn,
            tenant_id,
            loser,
            &absorbed.tags_before,
            &BTreeSet::new(),
        )
        .await?;
        let merge_cause = Cause {
            kind: wire::Cause::Merge,
            event_id: cause.event_id.clone(),
        };
        for segment_id in &absorbed.segments_before {
            let name = self.segment_name(conn, tenant_id, segment_id).await?;
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
            return Err(SegmentationError::NotFound(format!(
                "profile `{winner}` owning alias `{linking_alias}`"
            )));
        };
        survivor.stored.state.merge(absorbed.stored.state);
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

    async fn segment_name(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        segment_id: &str,
    ) -> Result<String, SegmentationError> {
        Ok(segments::get_segment(conn, tenant_id, segment_id)
            .await?
            .map(|s| s.name)
            .unwrap_or_default())
    }

    /// Re-evaluates the named profiles at the current time (stage, RFM score with the stored edges,
    /// segment memberships) and publishes what changed.
    pub async fn reevaluate(
        &self,
        tenant_id: &str,
        profile_ids: &[String],
        cause: wire::Cause,
    ) -> Result<usize, SegmentationError> {
        let now_us = self.clock.now_us();
        let mut tx = self.store.db().begin().await?;
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

    /// Re-evaluates every profile of the tenant (or every buyer), page by page, one transaction per
    /// page. Returns the number of changes published.
    pub async fn reevaluate_all(
        &self,
        tenant_id: &str,
        buyers_only: bool,
        page_size: usize,
        cause: wire::Cause,
    ) -> Result<usize, SegmentationError> {
        let mut after = String::new();
        let mut published = 0;
        loop {
            let ids = self
                .store
                .profile_ids(tenant_id, &after, buyers_only, page_size)
                .await?;
            let Some(last) = ids.last() else {
                return Ok(published);
            };
            after.clone_from(last);
            published += self.reevaluate(tenant_id, &ids, cause).await?;
            if ids.len() < page_size {
                return Ok(published);
            }
        }
    }

    /// Removes the user's profile (whichever profile the user id now points to), aliases, tags,
    /// memberships and activity. Returns whether there was one.
    pub async fn erase(&self, tenant_id: &str, user_id: &str) -> Result<bool, SegmentationError> {
        let mut tx = self.store.db().begin().await?;
        let alias = user_alias(user_id);
        let Some(profile_id) =
            profile_rows::resolve_aliases(&mut tx, tenant_id, std::slice::from_ref(&alias))
                .await?
                .remove(&alias)
        else {
            return Ok(false);
        };
        profile_rows::delete_profile(&mut tx, tenant_id, &profile_id, false).await?;
        tx.commit().await?;
        Ok(true)
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
        let segments = segments::list_segments(conn, tenant_id)
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
        let mut memberships = segments::memberships(conn, tenant_id, ids).await?;
        Ok(loaded
            .into_iter()
            .map(|(id, stored)| {
                let segments_before = memberships.remove(&id).unwrap_or_default();
                let w = Working::loaded(stored, segments_before, Cause::of(wire::Cause::Clock));
                (id, w)
            })
            .collect())
    }

    /// Evaluates each profile at `now_us`, writes it with its memberships, tags and transitions, and
    /// returns the messages announcing what changed.
    async fn finish(
        &self,
        conn: &mut AnyConnection,
        ctx: &TenantContext,
        mut working: Vec<Working>,
        now_us: i64,
    ) -> Result<Vec<OutgoingMessage>, SegmentationError> {
        let Some(tenant_id) = working
            .first()
            .map(|w| w.stored.state.profile.tenant_id.clone())
        else {
            return Ok(Vec::new());
        };
        working.sort_by(|a, b| {
            a.stored
                .state
                .profile
                .user_id
                .cmp(&b.stored.state.profile.user_id)
        });
        let mut messages = Vec::new();
        let mut entered = Vec::new();
        let mut left = Vec::new();
        let mut transitions = Vec::new();
        for w in &mut working {
            let segments_now = evaluate_profile(&mut w.stored, ctx, now_us);
            let p = &w.stored.state.profile;
            let user_id = p.user_id.clone();
            let mut announce = |change: Change| {
                messages.push(changes::message(
                    &self.topic,
                    &tenant_id,
                    &user_id,
                    &w.cause,
                    now_us,
                    change,
                ));
            };
            if w.stage_before != Some(p.stage) {
                announce(Change::StageChanged(wire::StageChanged {
                    from: changes::wire_stage(w.stage_before) as i32,
                    to: changes::wire_stage(Some(p.stage)) as i32,
                }));
                transitions.push(TransitionRow {
                    profile_id: user_id.clone(),
                    from_stage: w.stage_before.map_or(0, stage_code),
                    to_stage: stage_code(p.stage),
                    at_us: now_us,
                    cause: w.cause.kind as i64,
                });
            }
            if w.rfm_before != p.rfm || w.tier_before != p.tier {
                announce(Change::RfmChanged(wire::RfmChanged {
                    previous: w.rfm_before.map(changes::wire_score),
                    current: p.rfm.map(changes::wire_score),
                    previous_tier: changes::wire_tier(w.tier_before) as i32,
                    tier: changes::wire_tier(p.tier) as i32,
                }));
            }
            for segment in &ctx.segments {
                let was = w.segments_before.contains(&segment.segment_id);
                let is = segments_now.contains(&segment.segment_id);
                if is && !was {
                    entered.push((segment.segment_id.clone(), user_id.clone()));
                    announce(Change::SegmentEntered(wire::SegmentEntered {
                        segment_id: segment.segment_id.clone(),
                        segment_name: segment.name.clone(),
                    }));
                } else if was && !is {
                    left.push((segment.segment_id.clone(), user_id.clone()));
                    announce(Change::SegmentLeft(wire::SegmentLeft {
                        segment_id: segment.segment_id.clone(),
                        segment_name: segment.name.clone(),
                    }));
                }
            }
            if w.tags_before != p.tags {
                tags::update_profile_tags(conn, &tenant_id, &user_id, &w.tags_before, &p.tags)
                    .await?;
            }
        }
        let stored: Vec<&StoredProfile> = working.iter().map(|w| &w.stored).collect();
        profile_rows::save_profiles(conn, &stored, now_us).await?;
        segments::add_members(conn, &tenant_id, &entered, now_us).await?;
        segments::remove_members(conn, &tenant_id, &left).await?;
        audience::log_transitions(conn, &tenant_id, &transitions).await?;
        Ok(messages)
    }
}

/// Sets stage, RFM score, tier and the next clock-driven check of `stored` as of `now_us`, and returns
/// the segments it belongs to.
fn evaluate_profile(
    stored: &mut StoredProfile,
    ctx: &TenantContext,
    now_us: i64,
) -> BTreeSet<String> {
    let p = &mut stored.state.profile;
    p.stage = stage_at(p, &ctx.rules.lifecycle, now_us);
    if let Some(edges) = &ctx.edges {
        p.rfm = RfmValues::compute(&p.orders, p.last_order_at_us, &ctx.rules.rfm, now_us)
            .map(|values| edges.score(&values));
    }
    p.tier = ctx.rules.tiers.tier(p.rfm);
    let mut next = next_stage_change_at(p, &ctx.rules.lifecycle, now_us);
    let mut member_of = BTreeSet::new();
    for segment in &ctx.segments {
        if evaluate(&segment.rule, p, now_us) {
            member_of.insert(segment.segment_id.clone());
        }
        if segment.rule.is_time_dependent()
            && let Some(at) = next_membership_change_at(&segment.rule, p, now_us)
        {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    stored.next_check_at_us = next;
    member_of
}

/// Whether `rule` matches the stored profile at `now_us`; for previews.
pub fn matches(rule: &Rule, stored: &StoredProfile, now_us: i64) -> bool {
    evaluate(rule, &stored.state.profile, now_us)
}
