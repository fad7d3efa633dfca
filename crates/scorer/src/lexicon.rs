//! The embedded word lists: sentiment weights, negators, degree adverbs, clause connectives, emoji.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const ZH_SENTIMENT: &str = include_str!("../data/zh_sentiment.txt");
const ZH_SLANG: &str = include_str!("../data/zh_slang.txt");
const EN_VADER: &str = include_str!("../data/en_vader.txt");
const EN_EXTRA: &str = include_str!("../data/en_extra.txt");
const EMOJI: &str = include_str!("../data/emoji.txt");
const MODIFIERS: &str = include_str!("../data/modifiers.txt");

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
    entries: HashMap<Box<str>, Entry, BuildHasherDefault<WordHasher>>,
    /// A Bloom filter of the terms (two bits each in 2^17): most words of a text are in no list, and
    /// this answers for them from 16 KiB that stay in L1, without probing the map.
    filter: Vec<u64>,
    /// One bit per character of the Basic Multilingual Plane: set when the character alone is a
    /// negator or a degree adverb, the only heads a compound such as 不满足 or 太差劲 can start with.
    modifier_heads: Vec<u64>,
}

/// Every word of every text is looked up, most of them a few bytes long, where SipHash's set-up
/// dominates; the keys are our own lists, so flooding resistance buys nothing. Eight bytes at a time,
/// each chunk folded in with a multiply (FxHash's step), the high half folded into the low one at the
/// end because the map indexes by the low bits.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WordHasher(u64);

const WORD_HASH_K: u64 = 0xf135_7aea_2e62_a9c5;

/// Up to eight bytes read as a little-endian number, the missing high bytes zero.
#[inline]
pub(crate) fn little_endian(chunk: &[u8]) -> u64 {
    chunk
        .iter()
        .rev()
        .fold(0, |value, &byte| (value << 8) | u64::from(byte))
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let value = little_endian(chunk);
            self.0 = (self.0.rotate_left(26) ^ value).wrapping_mul(WORD_HASH_K);
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.0 = (self.0.rotate_left(26) ^ u64::from(byte)).wrapping_mul(WORD_HASH_K);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

impl Lexicon {
    /// Parses the lists compiled into the crate. Their format is checked by the tests, so a malformed
    /// line is a build defect and panics.
    pub fn embedded() -> Self {
        let mut lexicon = Lexicon {
            entries: HashMap::with_capacity_and_hasher(9_000, BuildHasherDefault::default()),
            modifier_heads: vec![0; 0x1_0000 / 64],
            filter: Vec::new(),
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
            let mut chars = term.chars();
            if let (Some(head), None) = (chars.next(), chars.next())
                && matches!(kind, "neg" | "degree")
                && let Some(bits) = lexicon.modifier_heads.get_mut(head as usize / 64)
            {
                *bits |= 1 << (head as usize % 64);
            }
        }
        let mut filter = vec![0; FILTER_BITS / 64];
        for term in lexicon.entries.keys() {
            for bit in filter_bits(term) {
                filter[bit / 64] |= 1 << (bit % 64);
            }
        }
        lexicon.filter = filter;
        lexicon
    }

    /// Whether `c` on its own negates or grades what follows; cheaper than a lookup.
    #[inline]
    pub fn is_modifier_head(&self, c: char) -> bool {
        self.modifier_heads
            .get(c as usize / 64)
            .is_some_and(|bits| bits & (1 << (c as usize % 64)) != 0)
    }

    fn entry(&mut self, term: &str) -> &mut Entry {
        self.entries.entry(term.into()).or_default()
    }

    #[inline]
    pub fn get(&self, term: &str) -> Option<&Entry> {
        let maybe = filter_bits(term)
            .into_iter()
            .all(|bit| self.filter[bit / 64] & (1 << (bit % 64)) != 0);
        if maybe { self.entries.get(term) } else { None }
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
            .filter(|term| term.chars().any(crate::tokenize::is_han))
    }
}

const FILTER_BITS: usize = 1 << 17;

/// Two positions from one hash: about 1.6 % of the words in no list get past the filter.
#[inline]
fn filter_bits(term: &str) -> [usize; 2] {
    let mut hasher = WordHasher::default();
    hasher.write(term.as_bytes());
    let hash = hasher.finish();
    [
        (hash as usize) % FILTER_BITS,
        ((hash >> 32) as usize) % FILTER_BITS,
    ]
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
        assert!(lexicon.is_modifier_head('不'));
        assert!(lexicon.is_modifier_head('太'));
        assert!(!lexicon.is_modifier_head('差'));
        assert!(!lexicon.is_modifier_head('😀'));
    }

    #[test]
    fn terms_are_written_as_texts_are_folded() {
        let lexicon = Lexicon::embedded();
        for term in lexicon.entries.keys() {
            assert_eq!(crate::text::fold_compatible(term), &**term);
        }
    }

    #[test]
    fn chunks_read_little_endian() {
        assert_eq!(little_endian(&[1, 2]), 0x0201);
        assert_eq!(
            little_endian(&[1, 2, 3, 4, 5, 6, 7, 8]),
            0x0807_0605_0403_0201
        );
        assert_eq!(little_endian(&[]), 0);
    }

    #[test]
    fn the_filter_lets_every_term_through() {
        let lexicon = Lexicon::embedded();
        for term in lexicon.entries.keys() {
            assert!(lexicon.get(term).is_some(), "{term}");
        }
        let strangers = ["酒店", "房间", "電腦", "keyboard", "的", "了"];
        assert!(strangers.iter().all(|word| lexicon.get(word).is_none()));
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
