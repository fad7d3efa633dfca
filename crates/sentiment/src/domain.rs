//! Scoring logic: pure functions over text, no I/O.

mod learned;
mod lexicon;
mod metrics;
mod rules;
mod scorer;
mod tokenize;

// Monitoring: what the service decides about scored texts.
pub mod crisis;
pub mod reply;
pub mod severity;
pub mod spike;
pub mod text;
pub mod watch;

pub use learned::{FeatureSet, Features, LogisticModel, ModelFormatError, TrainConfig};
pub use metrics::BinaryConfusion;
pub use scorer::Scorer;

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
