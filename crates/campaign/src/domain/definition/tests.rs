use super::*;

const WINBACK_TOML: &str = include_str!("../../../examples/winback.toml");
const WELCOME_JSON: &str = include_str!("../../../examples/welcome.json");

/// welcome.json written as TOML, with TOML's own date and time values.
const WELCOME_TOML: &str = r#"
name = "Welcome new members"
channel = "wechat_template"
kind = "content"
product_category = "cosmetics"
holdout = 0.1
best_time = true
window = { start = 2026-11-30T16:00:00Z }
entry = { type = "segment_entered", segment_id = "new-members" }
exit = { on_segment_left = true }
variants = [{ id = "warm" }, { id = "short", weight = 1 }]

[[steps]]
type = "send"
id = "hello"
action = { type = "coupon", template = "WELCOME5" }
[steps.messages]
warm = "欢迎加入花知晓会员！这是为你准备的新人礼。"
short = "欢迎入会，新人礼已到账。"

[[steps]]
type = "wait_for_event"
id = "first-order"
event = { event = "order_placed", first_order = true }
timeout = "72h"
on_event = "thanks"

[[steps]]
type = "wait"
id = "morning"
until_local_time = 10:00:00

[[steps]]
type = "branch"
id = "tier"
condition = { tier = "high_value" }
then = "vip"
else = "nudge"

[[steps]]
type = "send"
id = "nudge"
text = "新人礼还在等你，七天内有效。"

[[steps]]
type = "exit"
id = "done"

[[steps]]
type = "send"
id = "vip"
text = "你的专属顾问已上线，回复即可预约试用。"

[[steps]]
type = "exit"
id = "vip-done"

[[steps]]
type = "send"
id = "thanks"
text = "感谢首单！邀请好友，各得一份礼物。"
action = { type = "referral", programme = "friends" }
"#;

