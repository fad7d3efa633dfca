//! Crises: opened by a spike, grown by later mentions, moved along by people and reminded by the clock.
//! Every change is a numbered step and one alert.

use std::collections::BTreeMap;

use socialops_bus::{Outbox, OutgoingMessage};
use socialops_proto::alerts::v1::AlertKind;
use sqlx::AnyConnection;

use super::Monitor;
use super::alert::{alert, alert_message};
use crate::domain::Label;
use crate::domain::crisis::{Action, CrisisState, Reminder, ResponseClock, transition};
use crate::domain::severity::Signals;
use crate::domain::spike::{Evaluation, cooled_down, evaluate, fold_buckets};
use crate::error::SentimentError;
use crate::store::crises::{self, Crisis, Step};
use crate::store::mentions::{self, Mention};
use crate::store::{HOUR_US, LabelCounts, watchlists};

/// Crises whose reminders one sweep handles at most; the rest wait for the next sweep.
const REMINDERS_PER_SWEEP: usize = 500;

/// Stores a batch's mentions, counts them, and opens or grows each touched watchlist's crisis.
/// Returns the alerts to publish.
pub(super) async fn absorb(
    monitor: &Monitor,
    conn: &mut AnyConnection,
    new_mentions: &[Mention],
    now_us: i64,
) -> Result<Vec<OutgoingMessage>, SentimentError> {
    let rules = &monitor.rules.spike;
    mentions::insert(conn, new_mentions).await?;
    let mut buckets: BTreeMap<(String, String, i64), LabelCounts> = BTreeMap::new();
    // Per tenant and watchlist: whether the batch brought a mention, and a negative one, into the window.
    let mut touched: BTreeMap<&str, BTreeMap<&str, Recent>> = BTreeMap::new();
    let window_start = rules.window_start(now_us);
    for m in new_mentions {
        buckets
            .entry((
                m.tenant_id.clone(),
                m.watchlist_id.clone(),
                rules.bucket_of(m.occurred_at_us),
            ))
            .or_default()
            .add(m.label);
        let recent = touched
            .entry(m.tenant_id.as_str())
            .or_default()
            .entry(m.watchlist_id.as_str())
            .or_default();
        if m.occurred_at_us >= window_start {
            recent.any = true;
            recent.negative |= m.label == Label::Negative;
        }
    }
    mentions::add_to_buckets(conn, &buckets).await?;

    let mut alerts = Vec::new();
    for (tenant_id, watchlists) in touched {
        // Mentions older than the window only feed the baseline: a backfill of history opens nothing.
        if !watchlists.values().any(|r| r.any) {
            continue;
        }
        let mut open_crises = crises::open_by_watchlist(conn, tenant_id).await?;
        for (watchlist_id, recent) in watchlists {
            let open_crisis = open_crises.remove(watchlist_id);
            // Without a new negative mention in the window neither the count nor the share of
            // negatives rose, so no spike can have started.
            let wanted = match &open_crisis {
                Some(_) => recent.any,
                None => recent.negative,
            };
            if wanted {
                let alert =
                    judge(monitor, conn, tenant_id, watchlist_id, open_crisis, now_us).await?;
                alerts.extend(alert);
            }
        }
    }
    Ok(alerts)
}

#[derive(Debug, Clone, Copy, Default)]
struct Recent {
    any: bool,
    negative: bool,
}

/// Judges one watchlist's window: grows its open crisis, or opens one on a spike.
async fn judge(
    monitor: &Monitor,
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
    open_crisis: Option<Crisis>,
    now_us: i64,
) -> Result<Option<OutgoingMessage>, SentimentError> {
    let rules = &monitor.rules.spike;
    let state = mentions::watch_state(conn, tenant_id, watchlist_id).await?;
    let starts = rules.buckets_to_read(now_us);
    let counts = mentions::bucket_counts(conn, tenant_id, watchlist_id, &starts).await?;
    let (window, history) = fold_buckets(rules, now_us, state.first_bucket_us, |bucket| {
        counts.get(&bucket).copied().unwrap_or_default()
    });
    let evaluation = evaluate(rules, window, &history);
    match open_crisis {
        Some(crisis) => grow(monitor, conn, crisis, &evaluation, now_us).await,
        None if evaluation.trigger.is_some()
            && cooled_down(rules, state.last_spike_at_us, now_us) =>
        {
            let opened = open(monitor, conn, tenant_id, watchlist_id, &evaluation, now_us).await?;
            Ok(Some(opened))
        }
        None => Ok(None),
    }
}

