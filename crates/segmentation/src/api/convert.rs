//! Between stored rows and their wire form.

use std::collections::BTreeSet;

use socialops_proto::segmentation::v1 as api;

use crate::store::StoredProfile;
use crate::store::segments::SegmentRow;
use crate::update::changes::{timestamp, wire_score, wire_stage, wire_tier};

pub use socialops_proto::micros_of as micros;

pub fn profile(stored: &StoredProfile, segment_ids: BTreeSet<String>) -> api::Profile {
    let state = &stored.state;
    let p = &state.profile;
    let ts = |at: Option<i64>| at.map(timestamp);
    api::Profile {
        tenant_id: p.tenant_id.clone(),
        user_id: p.user_id.clone(),
        stage: wire_stage(Some(p.stage)) as i32,
        tier: wire_tier(p.tier) as i32,
        rfm: p.rfm.map(wire_score),
        tags: p.tags.iter().cloned().collect(),
        counts: p.counts.clone().into_iter().collect(),
        platforms: p.platforms.iter().cloned().collect(),
        following: p.following,
        orders_count: p.orders_count,
        orders_total_cents: p.orders_total_cents,
        refunded_cents: p.refunded_cents,
        first_seen_at: ts(p.first_seen_at_us),
        last_seen_at: ts(p.last_seen_at_us),
        last_interaction_at: ts(p.last_interaction_at_us),
        first_order_at: ts(p.first_order_at_us),
        last_order_at: ts(p.last_order_at_us),
        categories_bought: state.categories_bought.iter().cloned().collect(),
        categories_clicked: state.categories_clicked.iter().cloned().collect(),
        active_hours: state.active_hours.to_vec(),
        merged_user_ids: state.merged_user_ids.clone(),
        segment_ids: segment_ids.into_iter().collect(),
    }
}

pub fn segment(row: &SegmentRow, rebuilding: bool) -> api::Segment {
    api::Segment {
        segment_id: row.segment_id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        rule: row.rule.clone(),
        size: row.size.max(0) as u64,
        created_at: Some(timestamp(row.created_at_us)),
        updated_at: Some(timestamp(row.updated_at_us)),
        rebuilding,
    }
}
