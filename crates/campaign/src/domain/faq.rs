//! FAQ auto-replies: which of a tenant's questions an incoming message asks. An entry has patterns;
//! a pattern is a set of keywords that must all appear. Keywords are matched in the spelling of
//! [`fold_for_matching`]: `退货`, `退貨`, `退 货` and `ＲＥＴＵＲＮ`/`return` are each one keyword.
//!
//! A [`FaqMatcher`] is built once per tenant's entries and reused; it holds one Aho-Corasick
//! automaton over every keyword, so a message is read once whatever the number of entries.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use super::matching::fold_for_matching;

pub const MAX_ID_CHARS: usize = 64;
pub const MAX_PATTERNS: usize = 20;
pub const MAX_KEYWORDS_PER_PATTERN: usize = 8;
pub const MAX_KEYWORD_CHARS: usize = 32;
pub const MAX_ANSWER_CHARS: usize = 2000;

/// One question a tenant answers automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaqEntry {
    pub id: String,
    /// Any pattern matching is enough; every keyword of a pattern must appear. An ASCII keyword
    /// matches at the start of a word: `return` in `returns` and `returned`, not in `nonreturnable`.
    pub patterns: Vec<Vec<String>>,
    pub answer: String,
}

/// Whether an entry can be stored: an id, at least one pattern, no blank keyword (one of only
/// punctuation or emoji is blank once folded), an answer, all within the limits above.
pub fn validate(entry: &FaqEntry) -> Result<(), String> {
    let id = entry.id.trim();
    if id.is_empty() {
        return Err("an FAQ entry needs an id".into());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!(
            "id `{id}` is longer than {MAX_ID_CHARS} characters"
        ));
    }
    if entry.patterns.is_empty() {
        return Err(format!("{id}: an FAQ entry needs at least one pattern"));
    }
    if entry.patterns.len() > MAX_PATTERNS {
        return Err(format!(
            "{id}: {} patterns, more than the limit of {MAX_PATTERNS}",
            entry.patterns.len()
        ));
    }
    for (index, pattern) in entry.patterns.iter().enumerate() {
        if pattern.is_empty() {
            return Err(format!("{id}: pattern {} has no keywords", index + 1));
        }
        if pattern.len() > MAX_KEYWORDS_PER_PATTERN {
            return Err(format!(
                "{id}: pattern {} has {} keywords, more than the limit of {MAX_KEYWORDS_PER_PATTERN}",
                index + 1,
                pattern.len()
            ));
        }
        for keyword in pattern {
            if fold_for_matching(keyword).text.is_empty() {
                return Err(format!(
                    "{id}: pattern {} has a blank keyword `{keyword}`",
                    index + 1
                ));
            }
            if keyword.chars().count() > MAX_KEYWORD_CHARS {
                return Err(format!(
                    "{id}: keyword `{keyword}` is longer than {MAX_KEYWORD_CHARS} characters"
                ));
            }
        }
    }
    let answer_chars = entry.answer.trim().chars().count();
    if answer_chars == 0 {
        return Err(format!("{id}: an FAQ entry needs an answer"));
    }
    if answer_chars > MAX_ANSWER_CHARS {
        return Err(format!(
            "{id}: the answer is longer than {MAX_ANSWER_CHARS} characters"
        ));
    }
    Ok(())
}

/// A tenant's FAQ entries, compiled.
#[derive(Debug, Clone)]
pub struct FaqMatcher {
    ids: Vec<String>,
    automaton: Option<AhoCorasick>,
    /// For each keyword (a pattern of the automaton), the patterns it is part of.
    keyword_patterns: Vec<Vec<usize>>,
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, Copy)]
struct Pattern {
    /// Index into `ids`.
    entry: usize,
    /// Distinct keywords, all of which must be found.
    num_keywords: usize,
    /// Folded characters of those keywords: how specific a match is.
    chars: usize,
}

