//! RFM: recency (days since the last order), frequency (orders in the window) and monetary value (net
//! amount in the window), each scored 1–5 by quintiles within the tenant, and the value tiers derived
//! from the scores.
//!
//! Quintile edges are nearest-rank quantiles of the tenant's values: sort, and the k-th edge is the
//! value at rank ⌈k·n/5⌉ (k = 1..4). A value scores one plus the number of edges it is strictly
//! above, so equal values always get the same score and ties fall to the lower score: if 60% of
//! buyers ordered once, all of them get F=1 rather than being spread over F=1..3 by an arbitrary
//! order. Buckets can therefore be uneven. Recency is inverted — fewer days since the last order
//! scores higher — by scoring the negated day count.

use std::fmt;

use super::DAY_US;
use super::profile::Order;

/// The window frequency and monetary value look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmConfig {
    pub window_days: u32,
}

impl Default for RfmConfig {
    fn default() -> Self {
        Self { window_days: 365 }
    }
}

/// One buyer's raw RFM values at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmValues {
    pub recency_days: i64,
    pub frequency: i64,
    pub monetary_cents: i64,
}

impl RfmValues {
    /// `None` when there is no order at all. `last_order_at_us` is the lifetime last order (which
    /// may be older than the window); `orders` needs to hold at least the orders inside the window.
    pub fn compute(
        orders: &[Order],
        last_order_at_us: Option<i64>,
        config: &RfmConfig,
        now_us: i64,
    ) -> Option<Self> {
        let last_us = orders.iter().map(|o| o.at_us).max().max(last_order_at_us)?;
        let since_us = now_us.saturating_sub(i64::from(config.window_days) * DAY_US);
        let (frequency, monetary_cents) = orders
            .iter()
            .filter(|o| o.at_us > since_us && o.at_us <= now_us)
            .fold((0i64, 0i64), |(n, sum), o| {
                (n + 1, sum.saturating_add(o.net_cents()))
            });
        Some(Self {
            recency_days: now_us.saturating_sub(last_us).max(0) / DAY_US,
            frequency,
            monetary_cents,
        })
    }
}

/// Scores 1..=5 for one buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfmScore {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

impl fmt::Display for RfmScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{}F{}M{}", self.recency, self.frequency, self.monetary)
    }
}

/// The four edges between the five quintiles of one tenant's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quintiles {
    edges: [i64; 4],
}

impl Quintiles {
    /// Nearest-rank edges; `None` for no values. Takes the values by value because it sorts them.
    pub fn from_values(mut values: Vec<i64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let n = values.len();
        let edges = std::array::from_fn(|i| {
            let rank = ((i + 1) * n).div_ceil(5);
            values[rank - 1]
        });
        Some(Self { edges })
    }

    pub fn edges(&self) -> [i64; 4] {
        self.edges
    }

    /// 1 plus the number of edges `value` is strictly above.
    pub fn score(&self, value: i64) -> u8 {
        1 + self.edges.iter().filter(|&&edge| value > edge).count() as u8
    }
}

/// One tenant's quintile edges for all three dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmEdges {
    /// Over negated recency days, so that more recent scores higher.
    recency: Quintiles,
    frequency: Quintiles,
    monetary: Quintiles,
}

impl RfmEdges {
    /// `None` when the tenant has no buyers.
    pub fn compute(values: &[RfmValues]) -> Option<Self> {
        Some(Self {
            recency: Quintiles::from_values(values.iter().map(|v| -v.recency_days).collect())?,
            frequency: Quintiles::from_values(values.iter().map(|v| v.frequency).collect())?,
            monetary: Quintiles::from_values(values.iter().map(|v| v.monetary_cents).collect())?,
        })
    }

    /// Edges as stored: recency in days since the last order (as [`Self::recency_days_edges`]
    /// returns them), frequency in orders, monetary in cents.
    pub fn from_edges(recency_days: [i64; 4], frequency: [i64; 4], monetary: [i64; 4]) -> Self {
        Self {
            recency: Quintiles {
                edges: recency_days.map(|e| -e),
            },
            frequency: Quintiles { edges: frequency },
            monetary: Quintiles { edges: monetary },
        }
    }

    /// Recency edges in days since the last order: a buyer scores R=5 when strictly fewer days than
    /// the last edge have passed, R=1 at or beyond the first.
    pub fn recency_days_edges(&self) -> [i64; 4] {
        self.recency.edges().map(|e| -e)
    }

    pub fn frequency_edges(&self) -> [i64; 4] {
        self.frequency.edges()
    }

    pub fn monetary_edges(&self) -> [i64; 4] {
        self.monetary.edges()
    }

    pub fn score(&self, values: &RfmValues) -> RfmScore {
        RfmScore {
            recency: self.recency.score(-values.recency_days),
            frequency: self.frequency.score(values.frequency),
            monetary: self.monetary.score(values.monetary_cents),
        }
    }
}

