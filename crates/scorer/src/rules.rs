//! Lexicon scoring with rules: negation, degree adverbs, contrast and concession, emoji, punctuation.

use crate::lexicon::{Entry, Lexicon, Role};
use crate::tokenize::{Token, is_han};

/// Words a negator reaches past before it lapses (不 是 很 好: three).
const NEGATION_WINDOW: u8 = 3;
/// Words a degree adverb reaches past before it lapses.
const DEGREE_WINDOW: u8 = 2;
/// 不好 is nearly as strong as 好, the other way.
const NEGATED_POSITIVE: f32 = -0.8;
/// 不差 is faint praise, not the opposite of 差.
const NEGATED_NEGATIVE: f32 = -0.5;
const MAX_DEGREE: f32 = 3.0;
/// Everything before 但是 / but counts at this share...
const BEFORE_CONTRAST: f32 = 0.5;
/// ...and everything after it at this one.
const AFTER_CONTRAST: f32 = 1.5;
/// A clause opened by 虽然 / although.
const CONCEDED: f32 = 0.6;
const EXCLAIM_STEP: f32 = 0.15;
const QUESTION_STEP: f32 = 0.1;
const MAX_PUNCTUATION_RUN: u8 = 4;
/// Squashes a raw sum into (-1, 1): x / sqrt(x² + α), as VADER does on the same -4..4 word scale.
const NORMALIZATION_ALPHA: f32 = 15.0;
const TRAILING_PARTICLES: [char; 10] = ['了', '的', '啊', '呀', '吧', '哦', '呢', '啦', '得', '么'];

/// What the lexicon found in one text.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Evidence {
    /// Weighted sum of all sentiment after rules.
    pub raw: f32,
    /// Sum of the positive contributions before clause weighting.
    pub positive: f32,
    /// Sum of the magnitudes of the negative contributions before clause weighting.
    pub negative: f32,
    /// Number of sentiment-bearing words and symbols.
    pub hits: u32,
}

impl Evidence {
    pub fn polarity(&self) -> f32 {
        self.raw / (self.raw * self.raw + NORMALIZATION_ALPHA).sqrt()
    }

    fn record(&mut self, value: f32) {
        self.hits += 1;
        if value >= 0.0 {
            self.positive += value;
        } else {
            self.negative -= value;
        }
    }
}

