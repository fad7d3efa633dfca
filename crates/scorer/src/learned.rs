//! A logistic-regression model over hashed text features (character 1–3-grams, words, word pairs, see
//! [`features`]), optionally joined by the lexicon's own evidence. Trained with NB weighting (Wang &
//! Manning 2012): each bucket's input is its naive-Bayes log-count ratio instead of 1, which is then folded
//! into the bucket's weight, so scoring is one sum of 16-bit weights either way. Small enough to train in
//! a test: a few seconds for tens of thousands of texts. The crate ships one, `model/sentiment.bin`, loaded
//! by `Scorer::default()`.

mod features;

use crate::rules::Evidence;
use crate::tokenize::Token;
pub(crate) use features::extract;
pub use features::{FeatureSet, Features};
use features::{NUM_BUCKETS, NUM_DENSE};

/// Identifies the binary model format and its feature layout; bump it with any change to `extract`.
const MODEL_MAGIC: &[u8; 8] = b"SOSENT03";
const MODEL_HEADER: usize = MODEL_MAGIC.len() + 1 + 4 + 4 + 4 * NUM_DENSE;

/// How a model is fitted: AdaGrad on the log loss, examples shuffled with a fixed seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    pub epochs: u32,
    pub learning_rate: f32,
    pub l2: f32,
    /// Additive smoothing of the naive-Bayes log-count ratios that scale each bucket; `None` trains on
    /// plain 0/1 inputs.
    pub log_count_ratio: Option<f32>,
    pub seed: u64,
}

/// Chosen by 4-fold cross-validation inside the training split (never the held-out split), which the
/// accuracy test prints: NB weighting with smoothing 0.3 gives 0.861 Chinese / 0.870 English there against
/// 0.855 / 0.857 for plain 0/1 inputs; rates of 0.01–0.03, 1–6 epochs and L2 up to 1e-5 were within half a
/// point of each other, 0.05 and above worse.
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 2,
            learning_rate: 0.02,
            l2: 1e-6,
            log_count_ratio: Some(0.3),
            seed: 0x5eed,
        }
    }
}

/// P(positive | text) = sigmoid(bias + scale · Σ bucket weights + dense weights · evidence). The bucket
/// weights are stored as 16-bit integers with one scale, in memory as on disk: a trained model scores
/// exactly as its saved bytes do, and the table is 4 MiB.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    feature_set: FeatureSet,
    scale: f32,
    weights: Vec<i16>,
    dense_weights: [f32; NUM_DENSE],
    bias: f32,
}

impl LogisticModel {
    /// Fits a model to `(features, is_positive)` pairs built with `feature_set`.
    pub fn train(
        feature_set: FeatureSet,
        examples: &[(Features, bool)],
        config: &TrainConfig,
    ) -> Self {
        let ratio = match config.log_count_ratio {
            Some(smoothing) => log_count_ratios(examples, smoothing),
            None => vec![1.0; NUM_BUCKETS],
        };
        let mut weights = vec![0.0_f32; NUM_BUCKETS];
        let mut dense_weights = [0.0_f32; NUM_DENSE];
        let mut bias = 0.0_f32;
        let mut squared = vec![1e-8_f32; NUM_BUCKETS];
        let mut dense_squared = [1e-8_f32; NUM_DENSE];
        let mut bias_squared = 1e-8_f32;
        let rate = config.learning_rate;
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = XorShift(config.seed.max(1));
        for _ in 0..config.epochs {
            for i in (1..order.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            for &index in &order {
                let (features, positive) = &examples[index];
                let sparse: f32 = features
                    .buckets
                    .iter()
                    .map(|&bucket| weights[bucket as usize] * ratio[bucket as usize])
                    .sum();
                let z = bias + sparse + dot(&features.dense, &dense_weights);
                let error = sigmoid(z) - if *positive { 1.0 } else { 0.0 };
                for &bucket in &features.buckets {
                    let bucket = bucket as usize;
                    let gradient = error * ratio[bucket] + config.l2 * weights[bucket];
                    squared[bucket] += gradient * gradient;
                    weights[bucket] -= rate * gradient / squared[bucket].sqrt();
                }
                for ((weight, squared), x) in dense_weights
                    .iter_mut()
                    .zip(&mut dense_squared)
                    .zip(&features.dense)
                {
                    let gradient = error * x + config.l2 * *weight;
                    *squared += gradient * gradient;
                    *weight -= rate * gradient / squared.sqrt();
                }
                bias_squared += error * error;
                bias -= rate * error / bias_squared.sqrt();
            }
        }
        for (weight, ratio) in weights.iter_mut().zip(&ratio) {
            *weight *= ratio;
        }
        let (scale, weights) = quantise(&weights);
        LogisticModel {
            feature_set,
            scale,
            weights,
            dense_weights,
            bias,
        }
    }

    pub fn feature_set(&self) -> FeatureSet {
        self.feature_set
    }

    /// The model as bytes: a header (format tag, feature set, quantisation scale, bias, dense
    /// weights, little-endian f32) and one little-endian i16 per hash bucket.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(MODEL_HEADER + 2 * NUM_BUCKETS);
        bytes.extend_from_slice(MODEL_MAGIC);
        bytes.push(match self.feature_set {
            FeatureSet::Text => 0,
            FeatureSet::TextAndLexicon => 1,
        });
        for value in [self.scale, self.bias].iter().chain(&self.dense_weights) {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        for weight in &self.weights {
            bytes.extend_from_slice(&weight.to_le_bytes());
        }
        bytes
    }

    /// Reads what [`LogisticModel::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelFormatError> {
        if bytes.len() != MODEL_HEADER + 2 * NUM_BUCKETS {
            return Err(ModelFormatError::Length(bytes.len()));
        }
        let (header, table) = bytes.split_at(MODEL_HEADER);
        let (magic, rest) = header.split_at(MODEL_MAGIC.len());
        if magic != MODEL_MAGIC {
            return Err(ModelFormatError::Magic);
        }
        let feature_set = match rest[0] {
            0 => FeatureSet::Text,
            1 => FeatureSet::TextAndLexicon,
            other => return Err(ModelFormatError::FeatureSet(other)),
        };
        let mut floats = rest[1..]
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        let mut next = || floats.next().unwrap_or_default();
        let scale = next();
        let bias = next();
        let dense_weights = std::array::from_fn(|_| next());
        let weights = table
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        Ok(LogisticModel {
            feature_set,
            scale,
            weights,
            dense_weights,
            bias,
        })
    }