fn signals(monitor: &Monitor, evaluation: &Evaluation, total_reach: u64) -> Signals {
    let rules = &monitor.rules.spike;
    Signals {
        volume_ratio: evaluation.volume_ratio(),
        negative_share: evaluation.window.negative_share(),
        total_reach,
        negatives_per_hour: evaluation.window.negative as f64 * HOUR_US as f64
            / rules.window_us() as f64,
    }
}

async fn open(
    monitor: &Monitor,
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
    evaluation: &Evaluation,
    now_us: i64,
) -> Result<OutgoingMessage, SentimentError> {
    let rules = &monitor.rules;
    let crisis_id = uuid::Uuid::now_v7().to_string();
    let window_start_us = rules.spike.window_start(now_us);
    let totals =
        mentions::attach_to_crisis(conn, tenant_id, watchlist_id, window_start_us, &crisis_id)
            .await?;
    let watchlist_name = watchlists::get(conn, tenant_id, watchlist_id)
        .await?
        .map(|w| w.name)
        .unwrap_or_default();
    let severity = rules
        .severity
        .assess(&signals(monitor, evaluation, totals.reach));
    let response_time_us = rules.tenant(tenant_id).response_time_us();
    let mut crisis = Crisis {
        tenant_id: tenant_id.to_owned(),
        crisis_id,
        watchlist_id: watchlist_id.to_owned(),
        watchlist_name,
        state: CrisisState::Detected,
        severity,
        reason: evaluation.describe(&rules.spike),
        window_start_us,
        clock: ResponseClock {
            detected_at_us: now_us,
            respond_by_us: now_us.saturating_add(response_time_us),
            half_time_reminded: false,
            breached: false,
        },
        num_mentions: totals.mentions,
        num_negative: totals.negative,
        total_reach: totals.reach,
        num_steps: 0,
        updated_at_us: now_us,
    };
    crises::insert(conn, &crisis).await?;
    mentions::record_spike(conn, tenant_id, watchlist_id, now_us).await?;
    let step = record_step(conn, &mut crisis, AlertKind::Opened, "", "", now_us).await?;
    tracing::info!(
        tenant = %tenant_id,
        crisis = %crisis.crisis_id,
        severity = severity.as_str(),
        reason = %crisis.reason,
        "crisis opened"
    );
    Ok(alert_message(
        monitor.alerts_topic(),
        &alert(&crisis, &step, severity),
    ))
}

/// Attaches the new mentions to the open crisis and escalates it when the signals call for a higher
/// severity.
async fn grow(
    monitor: &Monitor,
    conn: &mut AnyConnection,
    mut crisis: Crisis,
    evaluation: &Evaluation,
    now_us: i64,
) -> Result<Option<OutgoingMessage>, SentimentError> {
    let totals = mentions::attach_to_crisis(
        conn,
        &crisis.tenant_id,
        &crisis.watchlist_id,
        crisis.window_start_us,
        &crisis.crisis_id,
    )
    .await?;
    if totals.mentions == 0 {
        return Ok(None);
    }
    crises::add_totals(
        conn,
        &crisis,
        totals.mentions,
        totals.negative,
        totals.reach,
        now_us,
    )
    .await?;
    crisis.num_mentions += totals.mentions;
    crisis.num_negative += totals.negative;
    crisis.total_reach += totals.reach;
    let severity = monitor
        .rules
        .severity
        .assess(&signals(monitor, evaluation, crisis.total_reach));
    let previous = crisis.severity;
    if severity <= previous || !crises::raise_severity(conn, &crisis, severity, now_us).await? {
        return Ok(None);
    }
    crisis.severity = severity;
    let step = record_step(conn, &mut crisis, AlertKind::Escalated, "", "", now_us).await?;
    tracing::info!(
        tenant = %crisis.tenant_id,
        crisis = %crisis.crisis_id,
        from = previous.as_str(),
        to = severity.as_str(),
        "crisis escalated"
    );
    Ok(Some(alert_message(
        monitor.alerts_topic(),
        &alert(&crisis, &step, previous),
    )))
}

async fn record_step(
    conn: &mut AnyConnection,
    crisis: &mut Crisis,
    kind: AlertKind,
    actor: &str,
    note: &str,
    now_us: i64,
) -> Result<Step, SentimentError> {
    let mut step = Step {
        seq: 0,
        kind: kind as i32,
        state: crisis.state,
        severity: crisis.severity,
        actor: actor.to_owned(),
        note: note.to_owned(),
        at_us: now_us,
    };
    step.seq = crises::add_step(conn, &crisis.tenant_id, &crisis.crisis_id, &step).await?;
    crisis.num_steps = step.seq;
    crisis.updated_at_us = now_us;
    Ok(step)
}