/// What a buyer is worth, from their RFM scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ValueTier {
    /// Never ordered, so never scored.
    #[default]
    Unscored,
    LowValue,
    Regular,
    PotentialHighValue,
    HighValue,
}

impl ValueTier {
    pub const ALL: [ValueTier; 5] = [
        ValueTier::Unscored,
        ValueTier::LowValue,
        ValueTier::Regular,
        ValueTier::PotentialHighValue,
        ValueTier::HighValue,
    ];

    /// The name used on the wire and in segment rules.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueTier::Unscored => "unscored",
            ValueTier::LowValue => "low_value",
            ValueTier::Regular => "regular",
            ValueTier::PotentialHighValue => "potential_high_value",
            ValueTier::HighValue => "high_value",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for ValueTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Score thresholds for the value tiers, checked in order: high value, potential high value, low
/// value; anyone else who ordered is regular.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierThresholds {
    /// High value: recent, frequent and large.
    pub high_min_recency: u8,
    pub high_min_frequency: u8,
    pub high_min_monetary: u8,
    /// Potential high value: recent and large, but infrequent.
    pub potential_min_recency: u8,
    pub potential_min_monetary: u8,
    pub potential_max_frequency: u8,
    /// Low value: neither recent nor large.
    pub low_max_recency: u8,
    pub low_max_monetary: u8,
}

impl Default for TierThresholds {
    fn default() -> Self {
        Self {
            high_min_recency: 4,
            high_min_frequency: 4,
            high_min_monetary: 4,
            potential_min_recency: 4,
            potential_min_monetary: 4,
            potential_max_frequency: 3,
            low_max_recency: 2,
            low_max_monetary: 2,
        }
    }
}