    pub fn probability(&self, features: &Features) -> f32 {
        let sparse: i64 = features
            .buckets
            .iter()
            .map(|&bucket| i64::from(self.weights[bucket as usize]))
            .sum();
        self.combine(sparse, &features.dense)
    }

    /// What [`LogisticModel::probability`] gives for the text's [`Features`], summed as they are found.
    pub(crate) fn probability_of(
        &self,
        normalized: &str,
        tokens: &[Token<'_>],
        evidence: &Evidence,
    ) -> f32 {
        let mut sparse = 0_i64;
        let weights = &self.weights[..NUM_BUCKETS];
        features::for_each_bucket(normalized, tokens, |bucket| {
            // Buckets are below NUM_BUCKETS; the mask says so to the compiler.
            sparse += i64::from(weights[bucket as usize & (NUM_BUCKETS - 1)]);
        });
        self.combine(sparse, &features::dense(evidence, self.feature_set))
    }

    fn combine(&self, sparse: i64, dense: &[f32; NUM_DENSE]) -> f32 {
        sigmoid(self.bias + self.scale * sparse as f32 + dot(dense, &self.dense_weights))
    }
}

/// Per bucket, ln of how much likelier it is in a positive text than in a negative one, each side
/// counted once per text and smoothed by `smoothing` (Wang & Manning's r).
fn log_count_ratios(examples: &[(Features, bool)], smoothing: f32) -> Vec<f32> {
    let mut counts = vec![[0_u32; 2]; NUM_BUCKETS];
    for (features, positive) in examples {
        for &bucket in &features.buckets {
            counts[bucket as usize][usize::from(*positive)] += 1;
        }
    }
    let smoothing = f64::from(smoothing);
    let total = |side: usize| {
        counts
            .iter()
            .map(|count| f64::from(count[side]))
            .sum::<f64>()
            + smoothing * NUM_BUCKETS as f64
    };
    let (negative_total, positive_total) = (total(0), total(1));
    counts
        .iter()
        .map(|&[negative, positive]| {
            let positive = (f64::from(positive) + smoothing) / positive_total;
            let negative = (f64::from(negative) + smoothing) / negative_total;
            (positive / negative).ln() as f32
        })
        .collect()
}

/// One scale for the whole table, the largest weight mapped to `i16::MAX`.
fn quantise(weights: &[f32]) -> (f32, Vec<i16>) {
    let largest = weights
        .iter()
        .fold(0.0_f32, |largest, weight| largest.max(weight.abs()));
    let scale = if largest > 0.0 {
        largest / f32::from(i16::MAX)
    } else {
        1.0
    };
    let quantised = weights
        .iter()
        .map(|weight| (weight / scale).round() as i16)
        .collect();
    (scale, quantised)
}

fn dot(x: &[f32; NUM_DENSE], w: &[f32; NUM_DENSE]) -> f32 {
    x.iter().zip(w).map(|(x, w)| x * w).sum()
}

/// Why bytes are not a model of this version of the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFormatError {
    /// The size does not match this version's bucket count.
    Length(usize),
    /// Not a model file, or one with another feature layout.
    Magic,
    FeatureSet(u8),
}

