//! The polarity scorer for Chinese and English social text: every comment, mention, message or post
//! gets a polarity in [-1, 1], a [`Label`] and a confidence. Chinese is segmented with jieba-rs plus a
//! platform-slang dictionary; English is tokenised on letters. A lexicon with negation, degree,
//! contrast, emoji and punctuation rules works on its own; a logistic-regression model trained from
//! labelled texts ([`LogisticModel`], [`TrainConfig`]) can be attached to sharpen it, and
//! [`BinaryConfusion`] measures either against labelled data.
//!
//! [`fold`] is the spelling texts are compared in (full width, case and script folded): watchlist terms
//! and the texts they are looked for in both go through it.
//!
//! Everything here is pure and synchronous: build one [`Scorer`] at start-up (it loads the jieba
//! dictionary) and share it across threads.
//!
//! ```
//! use socialops_scorer::{Label, Scorer};
//!
//! let scorer = Scorer::new();
//! assert_eq!(scorer.score("质量不错但是物流太慢").label, Label::Negative);
//! ```

mod learned;
mod lexicon;
mod metrics;
mod rules;
mod scorer;
mod text;
mod tokenize;

pub use learned::{FeatureSet, Features, LogisticModel, ModelFormatError, TrainConfig};
pub use metrics::BinaryConfusion;
pub use scorer::Scorer;
pub use text::fold;

/// Polarity below `-NEUTRAL_BAND` is negative, above it positive.
pub const NEUTRAL_BAND: f32 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Negative,
    Neutral,
    Positive,
}

impl Label {
    pub fn from_polarity(polarity: f32) -> Self {
        if polarity > NEUTRAL_BAND {
            Label::Positive
        } else if polarity < -NEUTRAL_BAND {
            Label::Negative
        } else {
            Label::Neutral
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Negative => "negative",
            Label::Neutral => "neutral",
            Label::Positive => "positive",
        }
    }
}

/// The outcome for one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// -1 (most negative) to 1 (most positive).
    pub polarity: f32,
    pub label: Label,
    /// 0 to 1: how much the label can be trusted.
    pub confidence: f32,
}

impl Score {
    pub const NEUTRAL: Score = Score {
        polarity: 0.0,
        label: Label::Neutral,
        confidence: 1.0,
    };
}