/// The plain lexicon sum, no rules: the baseline the rules are measured against.
pub(crate) fn plain_sum(lexicon: &Lexicon, tokens: &[Token<'_>]) -> f32 {
    tokens
        .iter()
        .filter_map(|token| match token {
            Token::Word(term) | Token::Symbol(term) => lexicon.sentiment(term),
            Token::Break { .. } => None,
        })
        .sum()
}

pub(crate) fn evaluate(lexicon: &Lexicon, tokens: &[Token<'_>]) -> Evidence {
    let mut evidence = Evidence::default();
    let mut closed = 0.0_f32;
    let mut clause_sum = 0.0_f32;
    let mut clause_weight = 1.0_f32;
    let mut after_contrast = 1.0_f32;
    let mut pending = Pending::default();

    for (index, token) in tokens.iter().enumerate() {
        let word = match *token {
            Token::Break {
                exclaims,
                questions,
            } => {
                closed += clause_sum * clause_weight * intensity(exclaims, questions);
                clause_sum = 0.0;
                clause_weight = after_contrast;
                pending = Pending::default();
                continue;
            }
            Token::Symbol(symbol) => {
                if let Some(weight) = lexicon.sentiment(symbol) {
                    clause_sum += weight;
                    evidence.record(weight);
                }
                continue;
            }
            Token::Word(word) => word,
        };
        let Some(lookup) = resolve(lexicon, word) else {
            pending.skip_word();
            continue;
        };
        match lookup.entry.role {
            Role::Negator => {
                pending.negate();
                continue;
            }
            Role::Contrast => {
                closed = (closed + clause_sum * clause_weight) * BEFORE_CONTRAST;
                clause_sum = 0.0;
                after_contrast = AFTER_CONTRAST;
                clause_weight = AFTER_CONTRAST;
                pending = Pending::default();
                continue;
            }
            Role::Concede => {
                clause_weight *= CONCEDED;
                continue;
            }
            Role::Plain => {}
        }
        let sentiment = lookup.entry.sentiment;
        if let Some(degree) = lookup.entry.degree
            && (sentiment.is_none() || next_has_sentiment(lexicon, &tokens[index + 1..]))
        {
            pending.intensify(degree);
            continue;
        }
        match sentiment {
            Some(weight) => {
                let value = pending.apply(weight, &lookup);
                clause_sum += value;
                evidence.record(value);
                pending = Pending::default();
            }
            None => pending.skip_word(),
        }
    }
    evidence.raw = closed + clause_sum * clause_weight;
    evidence
}

fn intensity(exclaims: u8, questions: u8) -> f32 {
    let exclaim = f32::from(exclaims.min(MAX_PUNCTUATION_RUN)) * EXCLAIM_STEP;
    let question = if questions >= 2 {
        f32::from(questions.min(MAX_PUNCTUATION_RUN)) * QUESTION_STEP
    } else {
        0.0
    };
    1.0 + exclaim + question
}

fn next_has_sentiment(lexicon: &Lexicon, rest: &[Token<'_>]) -> bool {
    match rest.first() {
        Some(Token::Word(word)) => {
            resolve(lexicon, word).is_some_and(|lookup| lookup.entry.sentiment.is_some())
        }
        _ => false,
    }
}

/// A word's lexicon entry, possibly found inside a segment the dictionary did not split: 不满足 is
/// 不 + 满足, 太差劲 is 太 + 差劲, 不太好 is 不 + 太 + 好, 好了 is 好.
#[derive(Debug, Clone, Copy)]
struct Lookup {
    entry: Entry,
    negated: bool,
    degree: f32,
    /// A degree adverb inside the word follows its negator (不太好).
    hedged: bool,
}

impl Lookup {
    fn plain(entry: Entry) -> Self {
        Lookup {
            entry,
            negated: false,
            degree: 1.0,
            hedged: false,
        }
    }
}

fn resolve(lexicon: &Lexicon, word: &str) -> Option<Lookup> {
    if let Some(entry) = lexicon.get(word) {
        return Some(Lookup::plain(*entry));
    }
    if word.len() > 3 && word.ends_with("n't") {
        return Some(Lookup::plain(Entry {
            role: Role::Negator,
            ..Entry::default()
        }));
    }
    resolve_compound(lexicon, word)
}

fn resolve_compound(lexicon: &Lexicon, word: &str) -> Option<Lookup> {
    let first = word.chars().next().filter(|&c| is_han(c))?;
    if word.len() <= first.len_utf8() {
        return None;
    }
    let with_sentiment =
        |part: &str| resolve(lexicon, part).filter(|lookup| lookup.entry.sentiment.is_some());
    if let Some(stem) = word.strip_suffix(TRAILING_PARTICLES)
        && let Some(lookup) = with_sentiment(stem)
    {
        return Some(lookup);
    }
    if !lexicon.is_modifier_head(first) {
        return None;
    }
    let (head, rest) = word.split_at(first.len_utf8());
    let modifier = lexicon.get(head)?;
    let mut lookup = with_sentiment(rest)?;
    match (modifier.role, modifier.degree) {
        (Role::Negator, _) => {
            lookup.negated = !lookup.negated;
            lookup.hedged = lookup.degree > 1.0;
        }
        (Role::Plain, Some(degree)) => lookup.degree *= degree,
        _ => return None,
    }
    Some(lookup)
}

/// Negators and degree adverbs waiting for the sentiment word they modify.
#[derive(Debug, Clone, Copy)]
struct Pending {
    negations: u8,
    words_since_negation: u8,
    degree: f32,
    words_since_degree: u8,
    degree_after_negation: bool,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            negations: 0,
            words_since_negation: 0,
            degree: 1.0,
            words_since_degree: 0,
            degree_after_negation: false,
        }
    }
}

impl Pending {
    fn negate(&mut self) {
        self.negations = self.negations.saturating_add(1);
        self.words_since_negation = 0;
    }

    fn intensify(&mut self, degree: f32) {
        self.degree = (self.degree * degree).min(MAX_DEGREE);
        self.words_since_degree = 0;
        self.degree_after_negation = self.negations > 0;
    }

    fn skip_word(&mut self) {
        self.words_since_negation = self.words_since_negation.saturating_add(1);
        self.words_since_degree = self.words_since_degree.saturating_add(1);
        if self.words_since_negation > NEGATION_WINDOW {
            self.negations = 0;
        }
        if self.words_since_degree > DEGREE_WINDOW {
            self.degree = 1.0;
            self.degree_after_negation = false;
        }
    }

    /// 不太好 (degree after the negator) hedges; 太不好 (degree before it) stresses.
    fn apply(&self, weight: f32, lookup: &Lookup) -> f32 {
        let negated = (self.negations % 2 == 1) != lookup.negated;
        let degree = (self.degree * lookup.degree).min(MAX_DEGREE);
        if !negated {
            return weight * degree;
        }
        let flip = if weight > 0.0 {
            NEGATED_POSITIVE
        } else {
            NEGATED_NEGATIVE
        };
        if (self.degree_after_negation || lookup.hedged) && degree > 1.0 {
            weight * flip / degree
        } else {
            weight * flip * degree
        }
    }
}
