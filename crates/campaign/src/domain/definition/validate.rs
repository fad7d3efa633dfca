//! Checks a definition that parsed, as a whole, so that one reading names every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{
    Action, CampaignSpec, EXIT, Entry, EventMatch, EventType, MAX_HOLDOUT, MAX_ID_CHARS, MAX_STEPS,
    MAX_TEXT_CHARS, MAX_VARIANTS, Problem, Step, Window, parse_cron, step_path,
};

const MAX_NAME_CHARS: usize = 200;
const MAX_BEST_TIME: Duration = Duration::from_secs(7 * 86_400);
/// The names of the review's product categories.
const PRODUCT_CATEGORIES: [&str; 4] = ["general", "cosmetics", "food", "medical"];
const ID_RULE: &str = "must be 1 to 64 of a-z, 0-9, - and _";

/// Every problem with a definition that parsed.
pub fn validate(spec: &CampaignSpec) -> Vec<Problem> {
    let mut problems = Problems::default();
    campaign(spec, &mut problems);
    let variant_ids = variants(spec, &mut problems);
    entry(&spec.entry, &mut problems);
    if let Some(goal) = &spec.exit.goal {
        event_match("exit.goal", goal, &mut problems);
    }
    if spec.exit.on_segment_left && spec.entry.member_segment().is_none() {
        problems.add(
            "exit.on_segment_left",
            "the entry has no segment to leave; it needs a segment_entered, schedule or launch entry",
        );
    }
    steps(spec, &variant_ids, &mut problems);
    if spec.experiment.as_ref().is_some_and(|e| e.auto_rollout) && spec.variants.len() < 2 {
        problems.add(
            "experiment.auto_rollout",
            "a roll-out needs at least two variants to choose between",
        );
    }
    problems.0
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn campaign(spec: &CampaignSpec, problems: &mut Problems) {
    if spec.name.trim().is_empty() || spec.name.chars().count() > MAX_NAME_CHARS {
        problems.add("name", format!("must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if !(0.0..=MAX_HOLDOUT).contains(&spec.holdout) {
        problems.add(
            "holdout",
            format!("must be a share from 0 to {MAX_HOLDOUT}"),
        );
    }
    if let Some(category) = &spec.product_category
        && !PRODUCT_CATEGORIES.contains(&category.as_str())
    {
        problems.add(
            "product_category",
            format!(
                "{category:?} is not one of {}",
                PRODUCT_CATEGORIES.join(", ")
            ),
        );
    }
    if let Some(Window {
        start: Some(start),
        end: Some(end),
    }) = spec.window
        && end <= start
    {
        problems.add("window.end", "must be after window.start");
    }
    if spec.budget == Some(0) {
        problems.add("budget", "must be at least 1 send");
    }
    if spec
        .best_time
        .is_some_and(|window| window.is_zero() || window > MAX_BEST_TIME)
    {
        problems.add("best_time", "must be more than 0 and at most 7 days");
    }
}

/// The variant ids, for the send steps' messages.
fn variants<'a>(spec: &'a CampaignSpec, problems: &mut Problems) -> BTreeSet<&'a str> {
    if spec.variants.is_empty() || spec.variants.len() > MAX_VARIANTS {
        problems.add(
            "variants",
            format!("must have 1 to {MAX_VARIANTS} variants"),
        );
    }
    let mut ids = BTreeSet::new();
    for (i, variant) in spec.variants.iter().enumerate() {
        if !valid_id(&variant.id) {
            problems.add(format!("variants[{i}].id"), ID_RULE);
        } else if !ids.insert(variant.id.as_str()) {
            problems.add(
                format!("variants[{i}].id"),
                format!("{:?} is used twice", variant.id),
            );
        }
    }
    if !spec.variants.is_empty() && spec.variants.iter().all(|v| v.weight == 0) {
        problems.add("variants", "at least one weight must be above 0");
    }
    ids
}

fn entry(entry: &Entry, problems: &mut Problems) {
    match entry {
        Entry::SegmentEntered { segment_id }
        | Entry::SegmentLeft { segment_id }
        | Entry::Launch { segment_id } => segment(segment_id, problems),
        Entry::Schedule {
            at,
            cron,
            segment_id,
        } => {
            segment(segment_id, problems);
            match (at, cron) {
                (Some(_), Some(_)) | (None, None) => {
                    problems.add("entry", "a schedule has either `at` or `cron`");
                }
                (None, Some(cron)) => {
                    if let Err(message) = parse_cron(cron) {
                        problems.add("entry.cron", message);
                    }
                }
                (Some(_), None) => {}
            }
        }
        Entry::StageChanged { from, to } => {
            if *from == Some(*to) {
                problems.add("entry.to", "must differ from `from`");
            }
        }
        Entry::Event { event } => event_match("entry.event", event, problems),
    }
}

fn segment(segment_id: &str, problems: &mut Problems) {
    if segment_id.trim().is_empty() {
        problems.add("entry.segment_id", "required");
    }
}

/// Amounts are on orders only, and only a placed order is a first one.
fn event_match(path: &str, event: &EventMatch, problems: &mut Problems) {
    if let Some(min) = event.min_amount_cents {
        if !event.event.is_order() {
            problems.add(
                format!("{path}.min_amount_cents"),
                format!("{} events carry no amount", event.event),
            );
        } else if min < 0 {
            problems.add(format!("{path}.min_amount_cents"), "must be at least 0");
        }
    }
    if event.first_order && event.event != EventType::OrderPlaced {
        problems.add(
            format!("{path}.first_order"),
            "applies to order_placed events only",
        );
    }
}

fn steps(spec: &CampaignSpec, variant_ids: &BTreeSet<&str>, problems: &mut Problems) {
    if spec.steps.is_empty() || spec.steps.len() > MAX_STEPS {
        problems.add("steps", format!("must have 1 to {MAX_STEPS} steps"));
    }
    let mut indices: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, step) in spec.steps.iter().enumerate() {
        let at = step_path(i, Some(step.id()));
        if !valid_id(step.id()) || step.id() == EXIT {
            problems.add(format!("{at}.id"), format!("{ID_RULE}, and not `{EXIT}`"));
        } else if indices.insert(step.id(), i).is_some() {
            problems.add(format!("{at}.id"), format!("{:?} is used twice", step.id()));
        }
    }
    let num_before = problems.0.len();
    for (i, step) in spec.steps.iter().enumerate() {
        let at = step_path(i, Some(step.id()));
        for (field, target) in step.targets() {
            if target == EXIT {
                continue;
            }
            match indices.get(target) {
                None => problems.add(format!("{at}.{field}"), format!("no step {target:?}")),
                Some(&j) if j <= i => problems.add(
                    format!("{at}.{field}"),
                    format!("{target:?} is not a later step: journeys only go forward"),
                ),
                Some(_) => {}
            }
        }
        step_fields(&at, step, spec, variant_ids, problems);
    }
    // With a jump broken, what it was meant to reach would be reported too.
    if problems.0.len() == num_before {
        unreachable(spec, &indices, problems);
    }
}