impl FaqMatcher {
    /// Entries are expected to have passed [`validate`]; a pattern with a blank keyword is skipped
    /// rather than matching everything.
    pub fn new(entries: &[FaqEntry]) -> Self {
        let mut keyword_ids: HashMap<String, usize> = HashMap::new();
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_patterns: Vec<Vec<usize>> = Vec::new();
        let mut patterns = Vec::new();
        for (entry_index, entry) in entries.iter().enumerate() {
            for pattern in &entry.patterns {
                let mut folded: Vec<String> = pattern
                    .iter()
                    .map(|keyword| fold_for_matching(keyword).text)
                    .collect();
                if folded.is_empty() || folded.iter().any(String::is_empty) {
                    continue;
                }
                folded.sort_unstable();
                folded.dedup();
                let pattern_index = patterns.len();
                patterns.push(Pattern {
                    entry: entry_index,
                    num_keywords: folded.len(),
                    chars: folded.iter().map(|keyword| keyword.chars().count()).sum(),
                });
                for keyword in folded {
                    let id = *keyword_ids.entry(keyword).or_insert_with_key(|keyword| {
                        keywords.push(keyword.clone());
                        keyword_patterns.push(Vec::new());
                        keywords.len() - 1
                    });
                    keyword_patterns[id].push(pattern_index);
                }
            }
        }
        let automaton = (!keywords.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&keywords)
                .expect("keywords within the entry limits fit the automaton's limits")
        });
        Self {
            ids: entries.iter().map(|entry| entry.id.clone()).collect(),
            automaton,
            keyword_patterns,
            patterns,
        }
    }

    /// The id of the entry `text` asks about. Of several, the most specific (the matched pattern
    /// with the most keyword characters) wins, then the one listed first.
    pub fn find(&self, text: &str) -> Option<&str> {
        let automaton = self.automaton.as_ref()?;
        let folded = fold_for_matching(text);
        let mut found = vec![false; self.keyword_patterns.len()];
        let mut num_found = vec![0; self.patterns.len()];
        let mut best: Option<Pattern> = None;
        for hit in automaton.find_overlapping_iter(&folded.text) {
            let keyword = hit.pattern().as_usize();
            if found[keyword]
                || !folded.separates_words(hit.start())
                || !folded.within_one_clause(hit.start(), hit.end())
            {
                continue;
            }
            found[keyword] = true;
            for &index in &self.keyword_patterns[keyword] {
                num_found[index] += 1;
                let pattern = self.patterns[index];
                if num_found[index] == pattern.num_keywords
                    && best.is_none_or(|best| {
                        (pattern.chars, best.entry) > (best.chars, pattern.entry)
                    })
                {
                    best = Some(pattern);
                }
            }
        }
        best.map(|pattern| self.ids[pattern.entry].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, patterns: &[&[&str]]) -> FaqEntry {
        FaqEntry {
            id: id.to_owned(),
            patterns: patterns
                .iter()
                .map(|pattern| pattern.iter().map(|k| (*k).to_owned()).collect())
                .collect(),
            answer: format!("answer to {id}"),
        }
    }

    fn matcher() -> FaqMatcher {
        FaqMatcher::new(&[
            entry("returns", &[&["退货"], &["return"]]),
            entry("return-shipping", &[&["退货", "运费"]]),
            entry("shipping", &[&["发货"], &["什么时候", "到"]]),
            entry("invoice", &[&["发票"]]),
            entry("invoice-again", &[&["发票"]]),
        ])
    }

    #[test]
    fn keywords_match_in_every_spelling() {
        let faq = matcher();
        for text in [
            "我想退货",
            "我想退貨",
            "退 货怎么弄",
            "ＲＥＴＵＲＮ policy?",
            "How do returns work",
            "Can I return it",
        ] {
            assert_eq!(faq.find(text), Some("returns"), "{text}");
        }
        assert_eq!(faq.find("is it nonreturnable"), None);
        assert_eq!(faq.find("不退，货到了"), None, "across a clause");
    }

    #[test]
    fn every_keyword_of_a_pattern_must_appear() {
        let faq = matcher();
        assert_eq!(faq.find("什么时候能到"), Some("shipping"));
        assert_eq!(faq.find("什么时候下单"), None);
        assert_eq!(faq.find("到了吗"), None);
    }

    #[test]
    fn the_most_specific_entry_wins_then_the_first_listed() {
        let faq = matcher();
        assert_eq!(faq.find("退货的運費谁出"), Some("return-shipping"));
        assert_eq!(faq.find("运费退货"), Some("return-shipping"), "any order");
        assert_eq!(faq.find("退货"), Some("returns"));
        assert_eq!(faq.find("开发票"), Some("invoice"));
        assert_eq!(faq.find("发货了吗，什么时候到"), Some("shipping"));
    }

    #[test]
    fn nothing_matches_nothing() {
        assert_eq!(matcher().find("你好"), None);
        assert_eq!(matcher().find(""), None);
        assert_eq!(FaqMatcher::new(&[]).find("退货"), None);
        let blank = FaqMatcher::new(&[entry("blank", &[&["？？"]])]);
        assert_eq!(blank.find("随便说点什么？？"), None);
    }

    #[test]
    fn validation() {
        assert_eq!(validate(&entry("returns", &[&["退货"]])), Ok(()));
        let invalid = [
            entry(" ", &[&["退货"]]),
            entry("none", &[]),
            entry("empty-pattern", &[&[]]),
            entry("blank-keyword", &[&["退货", " "]]),
            entry("punctuation", &[&["？！"]]),
            entry(&"x".repeat(MAX_ID_CHARS + 1), &[&["退货"]]),
            entry("long-keyword", &[&[&"退".repeat(MAX_KEYWORD_CHARS + 1)]]),
            entry("many", &[&["a", "b", "c", "d", "e", "f", "g", "h", "i"]]),
            FaqEntry {
                answer: "  ".into(),
                ..entry("no-answer", &[&["退货"]])
            },
            FaqEntry {
                answer: "长".repeat(MAX_ANSWER_CHARS + 1),
                ..entry("long-answer", &[&["退货"]])
            },
        ];
        for entry in &invalid {
            assert!(validate(entry).is_err(), "{entry:?}");
        }
        let mut many = entry("many-patterns", &[]);
        many.patterns = vec![vec!["退货".to_owned()]; MAX_PATTERNS + 1];
        assert!(validate(&many).is_err());
    }

    #[test]
    fn entries_round_trip_as_json() {
        let returns = entry("returns", &[&["退货", "运费"]]);
        let json = serde_json::to_string(&returns).unwrap();
        assert_eq!(serde_json::from_str::<FaqEntry>(&json).unwrap(), returns);
    }
}
