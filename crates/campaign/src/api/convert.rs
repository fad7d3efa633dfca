//! Domain and store types to wire types.

use socialops_proto::campaign::v1 as api;
use socialops_proto::campaigns::v1 as wire;
use socialops_proto::timestamp;

use crate::domain::campaign::{Channel, Kind};
use crate::domain::definition::Action;
use crate::manage::ReviewedFinding;
use crate::store::campaigns::CampaignRecord;
use crate::store::journeys::JourneyRecord;
use crate::store::sends::{DecisionRecord, SendRecord};

pub fn channel(channel: Channel) -> wire::Channel {
    match channel {
        Channel::DirectMessage => wire::Channel::DirectMessage,
        Channel::Push => wire::Channel::Push,
        Channel::Sms => wire::Channel::Sms,
        Channel::Email => wire::Channel::Email,
        Channel::WechatTemplate => wire::Channel::WechatTemplate,
        Channel::Platform => wire::Channel::Platform,
    }
}

pub fn kind(kind: Kind) -> wire::Kind {
    match kind {
        Kind::Service => wire::Kind::Service,
        Kind::Content => wire::Kind::Content,
        Kind::Ad => wire::Kind::Ad,
    }
}

pub fn action(action: Action) -> wire::Action {
    wire::Action {
        action: Some(match action {
            Action::Coupon { template } => {
                wire::action::Action::IssueCoupon(wire::IssueCoupon { template })
            }
            Action::Referral { programme } => {
                wire::action::Action::InviteReferral(wire::InviteReferral { programme })
            }
        }),
    }
}

pub fn campaign(record: &CampaignRecord, num_findings_open: u64) -> api::Campaign {
    api::Campaign {
        id: record.campaign_id.clone(),
        tenant_id: record.tenant_id.clone(),
        name: record.spec.name.clone(),
        status: record.status.as_str().into(),
        channel: channel(record.spec.channel) as i32,
        kind: kind(record.spec.kind) as i32,
        definition: serde_json::to_string(&record.spec).unwrap_or_default(),
        created_at: Some(timestamp(record.created_at_us)),
        updated_at: Some(timestamp(record.updated_at_us)),
        paused_by: record.paused_by.clone().unwrap_or_default(),
        pause_reason: record.pause_reason.clone().unwrap_or_default(),
        crisis_id: record.crisis_id.clone().unwrap_or_default(),
        num_findings_open,
        rolled_out_variant: record.winner.clone().unwrap_or_default(),
        rolled_out_at: record.rolled_out_at_us.map(timestamp),
    }
}

pub fn finding(finding: &ReviewedFinding) -> api::Finding {
    api::Finding {
        finding_id: finding.finding_id.clone(),
        variant_id: finding.variant_id.clone(),
        step_id: finding.step_id.clone(),
        term: finding.finding.term.clone(),
        matched: finding.finding.matched.clone(),
        rule: finding.finding.rule.as_str().into(),
        article: finding.finding.article.clone().unwrap_or_default(),
        start: u32::try_from(finding.finding.start).unwrap_or(u32::MAX),
        end: u32::try_from(finding.finding.end).unwrap_or(u32::MAX),
        accepted: finding.accepted.is_some(),
        accepted_by: finding
            .accepted
            .as_ref()
            .map(|a| a.actor.clone())
            .unwrap_or_default(),
        accepted_reason: finding
            .accepted
            .as_ref()
            .map(|a| a.reason.clone())
            .unwrap_or_default(),
    }
}

pub fn send(record: &SendRecord) -> api::SendRecord {
    let mut send: wire::Send = serde_json::from_str(&record.body).unwrap_or_default();
    if let Some(decided_at_us) = record.decided_at_us.filter(|_| send.decided_at.is_none()) {
        send.decided_at = Some(timestamp(decided_at_us));
    }
    api::SendRecord {
        send: Some(send),
        user_id: record.user_id.clone(),
        state: record.state.as_str().into(),
        rule: record.rule.clone().unwrap_or_default(),
        due_at: record.due_at_us.map(timestamp),
        published_at: record
            .decided_at_us
            .filter(|_| record.state == crate::store::sends::SendState::Sent)
            .map(timestamp),
    }
}

pub fn decision(record: &DecisionRecord) -> api::Decision {
    api::Decision {
        at: Some(timestamp(record.at_us)),
        send_key: record.send_key.clone().unwrap_or_default(),
        step_id: record.step_id.clone().unwrap_or_default(),
        outcome: record.outcome.clone(),
        rule: record.rule.clone().unwrap_or_default(),
        detail: record.detail.clone().unwrap_or_default(),
        until: record.until_us.map(timestamp),
    }
}

pub fn journey(record: &JourneyRecord) -> api::JourneyState {
    api::JourneyState {
        occurrence: record.occurrence,
        variant_id: record.variant_id.clone(),
        step_id: record.step_id.clone(),
        entered_at: Some(timestamp(record.entered_at_us)),
        due_at: record.due_at_us.map(timestamp),
        exit_reason: record.exit_reason.clone().unwrap_or_default(),
        exited_at: record.exited_at_us.map(timestamp),
        holdout: record.holdout,
    }
}