fn step_fields(
    at: &str,
    step: &Step,
    spec: &CampaignSpec,
    variant_ids: &BTreeSet<&str>,
    problems: &mut Problems,
) {
    match step {
        Step::Send {
            text,
            messages,
            action,
            ..
        } => {
            let has_messages = !messages.is_empty();
            if text.is_some() == has_messages {
                problems.add(
                    format!("{at}.text"),
                    "a send step has either `text` or `messages`",
                );
            }
            if let Some(text) = text {
                message_text(&format!("{at}.text"), text, problems);
            }
            for (variant, text) in messages {
                let path = format!("{at}.messages.{variant}");
                if !variant_ids.contains(variant.as_str()) {
                    problems.add(path.clone(), format!("no variant {variant:?}"));
                }
                message_text(&path, text, problems);
            }
            if !messages.is_empty() {
                for variant in &spec.variants {
                    if !messages.contains_key(&variant.id) {
                        problems.add(
                            format!("{at}.messages"),
                            format!("no message for variant {:?}", variant.id),
                        );
                    }
                }
            }
            match action {
                Some(Action::Coupon { template }) if template.trim().is_empty() => {
                    problems.add(format!("{at}.action.template"), "required");
                }
                Some(Action::Referral { programme }) if programme.trim().is_empty() => {
                    problems.add(format!("{at}.action.programme"), "required");
                }
                _ => {}
            }
        }
        Step::Wait {
            duration,
            until_local_time,
            ..
        } => {
            if duration.is_some() == until_local_time.is_some() {
                problems.add(
                    format!("{at}.duration"),
                    "a wait has either `duration` or `until_local_time`",
                );
            }
            if duration.is_some_and(|d| d.is_zero()) {
                problems.add(format!("{at}.duration"), "must be more than 0");
            }
        }
        Step::WaitForEvent { event, timeout, .. } => {
            event_match(&format!("{at}.event"), event, problems);
            if timeout.is_zero() {
                problems.add(format!("{at}.timeout"), "must be more than 0");
            }
        }
        Step::Branch { .. } | Step::Exit { .. } => {}
    }
}

/// A step nothing leads to is a jump target mistyped or left behind. Jumps go forward, so one pass
/// in order sees every way into a step before the step itself.
fn unreachable(spec: &CampaignSpec, indices: &BTreeMap<&str, usize>, problems: &mut Problems) {
    let mut reached = vec![false; spec.steps.len()];
    if let Some(first) = reached.first_mut() {
        *first = true;
    }
    let reach = |target: Option<&str>, next: usize, reached: &mut Vec<bool>| {
        let index = match target {
            Some(EXIT) => return,
            Some(id) => indices.get(id).copied(),
            None => Some(next),
        };
        if let Some(flag) = index.and_then(|i| reached.get_mut(i)) {
            *flag = true;
        }
    };
    for (i, step) in spec.steps.iter().enumerate() {
        if !reached[i] {
            problems.add(
                step_path(i, Some(step.id())),
                "no step leads here: an earlier step exits or jumps past it",
            );
            continue;
        }
        match step {
            Step::Send { .. } | Step::Wait { .. } => reach(None, i + 1, &mut reached),
            Step::WaitForEvent {
                on_event,
                on_timeout,
                ..
            } => {
                reach(on_event.as_deref(), i + 1, &mut reached);
                reach(on_timeout.as_deref(), i + 1, &mut reached);
            }
            Step::Branch {
                then, otherwise, ..
            } => {
                reach(Some(then), i + 1, &mut reached);
                reach(Some(otherwise), i + 1, &mut reached);
            }
            Step::Exit { .. } => {}
        }
    }
}

fn message_text(path: &str, text: &str, problems: &mut Problems) {
    let chars = text.chars().count();
    if text.trim().is_empty() || chars > MAX_TEXT_CHARS {
        problems.add(
            path,
            format!("must be 1 to {MAX_TEXT_CHARS} characters (it has {chars})"),
        );
    }
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