fn problems(document: &str) -> Vec<Problem> {
    parse(document, Format::Toml).unwrap_err().problems
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

/// A campaign with variants `a` and `b` entered from segment `s`, and these steps.
fn with_steps(steps: &str) -> String {
    format!(
        "name = \"t\"\nchannel = \"push\"\nkind = \"content\"\n\
         entry = {{ type = \"segment_entered\", segment_id = \"s\" }}\n\
         [[variants]]\nid = \"a\"\n[[variants]]\nid = \"b\"\n{steps}"
    )
}

const SEND: &str = "[[steps]]\ntype = \"send\"\nid = \"s\"\ntext = \"hi\"\n";

#[test]
fn the_examples_parse() {
    let winback = parse(WINBACK_TOML, Format::Toml).unwrap();
    assert_eq!(winback.steps.len(), 3);
    assert_eq!(
        winback.reentry,
        Reentry::Cooldown(Duration::from_secs(90 * 86_400))
    );
    assert!(
        winback
            .entry
            .matches_stage(Some(Stage::Active), Stage::Churned)
    );
    assert!(
        !winback
            .entry
            .matches_stage(Some(Stage::New), Stage::Churned)
    );
    let welcome = parse(WELCOME_JSON, Format::Json).unwrap();
    assert_eq!(welcome.variants.len(), 2);
    // hello for each of two variants, then nudge, vip and thanks for both.
    assert_eq!(welcome.messages().len(), 8);
    assert!(welcome.entry.matches_segment_entered("new-members"));
    assert!(!welcome.entry.matches_segment_left("new-members"));
    assert_eq!(welcome.entry.member_segment(), Some("new-members"));
    assert_eq!(
        welcome.window.and_then(|w| w.start).unwrap().to_rfc3339(),
        "2026-11-30T16:00:00+00:00"
    );
}

#[test]
fn json_and_toml_of_one_campaign_are_the_same_spec() {
    let from_json = parse(WELCOME_JSON, Format::Json).unwrap();
    let from_toml = parse(WELCOME_TOML, Format::Toml).unwrap();
    assert_eq!(from_json, from_toml);
    assert_eq!(from_toml.best_time, Some(Duration::from_secs(24 * 3_600)));
    match &from_toml.steps[2] {
        Step::Wait {
            until_local_time, ..
        } => assert_eq!(*until_local_time, NaiveTime::from_hms_opt(10, 0, 0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stored_spec_reads_back_the_same() {
    for spec in [
        parse(WINBACK_TOML, Format::Toml).unwrap(),
        parse(WELCOME_JSON, Format::Json).unwrap(),
    ] {
        let stored = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<CampaignSpec>(&stored).unwrap(), spec);
        assert_eq!(parse(&stored, Format::Json).unwrap(), spec);
    }
}

#[test]
fn best_time_is_a_duration_or_a_flag() {
    let with =
        |line: &str| with_steps(SEND).replace("name = \"t\"\n", &format!("name = \"t\"\n{line}\n"));
    let spec = parse(&with("best_time = \"12h\""), Format::Toml).unwrap();
    assert_eq!(spec.best_time, Some(Duration::from_secs(12 * 3_600)));
    let spec = parse(&with("best_time = false"), Format::Toml).unwrap();
    assert_eq!(spec.best_time, None);
    assert_eq!(
        paths(&problems(&with("best_time = \"soon\""))),
        ["best_time"]
    );
    assert_eq!(
        paths(&problems(&with("best_time = \"30d\""))),
        ["best_time"]
    );
}

#[test]
fn a_bad_duration_names_the_step_and_field() {
    let found = problems(&with_steps(
        "[[steps]]\ntype = \"wait\"\nid = \"pause\"\nduration = \"soon\"",
    ));
    assert_eq!(paths(&found), ["steps[0](pause).duration"], "{found:?}");
    assert!(found[0].message.contains("\"soon\""), "{found:?}");
    let found = problems(&with_steps(&format!(
        "{SEND}[[steps]]\ntype = \"wait_for_event\"\nid = \"wait-order\"\n\
         event = {{ event = \"order_placed\" }}\ntimeout = 3"
    )));
    assert_eq!(paths(&found), ["steps[1](wait-order).timeout"], "{found:?}");
}

#[test]
fn serde_failures_inside_a_step_name_the_field() {
    let cases = [
        (
            "[[steps]]\ntype = \"wait_for_event\"\nid = \"w\"\nevent = { event = \"purchase\" }\n\
             timeout = \"1d\"",
            "steps[0](w).event.event",
        ),
        (
            "[[steps]]\ntype = \"wait_for_event\"\nid = \"w\"\nevent = { event = \"follow\" }",
            "steps[0](w).timeout",
        ),
        (
            "[[steps]]\ntype = \"send\"\nid = \"s\"\ntext = \"hi\"\nzebra = 1",
            "steps[0](s).zebra",
        ),
        (
            "[[steps]]\ntype = \"send\"\nid = \"s\"\ntext = \"hi\"\n\
             action = { type = \"coupon\", code = \"X\" }",
            "steps[0](s).action.code",
        ),
        (
            "[[steps]]\ntype = \"wait\"\nid = \"w\"\nuntil_local_time = \"25:00\"",
            "steps[0](w).until_local_time",
        ),
        (
            "[[steps]]\ntype = \"teleport\"\nid = \"x\"",
            "steps[0](x).type",
        ),
        (
            "[[steps]]\ntype = \"branch\"\nid = \"b\"\ncondition = { stage = \"gone\" }\n\
             then = \"exit\"\nelse = \"exit\"",
            "steps[0](b).condition.stage",
        ),
    ];
    for (steps, path) in cases {
        let found = problems(&with_steps(steps));
        assert_eq!(paths(&found), [path], "{found:?}");
    }
}

#[test]
fn serde_failures_outside_steps_name_the_field() {
    let document = with_steps(SEND).replace("id = \"b\"", "id = \"b\"\nweight = -1");
    assert_eq!(paths(&problems(&document)), ["variants[1].weight"]);
    let document = with_steps(SEND).replace(
        "entry = { type = \"segment_entered\", segment_id = \"s\" }",
        "entry = { type = \"schedule\", at = \"tomorrow\", segment_id = \"s\" }",
    );
    assert_eq!(paths(&problems(&document)), ["entry.at"]);
    let document = with_steps(SEND).replace("segment_id = \"s\"", "segment = \"s\"");
    assert_eq!(paths(&problems(&document)), ["entry.segment"]);
    let document = with_steps(SEND).replace("name = \"t\"\n", "");
    assert_eq!(paths(&problems(&document)), ["name"]);
    let document =
        with_steps(SEND).replace("name = \"t\"\n", "name = \"t\"\nreentry = \"twice\"\n");
    assert_eq!(paths(&problems(&document)), ["reentry"]);
}

#[test]
fn jumps_must_go_forward_to_known_steps() {
    let found = problems(&with_steps(
        "[[steps]]\ntype = \"send\"\nid = \"one\"\ntext = \"hi\"\n\
         [[steps]]\ntype = \"branch\"\nid = \"fork\"\ncondition = { stage = \"loyal\" }\n\
         then = \"one\"\nelse = \"nowhere\"",
    ));
    assert_eq!(
        paths(&found),
        ["steps[1](fork).then", "steps[1](fork).else"],
        "{found:?}"
    );
    assert!(found[0].message.contains("later step"), "{found:?}");
    assert!(
        found[1].message.contains("no step \"nowhere\""),
        "{found:?}"
    );
}

#[test]
fn a_step_nothing_leads_to_is_a_problem() {
    let found = problems(&with_steps(&format!(
        "{SEND}[[steps]]\ntype = \"exit\"\nid = \"stop\"\n\
         [[steps]]\ntype = \"send\"\nid = \"orphan\"\ntext = \"hi\""
    )));
    assert_eq!(paths(&found), ["steps[2](orphan)"], "{found:?}");
}

#[test]
fn messages_must_cover_every_variant_and_ids_be_unique() {
    let found = problems(&with_steps(
        "[[steps]]\ntype = \"send\"\nid = \"s\"\nmessages = { a = \"hi\", c = \"yo\" }\n\
         [[steps]]\ntype = \"exit\"\nid = \"s\"\n\
         [[steps]]\ntype = \"exit\"\nid = \"Exit!\"",
    ));
    let found_paths = paths(&found);
    assert!(found_paths.contains(&"steps[1](s).id"), "{found:?}");
    assert!(found_paths.contains(&"steps[2](Exit!).id"), "{found:?}");
    assert!(found_paths.contains(&"steps[0](s).messages.c"), "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.path == "steps[0](s).messages" && p.message.contains("\"b\"")),
        "{found:?}"
    );
    let found = problems(&with_steps(
        "[[steps]]\ntype = \"send\"\nid = \"s\"\ntext = \"hi\"\nmessages = { a = \"x\", b = \"y\" }",
    ));
    assert_eq!(paths(&found), ["steps[0](s).text"], "{found:?}");
}

#[test]
fn every_problem_is_listed_at_once() {
    let long = "长".repeat(MAX_TEXT_CHARS + 1);
    let document = with_steps(&format!(
        "[[steps]]\ntype = \"send\"\nid = \"s\"\ntext = \"{long}\"\n\
         [[steps]]\ntype = \"wait\"\nid = \"w\"\n"
    ))
    .replace("name = \"t\"", "name = \"t\"\nholdout = 0.6\nbudget = 0")
    .replace("id = \"b\"", "id = \"a\"");
    let error = parse(&document, Format::Toml).unwrap_err();
    assert_eq!(
        paths(&error.problems),
        [
            "holdout",
            "budget",
            "variants[1].id",
            "steps[0](s).text",
            "steps[1](w).duration"
        ],
        "{error}"
    );
    let shown = error.to_string();
    assert!(shown.starts_with("invalid campaign definition: holdout: "));
    assert!(
        shown.contains("; budget: must be at least 1 send; "),
        "{shown}"
    );
}

#[test]
fn limits_on_steps_and_variants() {
    let many_steps: String = (0..=MAX_STEPS)
        .map(|i| format!("[[steps]]\ntype = \"send\"\nid = \"s{i}\"\ntext = \"hi\"\n"))
        .collect();
    assert!(paths(&problems(&with_steps(&many_steps))).contains(&"steps"));
    let many_variants: String = (0..=MAX_VARIANTS)
        .map(|i| format!("[[variants]]\nid = \"v{i}\"\n"))
        .collect();
    let document =
        with_steps(SEND).replacen("[[variants]]", &format!("{many_variants}[[variants]]"), 1);
    assert!(paths(&problems(&document)).contains(&"variants"));
}

#[test]
fn event_conditions_must_be_possible() {
    let document = with_steps(&format!(
        "{SEND}[[steps]]\ntype = \"wait_for_event\"\nid = \"w\"\n\
         event = {{ event = \"follow\", min_amount_cents = 100, first_order = true }}\n\
         timeout = \"1d\""
    ));
    assert_eq!(
        paths(&problems(&document)),
        [
            "steps[1](w).event.min_amount_cents",
            "steps[1](w).event.first_order"
        ]
    );
    let document = with_steps(SEND).replace(
        "entry = { type = \"segment_entered\", segment_id = \"s\" }",
        "entry = { type = \"stage_changed\", to = \"churned\" }\nexit = { on_segment_left = true }",
    );
    assert_eq!(paths(&problems(&document)), ["exit.on_segment_left"]);
}

#[test]
fn a_bad_cron_is_named() {
    for cron in ["every monday", "0 0 10 * * 1", "61 * * * *"] {
        let document = with_steps(SEND).replace(
            "entry = { type = \"segment_entered\", segment_id = \"s\" }",
            &format!("entry = {{ type = \"schedule\", cron = \"{cron}\", segment_id = \"s\" }}"),
        );
        let found = problems(&document);
        assert_eq!(paths(&found), ["entry.cron"], "{cron}: {found:?}");
    }
}

#[test]
fn a_cron_schedule_fires_in_the_tenant_time_zone() {
    let entry = Entry::Schedule {
        at: None,
        cron: Some("0 10 * * 1".into()),
        segment_id: "s".into(),
    };
    // 2026-11-20 is a Friday; the next Monday 10:00 in Shanghai is 02:00 UTC.
    let after: DateTime<Utc> = "2026-11-20T04:00:00Z".parse().unwrap();
    let next = entry
        .next_schedule_after(after, chrono_tz::Asia::Shanghai)
        .unwrap();
    assert_eq!(next.to_rfc3339(), "2026-11-23T02:00:00+00:00");
    // Strictly after: a schedule asked at its own firing time gives the next one.
    let again = entry
        .next_schedule_after(next, chrono_tz::Asia::Shanghai)
        .unwrap();
    assert_eq!(again.to_rfc3339(), "2026-11-30T02:00:00+00:00");
    // Daily at 10:00 in New York moves with its clocks: 15:00 UTC in winter, 14:00 in summer.
    let daily = Entry::Schedule {
        at: None,
        cron: Some("0 10 * * *".into()),
        segment_id: "s".into(),
    };
    let new_york = chrono_tz::America::New_York;
    let march_7: DateTime<Utc> = "2026-03-07T16:00:00Z".parse().unwrap();
    assert_eq!(
        daily
            .next_schedule_after(march_7, new_york)
            .unwrap()
            .to_rfc3339(),
        "2026-03-08T14:00:00+00:00"
    );
    let once = Entry::Schedule {
        at: Some(after),
        cron: None,
        segment_id: "s".into(),
    };
    assert_eq!(
        once.next_schedule_after(after - chrono::Duration::seconds(1), new_york),
        Some(after)
    );
    assert_eq!(once.next_schedule_after(after, new_york), None);
}

#[test]
fn event_matches_check_amount_and_first_order() {
    let want = EventMatch {
        event: EventType::OrderPlaced,
        min_amount_cents: Some(10_000),
        first_order: true,
    };
    let fact = |amount, first| EventFact {
        event: EventType::OrderPlaced,
        amount_cents: Some(amount),
        first_order: first,
        at: DateTime::UNIX_EPOCH,
    };
    assert!(want.matches(&fact(10_000, true)));
    assert!(!want.matches(&fact(9_999, true)));
    assert!(!want.matches(&fact(20_000, false)));
    let refund = EventFact {
        event: EventType::OrderRefunded,
        ..fact(20_000, true)
    };
    assert!(!want.matches(&refund));
    let entry = Entry::Event { event: want };
    assert!(entry.matches_event(&fact(10_000, true)));
    assert!(!entry.matches_stage(None, Stage::New));
}

#[test]
fn syntax_errors_are_one_problem_with_a_place() {
    let found = problems("name = \"t\"\nchannel = ");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "");
    assert!(
        found[0].message.starts_with("not TOML (line 2, column "),
        "{found:?}"
    );
    let found = parse("{\"name\": \"t\",", Format::Json)
        .unwrap_err()
        .problems;
    assert_eq!(found.len(), 1);
    assert!(found[0].message.starts_with("not JSON: "), "{found:?}");
    assert!(found[0].message.contains("line 1"), "{found:?}");
}

#[test]
fn names_round_trip() {
    for stage in Stage::ALL {
        assert_eq!(stage.as_str().parse::<Stage>().unwrap(), *stage);
    }
    for tier in Tier::ALL {
        assert_eq!(tier.as_str().parse::<Tier>().unwrap(), *tier);
    }
    for event in EventType::ALL {
        assert_eq!(event.as_str().parse::<EventType>().unwrap(), *event);
        let json = serde_json::to_string(event).unwrap();
        assert_eq!(json, format!("\"{event}\""));
    }
}
