//! The embedded word lists: sentiment weights, negators, degree adverbs, clause connectives, emoji.

use std::collections::HashMap;

const ZH_SENTIMENT: &str = include_str!("../../data/zh_sentiment.txt");
const ZH_SLANG: &str = include_str!("../../data/zh_slang.txt");
const EN_VADER: &str = include_str!("../../data/en_vader.txt");
const EN_EXTRA: &str = include_str!("../../data/en_extra.txt");
const EMOJI: &str = include_str!("../../data/emoji.txt");
const MODIFIERS: &str = include_str!("../../data/modifiers.txt");

/// How a term steers the words around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Role {
    #[default]
    Plain,
    /// Flips the next sentiment word within a few words.
    Negator,
    /// 但是, but: what follows outweighs what came before.
    Contrast,
    /// 虽然, although: its own clause is being conceded.
    Concede,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Entry {
    /// Weight on a -4..4 scale.
    pub sentiment: Option<f32>,
    /// Multiplier for the next sentiment word.
    pub degree: Option<f32>,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub(crate) struct Lexicon {
    entries: HashMap<Box<str>, Entry>,
}

impl Lexicon {
    /// Parses the lists compiled into the crate. Their format is checked by the tests, so a malformed
    /// line is a build defect and panics.
    pub fn embedded() -> Self {
        let mut lexicon = Lexicon {
            entries: HashMap::with_capacity(9_000),
        };
        for list in [EN_VADER, EN_EXTRA, ZH_SENTIMENT, ZH_SLANG, EMOJI] {
            for (term, weight) in weighted_lines(list) {
                lexicon.entry(term).sentiment = Some(weight);
            }
        }
        for line in content_lines(MODIFIERS) {
            let mut fields = line.split_whitespace();
            let (Some(kind), Some(term)) = (fields.next(), fields.next()) else {
                panic!("modifier line {line:?} needs a kind and a term");
            };
            let entry = lexicon.entry(term);
            match kind {
                "neg" => entry.role = Role::Negator,
                "contrast" => entry.role = Role::Contrast,
                "concede" => entry.role = Role::Concede,
                "degree" => entry.degree = Some(parse_weight(line, fields.next())),
                other => panic!("unknown modifier kind {other:?}"),
            }
        }
        lexicon
    }

    fn entry(&mut self, term: &str) -> &mut Entry {
        self.entries.entry(term.into()).or_default()
    }

    #[inline]
    pub fn get(&self, term: &str) -> Option<&Entry> {
        self.entries.get(term)
    }

    #[inline]
    pub fn sentiment(&self, term: &str) -> Option<f32> {
        self.get(term).and_then(|entry| entry.sentiment)
    }

    /// Terms containing Chinese characters (sentiment words, slang, modifiers), which the segmenter must
    /// keep whole.
    pub fn chinese_terms(&self) -> impl Iterator<Item = &str> {
        self.entries
            .keys()
            .map(|term| &**term)
            .filter(|term| term.chars().any(super::tokenize::is_han))
    }
}

fn content_lines(list: &str) -> impl Iterator<Item = &str> {
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

fn weighted_lines(list: &str) -> impl Iterator<Item = (&str, f32)> {
    content_lines(list).map(|line| {
        let mut fields = line.split_whitespace();
        let term = fields.next().unwrap_or_default();
        (term, parse_weight(line, fields.next()))
    })
}

fn parse_weight(line: &str, field: Option<&str>) -> f32 {
    field
        .and_then(|weight| weight.parse::<f32>().ok())
        .filter(|weight| weight.is_finite())
        .unwrap_or_else(|| panic!("line {line:?} needs a numeric weight"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_lists_parse() {
        let lexicon = Lexicon::embedded();
        assert!(
            lexicon.entries.len() > 7_500,
            "{} entries",
            lexicon.entries.len()
        );
        assert_eq!(lexicon.sentiment("踩雷"), Some(-3.0));
        assert_eq!(lexicon.sentiment("[怒]"), Some(-3.0));
        assert_eq!(
            lexicon.get("不").map(|entry| entry.role),
            Some(Role::Negator)
        );
        assert_eq!(
            lexicon.get("但是").map(|entry| entry.role),
            Some(Role::Contrast)
        );
        assert_eq!(
            lexicon.get("非常").and_then(|entry| entry.degree),
            Some(1.8)
        );
        assert!(lexicon.sentiment("good").is_some_and(|weight| weight > 0.0));
    }

    #[test]
    fn weights_stay_on_scale() {
        let lexicon = Lexicon::embedded();
        for (term, entry) in &lexicon.entries {
            if let Some(weight) = entry.sentiment {
                assert!((-4.0..=4.0).contains(&weight), "{term} {weight}");
            }
            if let Some(degree) = entry.degree {
                assert!((0.0..=2.5).contains(&degree), "{term} {degree}");
            }
        }
    }
}
