//! The documented event examples are real: every ```json block of `docs/events.md` and `README.md` that
//! holds an `event_id` parses as a `SocialEvent` in the JSON form and passes validation, and the event
//! reference shows every event type once.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use socialops_ingestion::domain::{AliasHasher, Limits, Validator};
use socialops_proto::events::v1::SocialEvent;
use socialops_proto::events::v1::social_event::Payload;

const EVENT_TYPES: [&str; 15] = [
    "post_published",
    "comment",
    "mention",
    "like",
    "share",
    "follow",
    "unfollow",
    "direct_message",
    "content_impression",
    "content_click",
    "order_placed",
    "order_refunded",
    "coupon_redeemed",
    "referral",
    "identify",
];

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The bodies of the fenced ```json blocks, with the line each starts on.
fn json_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == "```json" => current = Some((number + 2, String::new())),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(current.is_none(), "unclosed ```json block");
    blocks
}

/// Validates every event example of `file` and returns their payload types.
fn accepted_examples(file: &str) -> Vec<&'static str> {
    let markdown = repo_file(file);
    let validator = Validator::new(Limits::default(), AliasHasher::new("k".into()));
    let mut shown = Vec::new();
    for (line, body) in json_blocks(&markdown)
        .into_iter()
        .filter(|(_, body)| body.contains("\"event_id\""))
    {
        let event: SocialEvent = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{file} line {line}: not a SocialEvent: {e}"));
        let occurred_at = event
            .occurred_at
            .unwrap_or_else(|| panic!("{file} line {line}: no occurred_at"));
        let occurred_at = UNIX_EPOCH
            + Duration::from_secs(u64::try_from(occurred_at.seconds).expect("after 1970"));
        let now = occurred_at + Duration::from_secs(24 * 60 * 60);
        let canonical = validator
            .canonicalise(event, now)
            .unwrap_or_else(|e| panic!("{file} line {line}: rejected: {e}"));
        let payload = canonical
            .payload
            .as_ref()
            .expect("validated events have one");
        if let Payload::Identify(identify) = payload {
            assert!(
                identify
                    .aliases
                    .iter()
                    .all(|a| a.value.is_empty() && a.value_hash.len() == 64),
                "{file} line {line}: raw alias values are replaced by their hashes"
            );
        }
        shown.push(payload.type_name());
    }
    shown
}

#[test]
fn the_event_reference_shows_every_event_type_once_and_each_is_accepted() {
    let shown = accepted_examples("docs/events.md");
    assert_eq!(
        shown.len(),
        EVENT_TYPES.len(),
        "docs/events.md should show exactly one example per event type"
    );
    let distinct: BTreeSet<&str> = shown.iter().copied().collect();
    let expected: BTreeSet<&str> = EVENT_TYPES.into_iter().collect();
    assert_eq!(
        distinct, expected,
        "docs/events.md examples should cover every event type once; shown: {shown:?}"
    );
}

#[test]
fn the_readme_event_example_is_accepted() {
    assert_eq!(accepted_examples("README.md"), ["comment"]);
}

#[test]
fn readme_names_the_commands_that_run_and_test_the_project() {
    let readme = repo_file("README.md");
    for command in [
        "cargo test --workspace --locked",
        "socialops dev",
        "cargo run --release -p socialops -- dev",
        ".ci/run",
    ] {
        assert!(
            readme.contains(command),
            "README.md should mention `{command}`"
        );
    }
    assert!(
        repo_file(".ci/run").contains("TEST_COMMAND=(cargo test --workspace --locked)"),
        ".ci/run should run the test command README.md gives"
    );
}
