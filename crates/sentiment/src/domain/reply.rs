//! Reply times. A user's comment or direct message is answered by the first message the brand's own
//! account writes that names it (`reply_to_id`) or, in a direct-message conversation, by the first
//! brand message after it in that conversation. Its reply time is the gap between the two.

/// Reply times of one platform, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplySummary {
    pub num_replies: u64,
    pub median_seconds: f64,
    pub p90_seconds: f64,
}

/// The `q` quantile (0 to 1) of sorted values, interpolating linearly between the two nearest ranks
/// (the "type 7" definition most tools default to).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let below = position.floor() as usize;
            let above = (below + 1).min(n - 1);
            let fraction = position - below as f64;
            sorted[below] + (sorted[above] - sorted[below]) * fraction
        }
    }
}

impl ReplySummary {
    pub fn of(mut seconds: Vec<f64>) -> Self {
        seconds.retain(|s| s.is_finite());
        seconds.sort_by(f64::total_cmp);
        Self {
            num_replies: seconds.len() as u64,
            median_seconds: quantile(&seconds, 0.5),
            p90_seconds: quantile(&seconds, 0.9),
        }
    }
}

/// Whether a brand message at `reply_at_us` in a conversation answers a user message written at
/// `asked_at_us` in it: it must come after, or at the same instant (platforms round to the second).
pub fn answers_in_conversation(asked_at_us: i64, reply_at_us: i64) -> bool {
    reply_at_us >= asked_at_us
}

/// The reply time in seconds; a reply stamped before the message it names (clock skew between
/// platforms' exports) counts as immediate.
pub fn reply_seconds(asked_at_us: i64, reply_at_us: i64) -> f64 {
    (reply_at_us - asked_at_us).max(0) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];
        assert_eq!(quantile(&values, 0.5), 55.0);
        assert!((quantile(&values, 0.9) - 91.0).abs() < 1e-9);
        assert_eq!(quantile(&values, 0.0), 10.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn summary_sorts_and_counts() {
        let summary = ReplySummary::of(vec![600.0, 60.0, 3_600.0, 120.0]);
        assert_eq!(summary.num_replies, 4);
        assert_eq!(summary.median_seconds, 360.0);
        assert!((summary.p90_seconds - 2_700.0).abs() < 1e-9);
    }

    #[test]
    fn replies_come_after_the_message() {
        assert!(answers_in_conversation(100, 100));
        assert!(answers_in_conversation(100, 200));
        assert!(!answers_in_conversation(200, 100));
        assert_eq!(reply_seconds(1_000_000, 61_000_000), 60.0);
        assert_eq!(reply_seconds(61_000_000, 1_000_000), 0.0);
    }
}