impl std::fmt::Display for ModelFormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelFormatError::Length(length) => write!(
                f,
                "model is {length} bytes, expected {}",
                MODEL_HEADER + 2 * NUM_BUCKETS
            ),
            ModelFormatError::Magic => f.write_str("not a sentiment model of this format"),
            ModelFormatError::FeatureSet(tag) => write!(f, "unknown feature set {tag}"),
        }
    }
}

impl std::error::Error for ModelFormatError {}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z.clamp(-30.0, 30.0)).exp())
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scorer;

    #[test]
    fn learns_a_separable_toy_set() {
        let scorer = Scorer::new();
        let texts = [
            ("物流神速包装完整", true),
            ("客服秒回很耐心", true),
            ("物流神速客服耐心", true),
            ("等了十天还没发货", false),
            ("客服一直不回消息", false),
            ("十天没发货客服不回", false),
        ];
        let examples: Vec<(Features, bool)> = texts
            .iter()
            .map(|&(text, positive)| (scorer.features(text, FeatureSet::Text), positive))
            .collect();
        let config = TrainConfig {
            epochs: 20,
            learning_rate: 0.5,
            ..TrainConfig::default()
        };
        let model = LogisticModel::train(FeatureSet::Text, &examples, &config);
        for (features, positive) in &examples {
            assert_eq!(model.probability(features) > 0.5, *positive);
        }
        let unseen = scorer.features("物流神速", FeatureSet::Text);
        assert!(model.probability(&unseen) > 0.5);
    }

    #[test]
    fn training_is_deterministic() {
        let scorer = Scorer::new();
        let examples = vec![
            (scorer.features("好", FeatureSet::TextAndLexicon), true),
            (scorer.features("差", FeatureSet::TextAndLexicon), false),
        ];
        let config = TrainConfig::default();
        let first = LogisticModel::train(FeatureSet::TextAndLexicon, &examples, &config);
        let second = LogisticModel::train(FeatureSet::TextAndLexicon, &examples, &config);
        assert_eq!(first, second);
    }

    #[test]
    fn saved_model_loads_and_scores_alike() {
        let scorer = Scorer::new();
        let texts = [("物流神速包装完整", true), ("等了十天还没发货", false)];
        let examples: Vec<(Features, bool)> = texts
            .iter()
            .map(|&(text, positive)| (scorer.features(text, FeatureSet::TextAndLexicon), positive))
            .collect();
        let config = TrainConfig {
            epochs: 10,
            learning_rate: 0.5,
            ..TrainConfig::default()
        };
        let model = LogisticModel::train(FeatureSet::TextAndLexicon, &examples, &config);
        let bytes = model.to_bytes();
        let loaded = LogisticModel::from_bytes(&bytes).expect("own bytes load");
        assert_eq!(loaded.feature_set(), FeatureSet::TextAndLexicon);
        assert_eq!(loaded, model, "training already rounds to what is saved");
        assert_eq!(loaded.to_bytes(), bytes);
        for (features, positive) in &examples {
            assert_eq!(model.probability(features), loaded.probability(features));
            assert_eq!(loaded.probability(features) > 0.5, *positive);
        }
        assert_eq!(
            LogisticModel::from_bytes(&bytes[1..]),
            Err(ModelFormatError::Length(bytes.len() - 1))
        );
        let mut foreign = bytes.clone();
        foreign[0] = b'X';
        assert_eq!(
            LogisticModel::from_bytes(&foreign),
            Err(ModelFormatError::Magic)
        );
    }

    #[test]
    fn log_count_ratios_favour_the_class_a_bucket_appears_in() {
        let features = |buckets: &[u32]| Features {
            buckets: buckets.to_vec(),
            dense: [0.0; NUM_DENSE],
        };
        let examples = vec![
            (features(&[1, 3]), true),
            (features(&[1, 3]), true),
            (features(&[2, 3]), false),
            (features(&[2, 3]), false),
        ];
        let ratios = log_count_ratios(&examples, 0.5);
        assert!(ratios[1] > 0.5, "{}", ratios[1]);
        assert!(ratios[2] < -0.5, "{}", ratios[2]);
        assert!(ratios[3].abs() < 1e-6, "{}", ratios[3]);
        assert!(ratios[4].abs() < 1e-6, "unseen: {}", ratios[4]);
    }

    #[test]
    fn plain_inputs_train_too() {
        let scorer = Scorer::new();
        let examples = vec![
            (scorer.features("物流神速", FeatureSet::Text), true),
            (scorer.features("一直不发货", FeatureSet::Text), false),
        ];
        let config = TrainConfig {
            epochs: 10,
            learning_rate: 0.5,
            log_count_ratio: None,
            ..TrainConfig::default()
        };
        let model = LogisticModel::train(FeatureSet::Text, &examples, &config);
        assert!(model.probability(&examples[0].0) > 0.5);
        assert!(model.probability(&examples[1].0) < 0.5);
    }
}
