use socialops_scorer::Label;

use crate::support::{NEGATIVE, NEUTRAL, POSITIVE, scorer};

/// The scenarios count mentions by label; if the scorer changes its mind about a fixture, this says
/// which one instead of a count being off somewhere else.
#[test]
fn fixtures_score_as_the_scenarios_assume() {
    let scorer = scorer();
    for (texts, label) in [
        (NEGATIVE, Label::Negative),
        (POSITIVE, Label::Positive),
        (NEUTRAL, Label::Neutral),
    ] {
        for text in texts {
            let score = scorer.score(text);
            assert_eq!(score.label, label, "{text}: {score:?}");
        }
    }
}
