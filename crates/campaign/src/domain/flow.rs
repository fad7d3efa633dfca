//! The journey state machine: where one user is in one campaign, what moves them on, and what each
//! move does. Pure: the caller stores the state, keeps the timer and turns effects into sends.
//!
//! A journey runs from its current step until it waits (a duration, a local time, an event) or ends.
//! Jumps go forward only, so a run ends after at most as many steps as the journey has.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::definition::{
    Action, CampaignSpec, Entry, EventFact, EventMatch, Facts, Reentry, Stage, Step, Tier,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyState {
    /// The step to run next, or the one being waited in.
    pub step: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    pub facts: Facts,
    pub variant: String,
    pub entered_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited: Option<ExitReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Waiting {
    Until(DateTime<Utc>),
    ForEvent {
        event: EventMatch,
        until: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// Ran past the last step.
    Completed,
    /// The goal event happened.
    Goal,
    /// Left the entry segment.
    SegmentLeft,
    /// An exit step, or a jump to `exit`.
    Step,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Goal => "goal",
            Self::SegmentLeft => "segment_left",
            Self::Step => "step",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send {
        step_index: usize,
        step_id: String,
        text: String,
        action: Option<Action>,
    },
    Exited(ExitReason),
}

/// What the journey is told about its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Event(EventFact),
    Stage(Stage),
    Tier(Tier),
    SegmentLeft { segment_id: String },
}

/// Enters the journey and runs it to its first wait or its end.
pub fn enter(
    spec: &CampaignSpec,
    variant: &str,
    facts: Facts,
    now: DateTime<Utc>,
    tz: Tz,
) -> (JourneyState, Vec<Effect>) {
    let mut state = JourneyState {
        step: 0,
        waiting: None,
        facts,
        variant: variant.to_owned(),
        entered_at: now,
        exited: None,
    };
    let effects = run(spec, &mut state, now, tz);
    (state, effects)
}

/// Tells the journey what happened: a goal event or leaving the entry segment ends it, an awaited
/// event moves it on, and everything is remembered for branches.
pub fn observe(
    spec: &CampaignSpec,
    state: &mut JourneyState,
    observation: &Observation,
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<Effect> {
    if state.exited.is_some() {
        return Vec::new();
    }
    match observation {
        Observation::Stage(stage) => {
            state.facts.stage = Some(*stage);
            Vec::new()
        }
        Observation::Tier(tier) => {
            state.facts.tier = Some(*tier);
            Vec::new()
        }
        Observation::SegmentLeft { segment_id } => {
            let entered_by_it = matches!(
                &spec.entry,
                Entry::SegmentEntered { segment_id: entry } if entry == segment_id
            );
            if spec.exit.on_segment_left && entered_by_it {
                exit(state, ExitReason::SegmentLeft)
            } else {
                Vec::new()
            }
        }
        Observation::Event(fact) => {
            if fact.at < state.entered_at {
                return Vec::new();
            }
            state.facts.events.insert(fact.event);
            if spec.exit.goal.is_some_and(|goal| goal.matches(fact)) {
                return exit(state, ExitReason::Goal);
            }
            let Some(Waiting::ForEvent { event, .. }) = state.waiting else {
                return Vec::new();
            };
            if !event.matches(fact) {
                return Vec::new();
            }
            let on_event = match spec.steps.get(state.step) {
                Some(Step::WaitForEvent { on_event, .. }) => on_event.clone(),
                _ => None,
            };
            state.waiting = None;
            resume(spec, state, on_event.as_deref(), now, tz)
        }
    }
}

/// Moves a waiting journey on once its timer is due; before that, nothing happens.
pub fn wake(
    spec: &CampaignSpec,
    state: &mut JourneyState,
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<Effect> {
    if state.exited.is_some() {
        return Vec::new();
    }
    match state.waiting {
        None => run(spec, state, now, tz),
        Some(Waiting::Until(until)) if until <= now => {
            state.waiting = None;
            resume(spec, state, None, now, tz)
        }
        Some(Waiting::ForEvent { until, .. }) if until <= now => {
            let on_timeout = match spec.steps.get(state.step) {
                Some(Step::WaitForEvent { on_timeout, .. }) => on_timeout.clone(),
                _ => None,
            };
            state.waiting = None;
            resume(spec, state, on_timeout.as_deref(), now, tz)
        }
        Some(_) => Vec::new(),
    }
}

/// When the journey's timer is due.
pub fn due_at(state: &JourneyState) -> Option<DateTime<Utc>> {
    if state.exited.is_some() {
        return None;
    }
    match state.waiting {
        Some(Waiting::Until(until) | Waiting::ForEvent { until, .. }) => Some(until),
        None => None,
    }
}

/// Whether a user may enter again. A user still in the journey never enters twice; the caller checks
/// that.
pub fn may_reenter(
    reentry: &Reentry,
    last_entered_at: Option<DateTime<Utc>>,
    entered_before: bool,
    now: DateTime<Utc>,
) -> bool {
    if !entered_before {
        return true;
    }
    match reentry {
        Reentry::Once => false,
        Reentry::Always => true,
        Reentry::Cooldown(cooldown) => last_entered_at.is_none_or(|last| {
            chrono::Duration::from_std(*cooldown).is_ok_and(|cooldown| last + cooldown <= now)
        }),
    }
}

/// Goes on after the current step: to `target` (a step id or `exit`) or to the next step.
fn resume(
    spec: &CampaignSpec,
    state: &mut JourneyState,
    target: Option<&str>,
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<Effect> {
    match target {
        Some("exit") => exit(state, ExitReason::Step),
        Some(id) => match spec.step_index(id) {
            Some(index) if index > state.step => {
                state.step = index;
                run(spec, state, now, tz)
            }
            // Validation allows forward jumps to known steps only; a stored definition that breaks
            // that ends the journey rather than loop.
            _ => exit(state, ExitReason::Step),
        },
        None => {
            state.step += 1;
            run(spec, state, now, tz)
        }
    }
}

fn exit(state: &mut JourneyState, reason: ExitReason) -> Vec<Effect> {
    state.exited = Some(reason);
    state.waiting = None;
    vec![Effect::Exited(reason)]
}

/// Runs from the current step until a wait or the end.
fn run(spec: &CampaignSpec, state: &mut JourneyState, now: DateTime<Utc>, tz: Tz) -> Vec<Effect> {
    let mut effects = Vec::new();
    loop {
        let Some(step) = spec.steps.get(state.step) else {
            effects.extend(exit(state, ExitReason::Completed));
            return effects;
        };
        match step {
            Step::Send { id, action, .. } => {
                if let Some(text) = step.text_for(&state.variant) {
                    effects.push(Effect::Send {
                        step_index: state.step,
                        step_id: id.clone(),
                        text: text.to_owned(),
                        action: action.clone(),
                    });
                }
                state.step += 1;
            }
            Step::Wait {
                duration,
                until_local_time,
                ..
            } => {
                let until = match (duration, until_local_time) {
                    (Some(duration), _) => after(now, *duration),
                    (None, Some(time)) => next_local_time(now, time.0, tz),
                    (None, None) => now,
                };
                state.waiting = Some(Waiting::Until(until));
                return effects;
            }
            Step::WaitForEvent { event, timeout, .. } => {
                state.waiting = Some(Waiting::ForEvent {
                    event: *event,
                    until: after(now, *timeout),
                });
                return effects;
            }
            Step::Branch {
                condition,
                then,
                otherwise,
                ..
            } => {
                let target = if condition.holds(&state.facts) {
                    then
                } else {
                    otherwise
                };
                if target == "exit" {
                    effects.extend(exit(state, ExitReason::Step));
                    return effects;
                }
                match spec.step_index(target) {
                    Some(index) if index > state.step => state.step = index,
                    _ => {
                        effects.extend(exit(state, ExitReason::Step));
                        return effects;
                    }
                }
            }
            Step::Exit { .. } => {
                effects.extend(exit(state, ExitReason::Step));
                return effects;
            }
        }
    }
}

fn after(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The next moment strictly after `now` when the local clock in `tz` shows `time`. On a day when
/// that local time does not exist (a DST gap) it is the first moment after the gap; when it exists
/// twice, the first of the two.
fn next_local_time(now: DateTime<Utc>, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    for days in 0..3 {
        let Some(date) = today.checked_add_days(Days::new(days)) else {
            break;
        };
        let local = date.and_time(time);
        let candidate = match local.and_local_timezone(tz) {
            chrono::LocalResult::Single(at) => at,
            chrono::LocalResult::Ambiguous(first, _) => first,
            chrono::LocalResult::None => {
                // In a gap: the clock jumps over `time`; step forward to where it lands.
                let mut probe = local;
                loop {
                    probe += chrono::Duration::minutes(15);
                    if let Some(at) = probe.and_local_timezone(tz).earliest() {
                        break at;
                    }
                }
            }
        };
        let candidate = candidate.with_timezone(&Utc);
        if candidate > now {
            return candidate;
        }
    }
    after(now, Duration::from_secs(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::definition::{EventType, Format, parse};

    const WINBACK: &str = include_str!("../../examples/winback.toml");
    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn order(when: DateTime<Utc>) -> Observation {
        Observation::Event(EventFact {
            event: EventType::OrderPlaced,
            amount_cents: Some(9_900),
            first_order: false,
            at: when,
        })
    }

    fn sent(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { step_id, .. } => Some(step_id.as_str()),
                Effect::Exited(_) => None,
            })
            .collect()
    }

    #[test]
    fn winback_sends_the_coupon_waits_then_reminds() {
        let spec = parse(WINBACK, Format::Toml).unwrap();
        let t0 = at("2026-11-20T04:00:00Z");
        let (mut state, effects) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        assert_eq!(sent(&effects), ["coupon"]);
        assert_eq!(due_at(&state), Some(t0 + chrono::Duration::days(3)));
        assert!(wake(&spec, &mut state, t0 + chrono::Duration::days(1), SHANGHAI).is_empty());
        let effects = wake(&spec, &mut state, t0 + chrono::Duration::days(3), SHANGHAI);
        assert_eq!(sent(&effects), ["reminder"]);
        assert_eq!(effects.last(), Some(&Effect::Exited(ExitReason::Completed)));
        assert_eq!(due_at(&state), None);
    }

    #[test]
    fn an_order_while_waiting_is_the_goal() {
        let spec = parse(WINBACK, Format::Toml).unwrap();
        let t0 = at("2026-11-20T04:00:00Z");
        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        let later = t0 + chrono::Duration::hours(5);
        let effects = observe(&spec, &mut state, &order(later), later, SHANGHAI);
        assert_eq!(effects, [Effect::Exited(ExitReason::Goal)]);
        assert!(wake(&spec, &mut state, t0 + chrono::Duration::days(4), SHANGHAI).is_empty());
        // An order from before the user entered does not count.
        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        let before = t0 - chrono::Duration::hours(1);
        assert!(observe(&spec, &mut state, &order(before), t0, SHANGHAI).is_empty());
    }

    fn journey(steps: &str) -> CampaignSpec {
        parse(
            &format!(
                "name = \"t\"\nchannel = \"push\"\nkind = \"content\"\n\
                 entry = {{ type = \"segment_entered\", segment_id = \"s\" }}\n\
                 exit = {{ on_segment_left = true }}\n\
                 [[variants]]\nid = \"a\"\n{steps}"
            ),
            Format::Toml,
        )
        .unwrap()
    }

    #[test]
    fn waiting_for_an_event_resumes_where_it_says() {
        let spec = journey(
            "[[steps]]\ntype = \"wait_for_event\"\nid = \"w\"\nevent = { event = \"follow\" }\n\
             timeout = \"1d\"\non_event = \"thanks\"\non_timeout = \"nudge\"\n\
             [[steps]]\ntype = \"send\"\nid = \"nudge\"\ntext = \"关注我们\"\n\
             [[steps]]\ntype = \"exit\"\nid = \"done\"\n\
             [[steps]]\ntype = \"send\"\nid = \"thanks\"\ntext = \"谢谢关注\"",
        );
        let t0 = at("2026-11-20T04:00:00Z");
        let (mut state, effects) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        assert!(effects.is_empty());
        let follow = Observation::Event(EventFact {
            event: EventType::Follow,
            amount_cents: None,
            first_order: false,
            at: t0,
        });
        let effects = observe(&spec, &mut state, &follow, t0, SHANGHAI);
        assert_eq!(sent(&effects), ["thanks"]);
        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        let effects = wake(&spec, &mut state, t0 + chrono::Duration::days(1), SHANGHAI);
        assert_eq!(sent(&effects), ["nudge"]);
        assert_eq!(state.exited, Some(ExitReason::Step));
    }

    #[test]
    fn branches_read_events_stage_and_tier() {
        let spec = journey(
            "[[steps]]\ntype = \"branch\"\nid = \"b\"\ncondition = { tier = \"high_value\" }\n\
             then = \"vip\"\nelse = \"plain\"\n\
             [[steps]]\ntype = \"send\"\nid = \"plain\"\ntext = \"你好\"\n\
             [[steps]]\ntype = \"exit\"\nid = \"x\"\n\
             [[steps]]\ntype = \"send\"\nid = \"vip\"\ntext = \"尊贵的会员\"",
        );
        let t0 = at("2026-11-20T04:00:00Z");
        let vip = Facts {
            tier: Some(Tier::HighValue),
            ..Facts::default()
        };
        assert_eq!(sent(&enter(&spec, "a", vip, t0, SHANGHAI).1), ["vip"]);
        assert_eq!(
            sent(&enter(&spec, "a", Facts::default(), t0, SHANGHAI).1),
            ["plain"]
        );
        let spec = journey(
            "[[steps]]\ntype = \"wait\"\nid = \"w\"\nduration = \"1h\"\n\
             [[steps]]\ntype = \"branch\"\nid = \"b\"\ncondition = { event_happened = \"like\" }\n\
             then = \"exit\"\nelse = \"ask\"\n\
             [[steps]]\ntype = \"send\"\nid = \"ask\"\ntext = \"喜欢吗\"",
        );
        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        let like = Observation::Event(EventFact {
            event: EventType::Like,
            amount_cents: None,
            first_order: false,
            at: t0,
        });
        observe(&spec, &mut state, &like, t0, SHANGHAI);
        let effects = wake(&spec, &mut state, t0 + chrono::Duration::hours(1), SHANGHAI);
        assert_eq!(effects, [Effect::Exited(ExitReason::Step)]);
        let mut stage_state = enter(&spec, "a", Facts::default(), t0, SHANGHAI).0;
        observe(
            &spec,
            &mut stage_state,
            &Observation::Stage(Stage::Loyal),
            t0,
            SHANGHAI,
        );
        assert_eq!(stage_state.facts.stage, Some(Stage::Loyal));
    }

    #[test]
    fn leaving_the_entry_segment_exits_when_configured() {
        let spec = journey("[[steps]]\ntype = \"wait\"\nid = \"w\"\nduration = \"1h\"");
        let t0 = at("2026-11-20T04:00:00Z");
        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        let other = Observation::SegmentLeft {
            segment_id: "other".into(),
        };
        assert!(observe(&spec, &mut state, &other, t0, SHANGHAI).is_empty());
        let left = Observation::SegmentLeft {
            segment_id: "s".into(),
        };
        assert_eq!(
            observe(&spec, &mut state, &left, t0, SHANGHAI),
            [Effect::Exited(ExitReason::SegmentLeft)]
        );
    }

    #[test]
    fn until_local_time_is_the_next_such_time_across_dst() {
        let new_york: Tz = chrono_tz::America::New_York;
        let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap();
        // 2026-03-08 is the spring-forward day in New York: 10:00 is 14:00 UTC after it, 15:00 before.
        assert_eq!(
            next_local_time(at("2026-03-07T16:00:00Z"), ten, new_york),
            at("2026-03-08T14:00:00Z")
        );
        assert_eq!(
            next_local_time(at("2026-03-07T14:00:00Z"), ten, new_york),
            at("2026-03-07T15:00:00Z")
        );
        // 02:30 does not exist on that day: the first moment after the gap.
        let half_past_two = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            next_local_time(at("2026-03-08T05:00:00Z"), half_past_two, new_york),
            at("2026-03-08T07:00:00Z")
        );
    }

    #[test]
    fn reentry_rules() {
        let now = at("2026-11-20T04:00:00Z");
        let week_ago = Some(now - chrono::Duration::days(7));
        assert!(may_reenter(&Reentry::Once, None, false, now));
        assert!(!may_reenter(&Reentry::Once, week_ago, true, now));
        assert!(may_reenter(&Reentry::Always, week_ago, true, now));
        let cooldown = Reentry::Cooldown(Duration::from_secs(6 * 86_400));
        assert!(may_reenter(&cooldown, week_ago, true, now));
        let cooldown = Reentry::Cooldown(Duration::from_secs(8 * 86_400));
        assert!(!may_reenter(&cooldown, week_ago, true, now));
    }
}
