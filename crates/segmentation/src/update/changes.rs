//! Building the messages published on `socialops.profiles.v1`.

use socialops_bus::OutgoingMessage;
use socialops_proto::profiles::v1 as wire;
use wire::profile_change::Change;

use crate::domain::{RfmScore, Stage, ValueTier};

pub fn wire_stage(stage: Option<Stage>) -> wire::Stage {
    match stage {
        None => wire::Stage::Unspecified,
        Some(Stage::Potential) => wire::Stage::Potential,
        Some(Stage::New) => wire::Stage::New,
        Some(Stage::Active) => wire::Stage::Active,
        Some(Stage::Loyal) => wire::Stage::Loyal,
        Some(Stage::Churned) => wire::Stage::Churned,
    }
}

pub fn stage_from_wire(stage: wire::Stage) -> Option<Stage> {
    match stage {
        wire::Stage::Unspecified => None,
        wire::Stage::Potential => Some(Stage::Potential),
        wire::Stage::New => Some(Stage::New),
        wire::Stage::Active => Some(Stage::Active),
        wire::Stage::Loyal => Some(Stage::Loyal),
        wire::Stage::Churned => Some(Stage::Churned),
    }
}

pub fn wire_tier(tier: ValueTier) -> wire::ValueTier {
    match tier {
        ValueTier::Unscored => wire::ValueTier::Unscored,
        ValueTier::LowValue => wire::ValueTier::LowValue,
        ValueTier::Regular => wire::ValueTier::Regular,
        ValueTier::PotentialHighValue => wire::ValueTier::PotentialHighValue,
        ValueTier::HighValue => wire::ValueTier::HighValue,
    }
}

pub fn wire_score(score: RfmScore) -> wire::RfmScore {
    wire::RfmScore {
        recency: u32::from(score.recency),
        frequency: u32::from(score.frequency),
        monetary: u32::from(score.monetary),
    }
}

pub use socialops_proto::timestamp;

/// What caused a batch of changes to one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub kind: wire::Cause,
    /// The last event folded in, for event-caused changes.
    pub event_id: String,
}

impl Cause {
    pub fn of(kind: wire::Cause) -> Self {
        Self {
            kind,
            event_id: String::new(),
        }
    }
}

/// One change of one profile, ready for the outbox.
pub fn message(
    topic: &str,
    tenant_id: &str,
    user_id: &str,
    cause: &Cause,
    at_us: i64,
    change: Change,
) -> OutgoingMessage {
    let body = wire::ProfileChange {
        change_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant_id.to_owned(),
        user_id: user_id.to_owned(),
        occurred_at: Some(timestamp(at_us)),
        cause: cause.kind as i32,
        event_id: cause.event_id.clone(),
        change: Some(change),
    };
    OutgoingMessage::encode(topic, Some(format!("{tenant_id}:{user_id}")), &body)
}
