//! The entry point: one `Scorer`, built once, scores any number of texts.

use jieba_rs::Jieba;

use crate::learned::{self, FeatureSet, Features, LogisticModel};
use crate::lexicon::Lexicon;
use crate::rules::{self, Evidence};
use crate::text::fold_compatible;
use crate::tokenize::{self, Token};
use crate::{Label, Score};

/// The combined model trained on the training split of the published sets, written by
/// `SOCIALOPS_WRITE_MODEL=1` in `tests/accuracy.rs` (see the crate README).
const SHIPPED_MODEL: &[u8] = include_bytes!("../model/sentiment.bin");

/// Scores Chinese, English and mixed text. Building one loads the jieba dictionary (a few hundred
/// milliseconds); scoring is pure and `&self`, so one instance serves every thread.
#[derive(Debug)]
pub struct Scorer {
    lexicon: Lexicon,
    segmenter: Jieba,
    model: Option<LogisticModel>,
}

/// Lexicon, rules and the shipped model: what the service scores with.
impl Default for Scorer {
    fn default() -> Self {
        Self::new().with_model(Self::shipped_model())
    }
}

impl Scorer {
    /// Lexicon and rules only.
    pub fn new() -> Self {
        let lexicon = Lexicon::embedded();
        let segmenter = tokenize::segmenter(&lexicon);
        Scorer {
            lexicon,
            segmenter,
            model: None,
        }
    }

    /// The model compiled into the crate (`model/sentiment.bin`). Its format is checked by the tests,
    /// so a file that does not load is a build defect and panics.
    pub fn shipped_model() -> LogisticModel {
        LogisticModel::from_bytes(SHIPPED_MODEL)
            .unwrap_or_else(|error| panic!("model/sentiment.bin: {error}"))
    }

    /// Scores with `model` from now on; the lexicon still feeds it when it was trained with
    /// [`FeatureSet::TextAndLexicon`].
    pub fn with_model(mut self, model: LogisticModel) -> Self {
        self.model = Some(model);
        self
    }

    pub fn model(&self) -> Option<&LogisticModel> {
        self.model.as_ref()
    }

    /// The model's judgement when one is attached, otherwise the lexicon's.
    pub fn score(&self, text: &str) -> Score {
        self.analyze(text, |normalized, tokens| {
            if tokens.is_empty() {
                return Score::NEUTRAL;
            }
            let evidence = rules::evaluate(&self.lexicon, tokens);
            match &self.model {
                Some(model) => model_score(
                    model.probability_of(normalized, tokens, &evidence),
                    &evidence,
                ),
                None => lexicon_score(&evidence),
            }
        })
    }

