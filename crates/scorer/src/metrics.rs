//! Accuracy and macro-F1 for a two-class (negative / positive) evaluation.

/// Counts of outcomes with "positive" as the positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BinaryConfusion {
    pub true_positive: u64,
    pub false_positive: u64,
    pub true_negative: u64,
    pub false_negative: u64,
}

impl BinaryConfusion {
    pub fn add(&mut self, actual_positive: bool, predicted_positive: bool) {
        self.add_weighted(actual_positive, predicted_positive, 1);
    }

    pub fn add_weighted(&mut self, actual_positive: bool, predicted_positive: bool, weight: u64) {
        match (actual_positive, predicted_positive) {
            (true, true) => self.true_positive += weight,
            (false, true) => self.false_positive += weight,
            (false, false) => self.true_negative += weight,
            (true, false) => self.false_negative += weight,
        }
    }

    pub fn total(&self) -> u64 {
        self.true_positive + self.false_positive + self.true_negative + self.false_negative
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.true_positive + self.true_negative, self.total())
    }

    /// Mean of the F1 of the positive class and the F1 of the negative class.
    pub fn macro_f1(&self) -> f64 {
        let f1_positive = f1(self.true_positive, self.false_positive, self.false_negative);
        let f1_negative = f1(self.true_negative, self.false_negative, self.false_positive);
        (f1_positive + f1_negative) / 2.0
    }
}

fn f1(hits: u64, false_alarms: u64, misses: u64) -> f64 {
    ratio(2 * hits, 2 * hits + false_alarms + misses)
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_predictions_score_one() {
        let mut confusion = BinaryConfusion::default();
        confusion.add(true, true);
        confusion.add(false, false);
        assert_eq!(confusion.accuracy(), 1.0);
        assert_eq!(confusion.macro_f1(), 1.0);
    }

    #[test]
    fn macro_f1_punishes_predicting_one_class() {
        let mut confusion = BinaryConfusion::default();
        confusion.add_weighted(true, true, 9);
        confusion.add_weighted(false, true, 1);
        assert!((confusion.accuracy() - 0.9).abs() < 1e-9);
        assert!(confusion.macro_f1() < 0.5);
    }
}
