//! The end of every update: each changed profile is evaluated at "now" (stage, RFM score and tier,
//! segment memberships, when the clock next changes its stage), the rows that moved are written,
//! and every change becomes a message for `socialops.profiles.v1`.

use std::collections::BTreeSet;

use socialops_bus::OutgoingMessage;
use socialops_proto::profiles::v1 as wire;
use sqlx::AnyConnection;
use wire::profile_change::Change;

use super::{TenantContext, Updater, Working, changes};
use crate::domain::{RfmValues, Rule, evaluate, next_stage_change_at, stage_at};
use crate::error::SegmentationError;
use crate::store::StoredProfile;
use crate::store::audience::{self, TransitionRow};
use crate::store::profiles::{self as profile_rows, stage_code};
use crate::store::{segments, tags};

impl Updater {
    /// Evaluates each profile at `now_us`, writes what changed (profiles, orders, memberships, tags,
    /// transitions) and returns the messages announcing it.
    pub(super) async fn finish(
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
        let mut tags_removed: Vec<(String, String)> = Vec::new();
        let mut tags_added: Vec<(String, String)> = Vec::new();
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
            for tag in w.tags_before.difference(&p.tags) {
                tags_removed.push((user_id.clone(), tag.clone()));
            }
            for tag in p.tags.difference(&w.tags_before) {
                tags_added.push((user_id.clone(), tag.clone()));
            }
            w.dirty |= w.stage_before != Some(p.stage)
                || w.rfm_before != p.rfm
                || w.tier_before != p.tier
                || w.next_check_before != w.stored.next_check_at_us;
        }
        let dirty: Vec<&StoredProfile> = working
            .iter()
            .filter(|w| w.dirty)
            .map(|w| &w.stored)
            .collect();
        profile_rows::save_profiles(conn, &dirty, now_us).await?;
        tags::write_tag_changes(conn, &tenant_id, &pairs(&tags_removed), &pairs(&tags_added))
            .await?;
        segments::add_members(conn, &tenant_id, &entered, now_us).await?;
        segments::remove_members(conn, &tenant_id, &left).await?;
        audience::log_transitions(conn, &tenant_id, &transitions).await?;
        Ok(messages)
    }
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

/// Sets stage, RFM score, tier and the next clock-driven stage change of `stored` as of `now_us`,
/// and returns the segments it belongs to.
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
    stored.next_check_at_us = next_stage_change_at(p, &ctx.rules.lifecycle, now_us);
    ctx.segments
        .iter()
        .filter(|segment| evaluate(&segment.rule, p, now_us))
        .map(|segment| segment.segment_id.clone())
        .collect()
}

/// Whether `rule` matches the stored profile at `now_us`.
pub fn matches(rule: &Rule, stored: &StoredProfile, now_us: i64) -> bool {
    evaluate(rule, &stored.state.profile, now_us)
}
