//! The alert published for every change of a crisis.

use socialops_bus::OutgoingMessage;
use socialops_proto::alerts::v1::CrisisAlert;
use socialops_proto::timestamp;

use crate::domain::severity::Severity;
use crate::store::crises::{Crisis, Step};

/// The alert for `step` of `crisis` (as it is after the step). Its id is the crisis id and the step
/// number, so a republished alert carries the same id and consumers can deduplicate.
pub fn alert(crisis: &Crisis, step: &Step, previous_severity: Severity) -> CrisisAlert {
    CrisisAlert {
        alert_id: format!("{}:{}", crisis.crisis_id, step.seq),
        tenant_id: crisis.tenant_id.clone(),
        crisis_id: crisis.crisis_id.clone(),
        kind: step.kind,
        watchlist_id: crisis.watchlist_id.clone(),
        watchlist_name: crisis.watchlist_name.clone(),
        severity: step.severity.code(),
        state: step.state.code(),
        actor: step.actor.clone(),
        note: step.note.clone(),
        at: Some(timestamp(step.at_us)),
        detected_at: Some(timestamp(crisis.clock.detected_at_us)),
        respond_by: Some(timestamp(crisis.clock.respond_by_us)),
        num_mentions: crisis.num_mentions,
        num_negative: crisis.num_negative,
        total_reach: crisis.total_reach,
        reason: crisis.reason.clone(),
        negative_share: crisis.negative_share(),
        previous_severity: previous_severity.code(),
    }
}

/// The outbox message for an alert: keyed `tenant:crisis`, so one crisis's alerts stay in order.
pub fn alert_message(topic: &str, alert: &CrisisAlert) -> OutgoingMessage {
    let mut message = OutgoingMessage::encode(
        topic,
        Some(format!("{}:{}", alert.tenant_id, alert.crisis_id)),
        alert,
    );
    for (name, value) in socialops_telemetry::current_trace_headers() {
        message = message.header(name, value.into_bytes());
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crisis::{CrisisState, ResponseClock};
    use prost::Message as _;
    use socialops_bus::headers;
    use socialops_proto::alerts::v1::AlertKind;

    #[test]
    fn alert_carries_the_crisis_and_is_keyed_by_tenant_and_crisis() {
        let crisis = Crisis {
            tenant_id: "acme".into(),
            crisis_id: "c-1".into(),
            watchlist_id: "w-1".into(),
            watchlist_name: "精华".into(),
            state: CrisisState::Detected,
            severity: Severity::High,
            reason: "negative volume spike".into(),
            window_start_us: 0,
            clock: ResponseClock {
                detected_at_us: 10,
                respond_by_us: 20,
                half_time_reminded: false,
                breached: false,
            },
            num_mentions: 4,
            num_negative: 3,
            total_reach: 900,
            num_steps: 2,
            updated_at_us: 10,
        };
        let step = Step {
            seq: 2,
            kind: AlertKind::Escalated as i32,
            state: CrisisState::Detected,
            severity: Severity::High,
            actor: String::new(),
            note: String::new(),
            at_us: 15,
        };
        let alert = alert(&crisis, &step, Severity::Medium);
        assert_eq!(alert.alert_id, "c-1:2");
        assert_eq!(alert.negative_share, 0.75);
        assert_eq!(alert.previous_severity, Severity::Medium.code());
        let message = alert_message("alerts", &alert);
        assert_eq!(message.key.as_deref(), Some("acme:c-1"));
        assert_eq!(
            headers::find_str(&message.headers, headers::SCHEMA),
            Some("socialops.alerts.v1.CrisisAlert")
        );
        assert_eq!(
            CrisisAlert::decode(message.payload.as_slice()).unwrap(),
            alert
        );
    }
}
