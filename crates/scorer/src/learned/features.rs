//! What the model reads from one text: character 1–3-grams, words and adjacent word pairs, each hashed
//! into one of 2^21 buckets and counted once per text, plus (in the combined set) the lexicon's evidence.
//!
//! Hashing is on the scoring path, so it avoids walking bytes where it can: a character n-gram of up to
//! three characters is packed losslessly into one `u64` (21 bits per code point) and mixed once; a word is
//! hashed over its bytes once, and a word pair combines the two word hashes.

use crate::lexicon::little_endian;
use crate::rules::Evidence;
use crate::tokenize::Token;

pub(crate) const HASH_BITS: u32 = 21;
pub(crate) const NUM_BUCKETS: usize = 1 << HASH_BITS;
pub(crate) const NUM_DENSE: usize = 5;
/// Enough for any code point, and three of them fit in a `u64`. Grams of four characters were no
/// better on validation (1–4: 0.8607, 1–3: 0.8615) and cost a third more lookups.
const BITS_PER_CHAR: u32 = 21;

/// Seeds that keep the kinds of feature apart before mixing.
const GRAM_SEEDS: [u64; 3] = [
    0x2545_f491_4f6c_dd1d,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
];
const WORD_SEED: u64 = 0x27d4_eb2f_1656_67c5;
const PAIR_SEED: u64 = 0x85eb_ca77_c2b2_ae63;

/// Which features a model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureSet {
    /// Character n-grams, words and word pairs only.
    Text,
    /// The text features plus the lexicon-and-rules evidence.
    TextAndLexicon,
}

/// One text as the model sees it: the buckets it touches (each once) and the dense evidence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    pub(super) buckets: Vec<u32>,
    pub(super) dense: [f32; NUM_DENSE],
}