/// A person's step on a crisis.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub tenant_id: String,
    pub crisis_id: String,
    pub action: Action,
    /// Who acted, as recorded.
    pub actor: String,
    pub note: String,
}

fn action_kind(action: Action) -> AlertKind {
    match action {
        Action::Acknowledge => AlertKind::Acknowledged,
        Action::Respond => AlertKind::Responding,
        Action::Resolve => AlertKind::Resolved,
        Action::Review => AlertKind::Reviewed,
    }
}

/// Takes the step, records who and when, and publishes it; returns the crisis after it.
pub async fn act(monitor: &Monitor, request: &ActionRequest) -> Result<Crisis, SentimentError> {
    let now_us = monitor.now_us();
    let mut tx = monitor.store().db().begin().await?;
    let not_found =
        || SentimentError::NotFound(format!("crisis `{}` not found", request.crisis_id));
    let mut crisis = crises::get(&mut tx, &request.tenant_id, &request.crisis_id)
        .await?
        .ok_or_else(not_found)?;
    let from = crisis.state;
    let to = transition(from, request.action)?;
    if !crises::set_state(&mut tx, &crisis, from, to, now_us).await? {
        // Another call moved it between the read and the write: judge the action on what it is now.
        let current = crises::get(&mut tx, &request.tenant_id, &request.crisis_id)
            .await?
            .ok_or_else(not_found)?;
        transition(current.state, request.action)?;
        return Err(SentimentError::Conflict(
            "the crisis changed while this step was taken; retry".into(),
        ));
    }
    crisis.state = to;
    let step = record_step(
        &mut tx,
        &mut crisis,
        action_kind(request.action),
        &request.actor,
        &request.note,
        now_us,
    )
    .await?;
    let message = alert_message(
        monitor.alerts_topic(),
        &alert(&crisis, &step, crisis.severity),
    );
    Outbox::enqueue(&mut tx, std::slice::from_ref(&message)).await?;
    tx.commit().await?;
    monitor.wake_relay();
    tracing::info!(
        tenant = %crisis.tenant_id,
        crisis = %crisis.crisis_id,
        state = to.as_str(),
        actor = %request.actor,
        "crisis step recorded"
    );
    Ok(crisis)
}

/// Sends the reminders the response clock owes at the monitor's now; returns how many were sent. Safe
/// to run from several replicas at once: a reminder is sent by whoever marks it first.
pub async fn remind(monitor: &Monitor) -> Result<usize, SentimentError> {
    let now_us = monitor.now_us();
    let due = {
        let mut conn = monitor.store().conn().await?;
        crises::due_for_reminder(&mut conn, now_us, REMINDERS_PER_SWEEP).await?
    };
    let mut sent = 0;
    for mut crisis in due {
        let Some(reminder) = crisis.clock.due(crisis.state, now_us) else {
            continue;
        };
        let breach = reminder == Reminder::Breach;
        let mut tx = monitor.store().db().begin().await?;
        if !crises::mark_reminded(&mut tx, &crisis, breach, now_us).await? {
            continue;
        }
        let hours = (now_us - crisis.clock.detected_at_us) as f64 / HOUR_US as f64;
        let (kind, note) = if breach {
            crisis.clock.breached = true;
            crisis.clock.half_time_reminded = true;
            (
                AlertKind::Breached,
                format!("response time ran out: nobody acknowledged or responded in {hours:.1} h"),
            )
        } else {
            crisis.clock.half_time_reminded = true;
            (
                AlertKind::ReminderHalfTime,
                format!("half the response time has passed ({hours:.1} h) without acknowledgement"),
            )
        };
        let step = record_step(&mut tx, &mut crisis, kind, "", &note, now_us).await?;
        let message = alert_message(
            monitor.alerts_topic(),
            &alert(&crisis, &step, crisis.severity),
        );
        Outbox::enqueue(&mut tx, std::slice::from_ref(&message)).await?;
        tx.commit().await?;
        sent += 1;
        tracing::warn!(tenant = %crisis.tenant_id, crisis = %crisis.crisis_id, breach, "crisis response reminder");
    }
    if sent > 0 {
        monitor.wake_relay();
    }
    Ok(sent)
}
