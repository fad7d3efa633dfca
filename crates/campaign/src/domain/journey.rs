//! The journey state machine: where one user is in one campaign, what moves them on, and what each
//! move does. Pure: the caller stores the state, keeps the timer and turns effects into sends.
//!
//! A journey runs from its current step until it waits (a duration, a local time, an event) or ends.
//! Jumps go forward only, so a run ends after at most as many steps as the journey has.

use std::time::Duration;

use chrono::{DateTime, Days, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::definition::{
    Action, CampaignSpec, EXIT, EventFact, EventMatch, Facts, Reentry, Stage, Step, Tier,
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
            if spec.exit.on_segment_left && spec.entry.member_segment() == Some(segment_id) {
                exit(state, ExitReason::SegmentLeft)
            } else {
                Vec::new()
            }
        }
        Observation::Event(fact) => {
            // Redelivered or late events from before entry belong to an earlier journey, if any.
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

/// Whether a user may enter the journey: never while still in it (`last_exited` false), and after
/// leaving it as the re-entry rule says. `last_entered_at` is `None` for a user never in it.
pub fn may_reenter(
    reentry: &Reentry,
    last_entered_at: Option<DateTime<Utc>>,
    last_exited: bool,
    now: DateTime<Utc>,
) -> bool {
    let Some(last_entered_at) = last_entered_at else {
        return true;
    };
    if !last_exited {
        return false;
    }
    match reentry {
        Reentry::Once => false,
        Reentry::Always => true,
        Reentry::Cooldown(cooldown) => chrono::Duration::from_std(*cooldown)
            .is_ok_and(|cooldown| last_entered_at + cooldown <= now),
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
        Some(EXIT) => exit(state, ExitReason::Step),
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
                    (None, Some(time)) => next_local_time(now, *time, tz),
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
                if target == EXIT {
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

/// The next moment strictly after `now` when the clock in `tz` reads `time`. A time the clocks skip
/// (a DST gap) "happens" at the jump; one they repeat happens at each pass, the first after `now`
/// counting.
fn next_local_time(now: DateTime<Utc>, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    (0..=2)
        .filter_map(|days| today.checked_add_days(Days::new(days)))
        .flat_map(|date| occurrences(tz, date.and_time(time)))
        .find(|at| *at > now)
        .unwrap_or_else(|| after(now, Duration::from_secs(86_400)))
}

fn occurrences(tz: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => vec![at.to_utc()],
        LocalResult::Ambiguous(first, second) => vec![first.to_utc(), second.to_utc()],
        LocalResult::None => vec![super::pressure::end_of_gap(tz, local)],
    }
}

#[cfg(test)]
mod tests {
    use super::super::definition::{EventType, Format, parse};
    use super::*;

    const WINBACK: &str = include_str!("../../examples/winback.toml");
    const WELCOME: &str = include_str!("../../examples/welcome.json");
    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn hours(n: i64) -> chrono::Duration {
        chrono::Duration::hours(n)
    }

    fn event(event: EventType, when: DateTime<Utc>) -> Observation {
        Observation::Event(EventFact {
            event,
            amount_cents: event.is_order().then_some(9_900),
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

    /// A one-variant journey entered from segment `s`, left when the user leaves it.
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
    fn winback_sends_the_coupon_waits_three_days_then_reminds() {
        let spec = parse(WINBACK, Format::Toml).unwrap();
        assert!(
            spec.entry
                .matches_stage(Some(Stage::Active), Stage::Churned)
        );
        let t0 = at("2026-11-20T04:00:00Z");
        let (mut state, effects) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        assert_eq!(
            effects,
            [Effect::Send {
                step_index: 0,
                step_id: "coupon".into(),
                text: "好久不见！送你一张回归优惠券，七天内有效。".into(),
                action: Some(Action::Coupon {
                    template: "WINBACK10".into()
                }),
            }]
        );
        let three_days = t0 + chrono::Duration::days(3);
        assert_eq!(due_at(&state), Some(three_days));
        // A like is remembered, but is neither the goal nor the awaited order.
        let like = event(EventType::Like, t0 + hours(1));
        assert!(observe(&spec, &mut state, &like, t0 + hours(1), SHANGHAI).is_empty());
        assert!(state.facts.events.contains(&EventType::Like));
        assert!(wake(&spec, &mut state, three_days - hours(1), SHANGHAI).is_empty());
        let effects = wake(&spec, &mut state, three_days, SHANGHAI);
        assert_eq!(sent(&effects), ["reminder"]);
        assert_eq!(effects.last(), Some(&Effect::Exited(ExitReason::Completed)));
        assert_eq!(state.exited, Some(ExitReason::Completed));
        assert_eq!(due_at(&state), None);
        // An ended journey hears nothing more.
        let order = event(EventType::OrderPlaced, three_days + hours(1));
        assert!(observe(&spec, &mut state, &order, three_days + hours(1), SHANGHAI).is_empty());
        assert!(wake(&spec, &mut state, three_days + hours(2), SHANGHAI).is_empty());
    }

    #[test]
    fn an_order_while_waiting_is_the_goal() {
        let spec = parse(WINBACK, Format::Toml).unwrap();
        let t0 = at("2026-11-20T04:00:00Z");
        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        let later = t0 + hours(5);
        let refund = event(EventType::OrderRefunded, later);
        assert!(observe(&spec, &mut state, &refund, later, SHANGHAI).is_empty());
        let order = event(EventType::OrderPlaced, later);
        let effects = observe(&spec, &mut state, &order, later, SHANGHAI);
        assert_eq!(effects, [Effect::Exited(ExitReason::Goal)]);
        assert_eq!(due_at(&state), None);
        assert!(wake(&spec, &mut state, t0 + chrono::Duration::days(4), SHANGHAI).is_empty());
        // An order from before the user entered does not count.
        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        let before = event(EventType::OrderPlaced, t0 - hours(1));
        assert!(observe(&spec, &mut state, &before, t0, SHANGHAI).is_empty());
        assert_eq!(state.exited, None);
        assert!(state.facts.events.is_empty());
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
        assert_eq!(due_at(&state), Some(t0 + hours(24)));
        let effects = observe(
            &spec,
            &mut state,
            &event(EventType::Follow, t0),
            t0,
            SHANGHAI,
        );
        assert_eq!(sent(&effects), ["thanks"]);
        assert_eq!(effects.last(), Some(&Effect::Exited(ExitReason::Completed)));

        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        let effects = wake(&spec, &mut state, t0 + hours(24), SHANGHAI);
        assert_eq!(sent(&effects), ["nudge"]);
        assert_eq!(state.exited, Some(ExitReason::Step));
    }

    #[test]
    fn branches_read_tier_event_and_stage() {
        let by_tier = journey(
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
        assert_eq!(sent(&enter(&by_tier, "a", vip, t0, SHANGHAI).1), ["vip"]);
        let plain = enter(&by_tier, "a", Facts::default(), t0, SHANGHAI);
        assert_eq!(sent(&plain.1), ["plain"]);
        assert_eq!(plain.0.exited, Some(ExitReason::Step));

        let by_event = journey(
            "[[steps]]\ntype = \"wait\"\nid = \"w\"\nduration = \"1h\"\n\
             [[steps]]\ntype = \"branch\"\nid = \"b\"\ncondition = { event_happened = \"like\" }\n\
             then = \"exit\"\nelse = \"ask\"\n\
             [[steps]]\ntype = \"send\"\nid = \"ask\"\ntext = \"喜欢吗\"",
        );
        let (mut state, _) = enter(&by_event, "a", Facts::default(), t0, SHANGHAI);
        observe(
            &by_event,
            &mut state,
            &event(EventType::Like, t0),
            t0,
            SHANGHAI,
        );
        let effects = wake(&by_event, &mut state, t0 + hours(1), SHANGHAI);
        assert_eq!(effects, [Effect::Exited(ExitReason::Step)]);
        let (mut state, _) = enter(&by_event, "a", Facts::default(), t0, SHANGHAI);
        assert_eq!(
            sent(&wake(&by_event, &mut state, t0 + hours(1), SHANGHAI)),
            ["ask"]
        );

        // The stage as last announced, whatever it was at entry.
        let by_stage = journey(
            "[[steps]]\ntype = \"wait\"\nid = \"w\"\nduration = \"1h\"\n\
             [[steps]]\ntype = \"branch\"\nid = \"b\"\ncondition = { stage = \"loyal\" }\n\
             then = \"thanks\"\nelse = \"exit\"\n\
             [[steps]]\ntype = \"send\"\nid = \"thanks\"\ntext = \"谢谢支持\"",
        );
        let active = Facts {
            stage: Some(Stage::Active),
            ..Facts::default()
        };
        let (mut state, _) = enter(&by_stage, "a", active, t0, SHANGHAI);
        let loyal = Observation::Stage(Stage::Loyal);
        assert!(observe(&by_stage, &mut state, &loyal, t0, SHANGHAI).is_empty());
        assert_eq!(
            sent(&wake(&by_stage, &mut state, t0 + hours(1), SHANGHAI)),
            ["thanks"]
        );
        let (mut state, _) = enter(&by_stage, "a", Facts::default(), t0, SHANGHAI);
        let tier = Observation::Tier(Tier::Regular);
        assert!(observe(&by_stage, &mut state, &tier, t0, SHANGHAI).is_empty());
        assert_eq!(state.facts.tier, Some(Tier::Regular));
        assert!(sent(&wake(&by_stage, &mut state, t0 + hours(1), SHANGHAI)).is_empty());
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
        assert_eq!(due_at(&state), None);

        let mut stays = spec.clone();
        stays.exit.on_segment_left = false;
        let (mut state, _) = enter(&stays, "a", Facts::default(), t0, SHANGHAI);
        assert!(observe(&stays, &mut state, &left, t0, SHANGHAI).is_empty());
        assert_eq!(state.exited, None);
    }

    #[test]
    fn until_local_time_waits_for_the_users_clock_across_dst() {
        let spec = journey(
            "[[steps]]\ntype = \"wait\"\nid = \"morning\"\nuntil_local_time = \"10:00\"\n\
             [[steps]]\ntype = \"send\"\nid = \"hello\"\ntext = \"早上好\"",
        );
        // 2026-03-08 is the spring-forward day in New York: 10:00 is 15:00 UTC before it and
        // 14:00 UTC on it.
        let (state, _) = enter(
            &spec,
            "a",
            Facts::default(),
            at("2026-03-07T14:00:00Z"),
            NEW_YORK,
        );
        assert_eq!(due_at(&state), Some(at("2026-03-07T15:00:00Z")));
        let (mut state, _) = enter(
            &spec,
            "a",
            Facts::default(),
            at("2026-03-07T16:00:00Z"),
            NEW_YORK,
        );
        assert_eq!(due_at(&state), Some(at("2026-03-08T14:00:00Z")));
        let effects = wake(&spec, &mut state, at("2026-03-08T14:00:00Z"), NEW_YORK);
        assert_eq!(sent(&effects), ["hello"]);
        // Exactly at 10:00 the wait is for tomorrow's: strictly after now.
        assert_eq!(
            next_local_time(at("2026-03-08T14:00:00Z"), time(10, 0), NEW_YORK),
            at("2026-03-09T14:00:00Z")
        );
    }

    fn time(hour: u32, minute: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(hour, minute, 0).unwrap()
    }

    #[test]
    fn a_skipped_or_repeated_local_time_is_still_reached() {
        // 02:30 does not exist on 2026-03-08 in New York: it "happens" at the jump to 03:00 EDT.
        assert_eq!(
            next_local_time(at("2026-03-08T05:00:00Z"), time(2, 30), NEW_YORK),
            at("2026-03-08T07:00:00Z")
        );
        // 01:30 happens twice on 2026-11-01: at 05:30 UTC (EDT) and at 06:30 UTC (EST).
        assert_eq!(
            next_local_time(at("2026-11-01T04:00:00Z"), time(1, 30), NEW_YORK),
            at("2026-11-01T05:30:00Z")
        );
        assert_eq!(
            next_local_time(at("2026-11-01T05:40:00Z"), time(1, 30), NEW_YORK),
            at("2026-11-01T06:30:00Z")
        );
        // Lord Howe Island moves its clocks by half an hour, at 02:00 to 02:30 on 2026-10-04.
        let lord_howe = chrono_tz::Australia::Lord_Howe;
        assert_eq!(
            next_local_time(at("2026-10-03T14:00:00Z"), time(2, 15), lord_howe),
            at("2026-10-03T15:30:00Z")
        );
    }

    #[test]
    fn welcome_runs_each_variant_to_its_own_end() {
        let spec = parse(WELCOME, Format::Json).unwrap();
        // 2026-12-01 12:00 in Shanghai.
        let t0 = at("2026-12-01T04:00:00Z");
        let (mut state, effects) = enter(&spec, "short", Facts::default(), t0, SHANGHAI);
        assert!(
            matches!(&effects[..], [Effect::Send { text, .. }] if text == "欢迎入会，新人礼已到账。")
        );
        // No first order in three days: the next 10:00 in Shanghai, then the plain nudge.
        let three_days = t0 + chrono::Duration::days(3);
        assert!(wake(&spec, &mut state, three_days, SHANGHAI).is_empty());
        assert_eq!(due_at(&state), Some(at("2026-12-05T02:00:00Z")));
        let effects = wake(&spec, &mut state, at("2026-12-05T02:00:00Z"), SHANGHAI);
        assert_eq!(sent(&effects), ["nudge"]);
        assert_eq!(state.exited, Some(ExitReason::Step));

        let (mut state, _) = enter(&spec, "warm", Facts::default(), t0, SHANGHAI);
        let first = Observation::Event(EventFact {
            event: EventType::OrderPlaced,
            amount_cents: Some(5_000),
            first_order: true,
            at: t0 + hours(2),
        });
        let effects = observe(&spec, &mut state, &first, t0 + hours(2), SHANGHAI);
        assert_eq!(sent(&effects), ["thanks"]);
        assert!(matches!(
            &effects[0],
            Effect::Send { action: Some(Action::Referral { programme }), step_index: 8, .. }
                if programme == "friends"
        ));

        let (mut state, _) = enter(&spec, "warm", Facts::default(), t0, SHANGHAI);
        let tier = Observation::Tier(Tier::HighValue);
        observe(&spec, &mut state, &tier, t0 + hours(1), SHANGHAI);
        wake(&spec, &mut state, three_days, SHANGHAI);
        let effects = wake(&spec, &mut state, at("2026-12-05T02:00:00Z"), SHANGHAI);
        assert_eq!(sent(&effects), ["vip"]);
    }

    #[test]
    fn the_state_is_stored_as_json_and_read_back() {
        let spec = parse(WINBACK, Format::Toml).unwrap();
        let t0 = at("2026-11-20T04:00:00Z");
        let (mut state, _) = enter(&spec, "a", Facts::default(), t0, SHANGHAI);
        observe(
            &spec,
            &mut state,
            &event(EventType::Comment, t0),
            t0,
            SHANGHAI,
        );
        let stored = serde_json::to_string(&state).unwrap();
        let mut read: JourneyState = serde_json::from_str(&stored).unwrap();
        assert_eq!(read, state);
        let effects = wake(&spec, &mut read, t0 + chrono::Duration::days(3), SHANGHAI);
        assert_eq!(sent(&effects), ["reminder"]);
    }

    #[test]
    fn reentry_rules() {
        let now = at("2026-11-20T04:00:00Z");
        let week_ago = Some(now - chrono::Duration::days(7));
        for rule in [Reentry::Once, Reentry::Always] {
            assert!(may_reenter(&rule, None, false, now));
            // Never twice at once.
            assert!(!may_reenter(&rule, week_ago, false, now));
        }
        assert!(!may_reenter(&Reentry::Once, week_ago, true, now));
        assert!(may_reenter(&Reentry::Always, week_ago, true, now));
        let six_days = Reentry::Cooldown(Duration::from_secs(6 * 86_400));
        assert!(may_reenter(&six_days, week_ago, true, now));
        assert!(!may_reenter(&six_days, week_ago, false, now));
        let eight_days = Reentry::Cooldown(Duration::from_secs(8 * 86_400));
        assert!(!may_reenter(&eight_days, week_ago, true, now));
    }
}