impl TierThresholds {
    pub fn tier(&self, score: Option<RfmScore>) -> ValueTier {
        let Some(s) = score else {
            return ValueTier::Unscored;
        };
        if s.recency >= self.high_min_recency
            && s.frequency >= self.high_min_frequency
            && s.monetary >= self.high_min_monetary
        {
            ValueTier::HighValue
        } else if s.recency >= self.potential_min_recency
            && s.monetary >= self.potential_min_monetary
            && s.frequency <= self.potential_max_frequency
        {
            ValueTier::PotentialHighValue
        } else if s.recency <= self.low_max_recency && s.monetary <= self.low_max_monetary {
            ValueTier::LowValue
        } else {
            ValueTier::Regular
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn order(at_us: i64, amount_cents: i64, refunded_cents: i64) -> Order {
        Order {
            at_us,
            amount_cents,
            refunded_cents,
        }
    }

    #[test]
    fn values_count_only_the_window_and_net_amounts() {
        let now = 1_000 * DAY_US;
        let orders = [
            order(now - 400 * DAY_US, 10_000, 0),
            order(now - 100 * DAY_US, 5_000, 1_000),
            order(now - 3 * DAY_US - 1, 2_000, 0),
        ];
        let v = RfmValues::compute(&orders, None, &RfmConfig::default(), now).unwrap();
        assert_eq!(
            v,
            RfmValues {
                recency_days: 3,
                frequency: 2,
                monetary_cents: 6_000,
            }
        );
        let short = RfmConfig { window_days: 30 };
        let v = RfmValues::compute(&orders, None, &short, now).unwrap();
        assert_eq!((v.frequency, v.monetary_cents), (1, 2_000));
    }

    #[test]
    fn recency_uses_the_lifetime_last_order_when_the_window_is_empty() {
        let now = 1_000 * DAY_US;
        let v =
            RfmValues::compute(&[], Some(now - 500 * DAY_US), &RfmConfig::default(), now).unwrap();
        assert_eq!(
            v,
            RfmValues {
                recency_days: 500,
                frequency: 0,
                monetary_cents: 0,
            }
        );
        assert_eq!(
            RfmValues::compute(&[], None, &RfmConfig::default(), now),
            None
        );
    }

    #[test]
    fn five_distinct_values_score_one_to_five() {
        let q = Quintiles::from_values(vec![50, 10, 40, 20, 30]).unwrap();
        assert_eq!(q.edges(), [10, 20, 30, 40]);
        let scores: Vec<u8> = [10, 20, 30, 40, 50].iter().map(|&v| q.score(v)).collect();
        assert_eq!(scores, [1, 2, 3, 4, 5]);
        assert_eq!(q.score(i64::MIN), 1);
        assert_eq!(q.score(i64::MAX), 5);
    }

    #[test]
    fn hundred_values_fill_quintiles_of_twenty() {
        let q = Quintiles::from_values((1..=100).collect()).unwrap();
        assert_eq!(q.edges(), [20, 40, 60, 80]);
        let mut per_score = [0; 5];
        for v in 1..=100 {
            per_score[usize::from(q.score(v)) - 1] += 1;
        }
        assert_eq!(per_score, [20; 5]);
    }

    #[test]
    fn equal_values_share_a_score_and_ties_fall_low() {
        let mut values = vec![1; 60];
        values.extend([2; 25]);
        values.extend([3; 10]);
        values.extend([7; 5]);
        let q = Quintiles::from_values(values).unwrap();
        assert_eq!(q.edges(), [1, 1, 1, 2]);
        assert_eq!(
            [1, 2, 3, 7].map(|v| q.score(v)),
            [1, 4, 5, 5],
            "one-time buyers all get F=1; a second order jumps past three edges"
        );
        let all_same = Quintiles::from_values(vec![9; 7]).unwrap();
        assert_eq!(all_same.score(9), 1);
        assert_eq!(Quintiles::from_values(vec![]), None);
    }

    #[test]
    fn small_populations_still_score() {
        let one = Quintiles::from_values(vec![42]).unwrap();
        assert_eq!(one.score(42), 1);
        let two = Quintiles::from_values(vec![1, 2]).unwrap();
        assert_eq!(two.edges(), [1, 1, 2, 2]);
        assert_eq!((two.score(1), two.score(2)), (1, 3));
    }

    #[test]
    fn recency_is_inverted() {
        let values: Vec<RfmValues> = (0..5)
            .map(|i| RfmValues {
                recency_days: i * 10,
                frequency: i,
                monetary_cents: i * 100,
            })
            .collect();
        let edges = RfmEdges::compute(&values).unwrap();
        assert_eq!(edges.recency_days_edges(), [40, 30, 20, 10]);
        let stored = RfmEdges::from_edges(
            edges.recency_days_edges(),
            edges.frequency_edges(),
            edges.monetary_edges(),
        );
        assert_eq!(stored, edges, "edges round-trip through their stored form");
        let most_recent = edges.score(&values[0]);
        assert_eq!(
            most_recent,
            RfmScore {
                recency: 5,
                frequency: 1,
                monetary: 1,
            }
        );
        assert_eq!(edges.score(&values[4]).recency, 1);
        assert_eq!(most_recent.to_string(), "R5F1M1");
    }

    #[test]
    fn tiers_follow_the_default_thresholds() {
        let t = TierThresholds::default();
        let s = |recency, frequency, monetary| {
            Some(RfmScore {
                recency,
                frequency,
                monetary,
            })
        };
        assert_eq!(t.tier(None), ValueTier::Unscored);
        assert_eq!(t.tier(s(5, 5, 5)), ValueTier::HighValue);
        assert_eq!(t.tier(s(4, 4, 4)), ValueTier::HighValue);
        assert_eq!(t.tier(s(4, 3, 4)), ValueTier::PotentialHighValue);
        assert_eq!(t.tier(s(5, 1, 5)), ValueTier::PotentialHighValue);
        assert_eq!(t.tier(s(3, 5, 5)), ValueTier::Regular);
        assert_eq!(t.tier(s(2, 5, 2)), ValueTier::LowValue);
        assert_eq!(t.tier(s(1, 1, 1)), ValueTier::LowValue);
        assert_eq!(t.tier(s(2, 1, 3)), ValueTier::Regular);
        let strict = TierThresholds {
            high_min_frequency: 5,
            ..t
        };
        assert_eq!(strict.tier(s(4, 4, 4)), ValueTier::Regular);
    }

    proptest! {
        #[test]
        fn scores_are_monotone_and_ties_fall_low(
            values in prop::collection::vec(-50i64..50, 1..200),
            a in -60i64..60,
            b in -60i64..60,
        ) {
            let q = Quintiles::from_values(values.clone()).unwrap();
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(q.score(lo) <= q.score(hi));
            let n = values.len();
            for k in 1..=5u8 {
                let at_most_k = values.iter().filter(|&&v| q.score(v) <= k).count();
                prop_assert!(at_most_k >= (usize::from(k) * n).div_ceil(5));
            }
        }

        #[test]
        fn distinct_values_fill_quintiles_by_nearest_rank(
            values in prop::collection::btree_set(any::<i64>(), 1..200),
        ) {
            let values: Vec<i64> = values.into_iter().collect();
            let q = Quintiles::from_values(values.clone()).unwrap();
            let n = values.len();
            for k in 1..=5u8 {
                let at_most_k = values.iter().filter(|&&v| q.score(v) <= k).count();
                prop_assert_eq!(at_most_k, (usize::from(k) * n).div_ceil(5));
            }
        }
    }

    #[test]
    fn tier_names_round_trip() {
        for tier in ValueTier::ALL {
            assert_eq!(ValueTier::from_name(tier.as_str()), Some(tier));
        }
        assert_eq!(ValueTier::from_name("vip"), None);
    }
}
