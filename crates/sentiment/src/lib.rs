//! Sentiment for socialops: every comment, mention or message gets a polarity in [-1, 1], a label and a
//! confidence. Chinese is segmented with jieba-rs plus a platform-slang dictionary; English is tokenised
//! on letters. A lexicon with negation, degree, contrast, emoji and punctuation rules works on its own; a
//! logistic-regression model trained from labelled texts can be attached to sharpen it.
//!
//! Everything here is pure and synchronous: build one [`Scorer`] at start-up and share it.

pub mod domain;

pub use domain::{
    BinaryConfusion, FeatureSet, Features, Label, LogisticModel, Score, Scorer, TrainConfig,
};