    pub fn score_batch<'t>(&self, texts: impl IntoIterator<Item = &'t str>) -> Vec<Score> {
        texts.into_iter().map(|text| self.score(text)).collect()
    }

    /// Lexicon and rules only, even when a model is attached.
    pub fn score_lexicon(&self, text: &str) -> Score {
        self.analyze(text, |_, tokens| {
            lexicon_score(&rules::evaluate(&self.lexicon, tokens))
        })
    }

    /// The sum of the lexicon weights of the words found, with no rules at all: a baseline.
    pub fn lexicon_sum(&self, text: &str) -> f32 {
        self.analyze(text, |_, tokens| rules::plain_sum(&self.lexicon, tokens))
    }

    /// What a model built on `set` reads from `text`; used to train one.
    pub fn features(&self, text: &str, set: FeatureSet) -> Features {
        self.analyze(text, |normalized, tokens| {
            let evidence = match set {
                FeatureSet::Text => Evidence::default(),
                FeatureSet::TextAndLexicon => rules::evaluate(&self.lexicon, tokens),
            };
            learned::extract(normalized, tokens, &evidence, set)
        })
    }

    /// Segmented words and symbols, as the scorer sees them.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        self.analyze(text, |_, tokens| {
            tokens
                .iter()
                .filter_map(|token| match token {
                    Token::Word(word) | Token::Symbol(word) => Some((*word).to_owned()),
                    Token::Break { .. } => None,
                })
                .collect()
        })
    }

    fn analyze<R>(&self, text: &str, judge: impl FnOnce(&str, &[Token<'_>]) -> R) -> R {
        let normalized = fold_compatible(text);
        let mut tokens = Vec::with_capacity(normalized.len() / 3 + 1);
        tokenize::tokenize(&normalized, &self.segmenter, &self.lexicon, &mut tokens);
        judge(&normalized, &tokens)
    }
}

/// No evidence is a neutral guess (confidence 0.5); evidence firms the label up with its strength and
/// the number of words behind it.
fn lexicon_score(evidence: &Evidence) -> Score {
    let polarity = evidence.polarity();
    let label = Label::from_polarity(polarity);
    let support = evidence.hits as f32 / (evidence.hits as f32 + 1.0);
    let confidence = match label {
        Label::Neutral => 0.5,
        Label::Negative | Label::Positive => 0.5 + 0.5 * polarity.abs() * support,
    };
    Score {
        polarity,
        label,
        confidence,
    }
}

/// The model learnt from polar reviews only, so it leans one way on texts that carry no sentiment at
/// all (questions, order and delivery chatter: 多少钱, 什么时候发货, "where can I buy it" score -0.2 to
/// -0.33). Where the lexicon and rules find nothing pointing the same way, a weaker opinion than this is
/// labelled neutral; the polarity itself is left as the model gave it.
const UNSUPPORTED_NEUTRAL_BAND: f32 = 0.35;

fn model_score(probability: f32, evidence: &Evidence) -> Score {
    let polarity = 2.0 * probability - 1.0;
    let supported = evidence.raw * polarity > 0.0;
    let label = if !supported && polarity.abs() < UNSUPPORTED_NEUTRAL_BAND {
        Label::Neutral
    } else {
        Label::from_polarity(polarity)
    };
    Score {
        polarity,
        label,
        confidence: probability.max(1.0 - probability),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static SCORER: LazyLock<Scorer> = LazyLock::new(Scorer::new);

    fn polarity(text: &str) -> f32 {
        SCORER.score(text).polarity
    }

    fn label(text: &str) -> Label {
        SCORER.score(text).label
    }

    #[test]
    fn negation_flips_chinese() {
        assert_eq!(label("好"), Label::Positive);
        assert_eq!(label("不好"), Label::Negative);
        assert_eq!(label("这个产品不是很好用"), Label::Negative);
        assert_eq!(label("没有想象中那么满意"), Label::Negative);
        assert_eq!(label("一点都不差"), Label::Positive);
        assert!(polarity("不差") < polarity("好"));
    }

    #[test]
    fn negation_flips_english() {
        assert_eq!(label("good"), Label::Positive);
        assert_eq!(label("not good"), Label::Negative);
        assert_eq!(label("I don't like it"), Label::Negative);
        assert_eq!(label("not bad at all"), Label::Positive);
        assert_eq!(label("never again, waste of money"), Label::Negative);
    }

    #[test]
    fn negation_lapses_at_clause_end() {
        assert_eq!(label("不知道，好用"), Label::Positive);
    }

    #[test]
    fn degree_adverbs_scale() {
        assert!(polarity("非常好") > polarity("好"));
        assert!(polarity("很好") > polarity("好"));
        assert!(polarity("有点好") < polarity("好"));
        assert!(polarity("太差了") < polarity("差"));
        assert!(polarity("very good") > polarity("good"));
        assert!(polarity("好差") < 0.0);
    }

    #[test]
    fn degree_before_or_after_negation() {
        assert!(polarity("太不好") < polarity("不好"));
        assert!(polarity("不太好") > polarity("不好"));
        assert!(polarity("不太好") < 0.0);
    }

    #[test]
    fn contrast_favours_what_follows() {
        assert_eq!(label("质量不错但是物流太慢"), Label::Negative);
        assert_eq!(label("质量不错，可是物流太慢"), Label::Negative);
        assert_eq!(label("物流有点慢，不过东西很好"), Label::Positive);
        assert_eq!(label("虽然价格贵，但是质量真的好"), Label::Positive);
        assert_eq!(
            label("The screen is nice but the battery is terrible"),
            Label::Negative
        );
    }

    #[test]
    fn english_rules() {
        assert!(polarity("extremely good") > polarity("good"));
        assert!(polarity("slightly good") < polarity("good"));
        assert_eq!(
            label("It looked great, however it broke in a week"),
            Label::Negative
        );
        assert_eq!(
            label("Although the price is high, the quality is excellent"),
            Label::Positive
        );
        assert!(polarity("terrible!!!") < polarity("terrible"));
        assert_eq!(label("never disappointed"), Label::Positive);
        assert_eq!(label("love it 😍"), Label::Positive);
    }

    #[test]
    fn emoji_carry_sentiment() {
        assert_eq!(label("👍"), Label::Positive);
        assert_eq!(label("😡"), Label::Negative);
        assert_eq!(label("收到了 🤮🤮"), Label::Negative);
        assert!(polarity("到货了😭😭😭") < polarity("到货了😭"));
        assert_eq!(label("❤️❤️"), Label::Positive);
    }

    #[test]
    fn bracket_emoticons_carry_sentiment() {
        assert_eq!(label("客服半天不回[怒]"), Label::Negative);
        assert_eq!(label("收到啦[哈哈][赞]"), Label::Positive);
        assert_eq!(label("又是一天[泪]"), Label::Negative);
    }

    #[test]
    fn platform_slang() {
        assert_eq!(label("踩雷了"), Label::Negative);
        assert_eq!(label("这款面霜yyds"), Label::Positive);
        assert_eq!(label("绝绝子"), Label::Positive);
        assert_eq!(label("大家避雷这家店"), Label::Negative);
        assert_eq!(label("纯纯智商税"), Label::Negative);
        assert_eq!(label("看完直接破防"), Label::Negative);
        assert_eq!(label("已经回购三次了"), Label::Positive);
        assert_eq!(label("这次翻车了"), Label::Negative);
        assert_eq!(label("真香"), Label::Positive);
        assert_eq!(label("下头"), Label::Negative);
        assert_eq!(label("这种操作真的下头"), Label::Negative);
        assert_eq!(label("看完测评果断拔草"), Label::Negative);
        assert_eq!(label("被博主种草了"), Label::Positive);
        assert!(polarity("不下头") > polarity("下头"));
        assert!(SCORER.tokens("这就是割韭菜").contains(&"割韭菜".to_owned()));
        assert!(SCORER.tokens("姐妹们绝绝子").contains(&"绝绝子".to_owned()));
    }

    #[test]
    fn repeated_punctuation_intensifies() {
        assert!(polarity("太失望了!!!") < polarity("太失望了"));
        assert!(polarity("好棒！！！") > polarity("好棒"));
        assert!(polarity("质量这么差？？？") < polarity("质量这么差"));
        assert!(polarity("wow, great!!") > polarity("wow, great"));
    }

    #[test]
    fn neutral_text() {
        let score = SCORER.score("今天下午三点开会，地点在三楼会议室。");
        assert_eq!(score.label, Label::Neutral);
        assert_eq!(SCORER.score("").label, Label::Neutral);
        assert_eq!(label("The package arrived on Tuesday."), Label::Neutral);
        assert_eq!(label("12345"), Label::Neutral);
    }

    #[test]
    fn mixed_chinese_and_english() {
        assert_eq!(label("这个app太难用了, totally useless"), Label::Negative);
        assert_eq!(label("口红颜色绝了 so pretty 💄"), Label::Positive);
        assert_eq!(label("物流很快 but 客服 very rude"), Label::Negative);
    }

    #[test]
    fn full_width_and_case_are_folded() {
        assert_eq!(label("ＧＯＯＤ"), Label::Positive);
        assert_eq!(label("YYDS"), Label::Positive);
    }

    #[test]
    fn scores_stay_in_range() {
        for text in [
            "好好好好好好好好好好!!!!!!",
            "垃圾垃圾垃圾😡😡😡！！！",
            "",
            "[",
            "a'",
            "？？？",
        ] {
            let score = SCORER.score(text);
            assert!((-1.0..=1.0).contains(&score.polarity), "{text}: {score:?}");
            assert!((0.0..=1.0).contains(&score.confidence), "{text}: {score:?}");
        }
    }

    #[test]
    fn confidence_grows_with_evidence() {
        assert!(SCORER.score("好").confidence < SCORER.score("非常好，很满意，推荐").confidence);
    }

    #[test]
    fn plain_sum_ignores_rules() {
        assert!(SCORER.lexicon_sum("not good") > 0.0);
        assert!(SCORER.score_lexicon("not good").polarity < 0.0);
    }

    #[test]
    fn default_scores_with_the_shipped_model() {
        let scorer = Scorer::default();
        let model = scorer.model().expect("default attaches the shipped model");
        assert_eq!(model.feature_set(), FeatureSet::TextAndLexicon);
        for (text, expected) in [
            ("房间干净，服务热情周到，下次还会再来", Label::Positive),
            ("质量太差了，用了两天就坏，客服也不理人", Label::Negative),
            ("大家避雷这家店[怒]", Label::Negative),
            ("这款面霜yyds，已经回购三次了", Label::Positive),
            ("Great product, works perfectly.", Label::Positive),
            ("Terrible service, I want a refund.", Label::Negative),
        ] {
            let score = scorer.score(text);
            assert_eq!(score.label, expected, "{text}: {score:?}");
            assert!(score.confidence > 0.5, "{text}: {score:?}");
        }
        let batch = scorer.score_batch(["好评", "差评"]);
        assert_eq!(batch[0], scorer.score("好评"));
        assert!(batch[0].polarity > batch[1].polarity);
    }

    #[test]
    fn scoring_reads_the_features_training_sees() {
        let scorer = Scorer::default();
        let model = scorer.model().expect("shipped model");
        for text in [
            "房间干净，服务热情周到，下次还会再来",
            "Terrible service, I want a refund.",
            "哈哈哈哈哈哈 好好好 😍😍",
            "",
        ] {
            let features = scorer.features(text, model.feature_set());
            let expected = 2.0 * model.probability(&features) - 1.0;
            let polarity = scorer.score(text).polarity;
            if text.is_empty() {
                assert_eq!(polarity, 0.0);
            } else {
                assert_eq!(polarity, expected, "{text}");
            }
        }
    }

    #[test]
    fn batch_matches_single() {
        let texts = ["好", "差", "中性"];
        let batch = SCORER.score_batch(texts);
        let single: Vec<Score> = texts.iter().map(|text| SCORER.score(text)).collect();
        assert_eq!(batch, single);
    }

    #[test]
    fn shipped_model_leaves_plain_questions_neutral() {
        let scorer = Scorer::default();
        for text in [
            "积雪草精华多少毫升",
            "什么时候发货",
            "链接在哪里",
            "请问孕期可以用这款精华吗？成分表里有没有水杨酸？",
            "where can I buy it",
            "how much is this",
        ] {
            assert_eq!(scorer.score(text).label, Label::Neutral, "{text}");
        }
        for (text, label) in [
            ("质量太差了", Label::Negative),
            ("物流慢", Label::Negative),
            ("好用", Label::Positive),
            ("Terrible service, I want a refund.", Label::Negative),
        ] {
            assert_eq!(scorer.score(text).label, label, "{text}");
        }
    }
}