/// The features of one text, as training collects them.
pub(crate) fn extract(
    normalized: &str,
    tokens: &[Token<'_>],
    evidence: &Evidence,
    set: FeatureSet,
) -> Features {
    let mut buckets = Vec::with_capacity(normalized.len() + 2 * tokens.len());
    for_each_bucket(normalized, tokens, |bucket| buckets.push(bucket));
    Features {
        buckets,
        dense: dense(evidence, set),
    }
}

/// Hands every distinct bucket of the text to `visit`, in order of first appearance: what [`extract`]
/// collects, without collecting it.
#[inline]
pub(crate) fn for_each_bucket(normalized: &str, tokens: &[Token<'_>], visit: impl FnMut(u32)) {
    let most = normalized.len() + 2 * tokens.len();
    SEEN.with_borrow_mut(|seen| {
        let mut distinct = Distinct::new(seen, most, visit);
        push_char_grams(normalized, &mut distinct);
        push_words(tokens, &mut distinct);
    });
}

pub(crate) fn dense(evidence: &Evidence, set: FeatureSet) -> [f32; NUM_DENSE] {
    match set {
        FeatureSet::Text => [0.0; NUM_DENSE],
        FeatureSet::TextAndLexicon => [
            (evidence.raw / 4.0).clamp(-3.0, 3.0),
            evidence.polarity(),
            (evidence.positive / 4.0).min(3.0),
            (evidence.negative / 4.0).min(3.0),
            if evidence.hits == 0 { 1.0 } else { 0.0 },
        ],
    }
}

/// Every run of up to three characters that holds no ASCII white space.
fn push_char_grams(normalized: &str, buckets: &mut Distinct<'_, impl FnMut(u32)>) {
    const ONE: u64 = (1 << BITS_PER_CHAR) - 1;
    const TWO: u64 = (1 << (2 * BITS_PER_CHAR)) - 1;
    // The last three code points, newest in the low bits: each gram ending here is a mask of it.
    let mut window = 0_u64;
    let mut in_window = 0_u8;
    for c in normalized.chars() {
        if c.is_ascii_whitespace() {
            in_window = 0;
            continue;
        }
        window = (window << BITS_PER_CHAR) | u64::from(u32::from(c));
        in_window = in_window.saturating_add(1);
        buckets.push(bucket((window & ONE) ^ GRAM_SEEDS[0]));
        if in_window >= 2 {
            buckets.push(bucket((window & TWO) ^ GRAM_SEEDS[1]));
        }
        if in_window >= 3 {
            buckets.push(bucket(window ^ GRAM_SEEDS[2]));
        }
    }
}

fn push_words(tokens: &[Token<'_>], buckets: &mut Distinct<'_, impl FnMut(u32)>) {
    let mut previous: Option<u64> = None;
    for token in tokens {
        match token {
            Token::Word(word) | Token::Symbol(word) => {
                let hash = word_hash(word.as_bytes());
                buckets.push(bucket(hash ^ WORD_SEED));
                if let Some(previous) = previous {
                    // Asymmetric, so that 不好 and 好不 differ.
                    buckets.push(bucket(
                        previous.rotate_left(29).wrapping_mul(PAIR_SEED) ^ hash,
                    ));
                }
                previous = Some(hash);
            }
            Token::Break { .. } => previous = None,
        }
    }
}

/// Eight bytes at a time, each chunk folded in with a multiply (FxHash's step); the length goes in
/// first so that chunks padded with zeros do not collide with shorter words.
fn word_hash(word: &[u8]) -> u64 {
    const K: u64 = 0xf135_7aea_2e62_a9c5;
    word.chunks(8)
        .fold((word.len() as u64).wrapping_mul(K), |hash, chunk| {
            let value = little_endian(chunk);
            (hash.rotate_left(26) ^ value).wrapping_mul(K)
        })
}

/// Multiplicative (Fibonacci) hashing, the high half folded in first so that keys differing only in
/// their top bits (the oldest character of a gram) are spread as well as the rest.
#[inline]
fn bucket(key: u64) -> u32 {
    ((key ^ (key >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - HASH_BITS)) as u32
}

thread_local! {
    static SEEN: std::cell::RefCell<SeenTable> = std::cell::RefCell::new(SeenTable::default());
}

/// An open-addressing set of buckets, reused from text to text. A slot belongs to the current text
/// when it carries the current generation, so starting a text clears nothing. Sized for the text (8 KiB
/// for a comment) it stays in L1; a bit per bucket would take 256 KiB, which the segmenter's dictionary
/// walks evict between texts.
#[derive(Default)]
struct SeenTable {
    generation: u32,
    /// (generation, bucket).
    slots: Vec<(u32, u32)>,
}

/// A text's buckets in order of first appearance, each once, handed to `visit`.
struct Distinct<'a, V> {
    generation: u32,
    /// This text's part of the table: a power of two long.
    slots: &'a mut [(u32, u32)],
    visit: V,
}

impl<'a, V: FnMut(u32)> Distinct<'a, V> {
    /// For a text that can yield at most `most` buckets: the table keeps at most half its slots full.
    fn new(table: &'a mut SeenTable, most: usize, visit: V) -> Self {
        const MIN_SLOTS: usize = 1024;
        let size = (2 * most).next_power_of_two().max(MIN_SLOTS);
        if table.slots.len() < size {
            table.slots = vec![(0, 0); size];
            table.generation = 0;
        }
        table.generation = table.generation.wrapping_add(1);
        if table.generation == 0 {
            table.slots.fill((0, 0));
            table.generation = 1;
        }
        Distinct {
            generation: table.generation,
            slots: &mut table.slots[..size],
            visit,
        }
    }

    #[inline]
    fn push(&mut self, bucket: u32) {
        let mask = self.slots.len() - 1;
        // Buckets are already uniformly hashed: their low bits index the table directly.
        let mut index = bucket as usize & mask;
        loop {
            let slot = &mut self.slots[index];
            if slot.0 != self.generation {
                *slot = (self.generation, bucket);
                (self.visit)(bucket);
                return;
            }
            if slot.1 == bucket {
                return;
            }
            index = (index + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(text: &str, tokens: &[Token<'_>]) -> Vec<u32> {
        extract(text, tokens, &Evidence::default(), FeatureSet::Text).buckets
    }

    #[test]
    fn character_grams_stop_at_white_space() {
        // a, b, ab, c, d, cd: nothing spans the space.
        assert_eq!(buckets("ab cd", &[]).len(), 6);
        assert_eq!(buckets("好吃的", &[]).len(), 6);
    }

    #[test]
    fn each_bucket_counts_once() {
        // 哈, 哈哈, 哈哈哈.
        assert_eq!(buckets("哈哈哈哈哈", &[]).len(), 3);
    }

    #[test]
    fn word_pairs_keep_their_order_and_stop_at_clause_ends() {
        let forward = buckets("", &[Token::Word("不"), Token::Word("好")]);
        let backward = buckets("", &[Token::Word("好"), Token::Word("不")]);
        assert_eq!(forward.len(), 3);
        assert_ne!(forward[2], backward[2]);
        let broken = buckets(
            "",
            &[
                Token::Word("不"),
                Token::Break {
                    exclaims: 0,
                    questions: 0,
                },
                Token::Word("好"),
            ],
        );
        assert_eq!(broken.len(), 2);
    }

    #[test]
    fn evidence_only_in_the_combined_set() {
        let evidence = Evidence {
            raw: 2.0,
            positive: 2.0,
            negative: 0.0,
            hits: 1,
        };
        let text = extract("好", &[Token::Word("好")], &evidence, FeatureSet::Text);
        let combined = extract(
            "好",
            &[Token::Word("好")],
            &evidence,
            FeatureSet::TextAndLexicon,
        );
        assert_eq!(text.dense, [0.0; NUM_DENSE]);
        assert_eq!(combined.buckets, text.buckets);
        assert!(combined.dense[0] > 0.0 && combined.dense[4] == 0.0);
    }

    #[test]
    fn long_texts_keep_every_distinct_bucket() {
        let text: String = (0..5_000_u32)
            .filter_map(|i| char::from_u32(0x4E00 + i))
            .collect();
        let long = buckets(&text, &[]);
        let mut sorted = long.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), long.len());
        // 5,000 distinct characters give 5,000 + 4,999 + 4,998 grams, less the rare collisions.
        assert!(long.len() > 14_900, "{}", long.len());
        // A short text after the long one still starts from an empty set.
        assert_eq!(buckets("哈哈哈哈哈", &[]).len(), 3);
    }
}
