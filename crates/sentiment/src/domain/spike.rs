//! Negative-spike detection for one watchlist of one tenant.
//!
//! Mentions are counted in buckets (default 5 minutes). The *window* is the latest few buckets (default
//! six, so the last 25–30 minutes, the current bucket included). The *baseline* is the same window at
//! the same time of day on each of the previous days (default 14) on which the watchlist was already
//! watched, so an evening peak is compared with earlier evenings, not with the night. A spike fires when
//!
//! - the window's negative count reaches `min_count` and exceeds mean + k·σ of the baseline (σ is at least
//!   √mean, the spread of a Poisson count, so a baseline that happens to be very regular does not turn
//!   every extra mention into a spike), or
//! - the window's negative count reaches `min_count` and its negative share exceeds the baseline's by
//!   `share_jump` or more;
//!
//! and no spike fired for the watchlist within `cooldown`.

pub const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeRules {
    pub bucket_us: i64,
    pub window_buckets: u32,
    pub baseline_days: u32,
    pub k: f64,
    pub min_count: u64,
    pub share_jump: f64,
    pub cooldown_us: i64,
}

impl Default for SpikeRules {
    fn default() -> Self {
        Self {
            bucket_us: 5 * 60_000_000,
            window_buckets: 6,
            baseline_days: 14,
            k: 3.0,
            min_count: 10,
            share_jump: 0.3,
            cooldown_us: 2 * 3_600_000_000,
        }
    }
}

impl SpikeRules {
    /// Checks what the arithmetic relies on: a bucket divides a day, so "the same time yesterday" is a
    /// whole number of buckets back.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket_us < 60_000_000 || DAY_US % self.bucket_us != 0 {
            return Err(
                "spike bucket must be at least 1m and divide a day (1m, 5m, 10m, 15m, 30m, 1h …)"
                    .into(),
            );
        }
        if self.window_buckets == 0 || i64::from(self.window_buckets) * self.bucket_us > DAY_US {
            return Err("spike window must be between one bucket and a day".into());
        }
        if !(self.k.is_finite() && self.k >= 0.0) {
            return Err("spike k must be a non-negative number".into());
        }
        if self.min_count == 0 {
            return Err("spike min_count must be at least 1".into());
        }
        if !(self.share_jump > 0.0 && self.share_jump <= 1.0) {
            return Err("spike share_jump must be in (0, 1]".into());
        }
        Ok(())
    }

    pub fn bucket_of(&self, at_us: i64) -> i64 {
        at_us.div_euclid(self.bucket_us) * self.bucket_us
    }

    pub fn window_us(&self) -> i64 {
        i64::from(self.window_buckets) * self.bucket_us
    }

    /// The first bucket of the window that ends with the bucket holding `now_us`.
    pub fn window_start(&self, now_us: i64) -> i64 {
        self.bucket_of(now_us) - (i64::from(self.window_buckets) - 1) * self.bucket_us
    }

    /// The bucket starts to read for an evaluation at `now_us`: the window, then the same buckets on
    /// each baseline day, newest day first.
    pub fn buckets_to_read(&self, now_us: i64) -> Vec<i64> {
        let start = self.window_start(now_us);
        (0..=i64::from(self.baseline_days))
            .flat_map(|day| {
                (0..i64::from(self.window_buckets))
                    .map(move |b| start - day * DAY_US + b * self.bucket_us)
            })
            .collect()
    }
}

/// Mentions in a bucket or window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub negative: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.total += other.total;
        self.negative += other.negative;
    }

    pub fn negative_share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.negative as f64 / self.total as f64
        }
    }
}

/// What the previous days looked like at this time of day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Baseline {
    /// Days that contributed.
    pub days: u32,
    pub mean: f64,
    pub sigma: f64,
    pub negative_share: f64,
}

impl Baseline {
    /// Mean and population σ of each day's negative count; the share is pooled over the days.
    pub fn of(days: &[Counts]) -> Self {
        if days.is_empty() {
            return Self::default();
        }
        let n = days.len() as f64;
        let mean = days.iter().map(|c| c.negative as f64).sum::<f64>() / n;
        let variance = days
            .iter()
            .map(|c| (c.negative as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let mut pooled = Counts::default();
        days.iter().for_each(|c| pooled.add(*c));
        Self {
            days: days.len() as u32,
            mean,
            sigma: variance.sqrt(),
            negative_share: pooled.negative_share(),
        }
    }

    /// The negative count above which the window is a volume spike (before `min_count`).
    pub fn volume_threshold(&self, k: f64) -> f64 {
        self.mean + k * self.sigma.max(self.mean.sqrt())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Volume,
    ShareJump,
}

/// The window, its baseline and whether they make a spike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub window: Counts,
    pub baseline: Baseline,
    /// The larger of the baseline's volume threshold and `min_count`: the scale severity measures the
    /// window's negatives against.
    pub threshold: f64,
    pub trigger: Option<Trigger>,
}

impl Evaluation {
    /// The window's negatives against the spike threshold (1.0 is exactly at it).
    pub fn volume_ratio(&self) -> f64 {
        self.window.negative as f64 / self.threshold.max(1.0)
    }

    /// One line for operators: why it fired, or what it was compared with.
    pub fn describe(&self, rules: &SpikeRules) -> String {
        let minutes = rules.window_us() / 60_000_000;
        let what = match self.trigger {
            Some(Trigger::Volume) => "negative volume spike: ",
            Some(Trigger::ShareJump) => "negative share jump: ",
            None => "",
        };
        format!(
            "{what}{} negative of {} mentions in {minutes}m (share {:.2}); baseline over {} days {:.1} ± {:.1} negative, share {:.2}",
            self.window.negative,
            self.window.total,
            self.window.negative_share(),
            self.baseline.days,
            self.baseline.mean,
            self.baseline.sigma,
            self.baseline.negative_share,
        )
    }
}

/// Judges the window against its baseline days. `history` holds one entry per baseline day, `None` for a
/// day before the watchlist was watched (it does not count as a quiet day).
pub fn evaluate(rules: &SpikeRules, window: Counts, history: &[Option<Counts>]) -> Evaluation {
    let days: Vec<Counts> = history.iter().flatten().copied().collect();
    let baseline = Baseline::of(&days);
    let volume_threshold = baseline.volume_threshold(rules.k);
    let threshold = volume_threshold.max(rules.min_count as f64);
    let trigger = if window.negative < rules.min_count {
        None
    } else if window.negative as f64 > volume_threshold {
        Some(Trigger::Volume)
    } else if baseline.days > 0
        && window.negative_share() >= baseline.negative_share + rules.share_jump
    {
        Some(Trigger::ShareJump)
    } else {
        None
    };
    Evaluation {
        window,
        baseline,
        threshold,
        trigger,
    }
}

/// Whether a spike at `now_us` may open a crisis, given when the last one fired.
pub fn cooled_down(rules: &SpikeRules, last_fired_at_us: Option<i64>, now_us: i64) -> bool {
    last_fired_at_us.is_none_or(|at| now_us.saturating_sub(at) >= rules.cooldown_us)
}

/// Sums bucket counts into the window and one entry per baseline day, following the layout of
/// [`SpikeRules::buckets_to_read`]. A day counts only when it ends after `first_seen_us`, the first
/// bucket the watchlist ever counted.
pub fn fold_buckets(
    rules: &SpikeRules,
    now_us: i64,
    first_seen_us: Option<i64>,
    count_at: impl Fn(i64) -> Counts,
) -> (Counts, Vec<Option<Counts>>) {
    let starts = rules.buckets_to_read(now_us);
    let per_day = rules.window_buckets as usize;
    let mut days = starts.chunks(per_day).map(|day| {
        let mut counts = Counts::default();
        for &bucket in day {
            counts.add(count_at(bucket));
        }
        let day_end = day.last().copied().unwrap_or_default() + rules.bucket_us;
        (counts, first_seen_us.is_some_and(|first| first < day_end))
    });
    let window = days.next().map(|(c, _)| c).unwrap_or_default();
    let history = days
        .map(|(counts, watched)| watched.then_some(counts))
        .collect();
    (window, history)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(total: u64, negative: u64) -> Counts {
        Counts { total, negative }
    }

    #[test]
    fn defaults_are_valid_and_bad_settings_are_refused() {
        assert!(SpikeRules::default().validate().is_ok());
        let bad_bucket = SpikeRules {
            bucket_us: 7 * 60_000_000,
            ..SpikeRules::default()
        };
        assert!(bad_bucket.validate().is_err());
        let no_minimum = SpikeRules {
            min_count: 0,
            ..SpikeRules::default()
        };
        assert!(no_minimum.validate().is_err());
    }

    #[test]
    fn buckets_cover_the_window_and_the_same_time_on_earlier_days() {
        let rules = SpikeRules {
            window_buckets: 2,
            baseline_days: 2,
            ..SpikeRules::default()
        };
        let now = 10 * DAY_US + 20 * 3_600_000_000 + 7 * 60_000_000; // day 10, 20:07
        let b = rules.bucket_us;
        let current = 10 * DAY_US + 20 * 3_600_000_000 + b; // the 20:05 bucket
        assert_eq!(
            rules.buckets_to_read(now),
            vec![
                current - b,
                current,
                current - b - DAY_US,
                current - DAY_US,
                current - b - 2 * DAY_US,
                current - 2 * DAY_US,
            ]
        );
    }

    #[test]
    fn a_burst_over_a_quiet_baseline_is_a_volume_spike() {
        let rules = SpikeRules::default();
        let quiet = vec![Some(counts(20, 1)); 14];
        let evaluation = evaluate(&rules, counts(15, 12), &quiet);
        assert_eq!(evaluation.trigger, Some(Trigger::Volume));
        assert!(
            evaluation
                .describe(&rules)
                .starts_with("negative volume spike: 12 negative of 15")
        );
    }

    #[test]
    fn fewer_than_min_count_never_fires() {
        let rules = SpikeRules::default();
        let quiet = vec![Some(counts(3, 0)); 14];
        assert_eq!(evaluate(&rules, counts(9, 9), &quiet).trigger, None);
    }

    #[test]
    fn a_usual_evening_peak_is_no_spike() {
        let rules = SpikeRules::default();
        // Evenings bring 40 to 60 mentions, 10 to 16 of them negative.
        let evenings: Vec<Option<Counts>> = (0..14)
            .map(|d| Some(counts(40 + d % 3 * 10, 10 + d % 4 * 2)))
            .collect();
        let tonight = evaluate(&rules, counts(55, 15), &evenings);
        assert_eq!(tonight.trigger, None, "{tonight:?}");
        let crisis = evaluate(&rules, counts(90, 45), &evenings);
        assert_eq!(crisis.trigger, Some(Trigger::Volume));
    }

    #[test]
    fn a_jump_in_negative_share_fires_without_extra_volume() {
        let rules = SpikeRules::default();
        // Busy hours with a steady 10-12 negatives, but few of them usually.
        let busy: Vec<Option<Counts>> = (0..14).map(|d| Some(counts(100, 9 + d % 4))).collect();
        let evaluation = evaluate(&rules, counts(24, 12), &busy);
        assert_eq!(
            evaluation.trigger,
            Some(Trigger::ShareJump),
            "{evaluation:?}"
        );
    }

    #[test]
    fn sigma_is_at_least_poisson_noise() {
        let flat = Baseline::of(&[counts(50, 16); 7]);
        assert_eq!(flat.sigma, 0.0);
        assert!((flat.volume_threshold(3.0) - 28.0).abs() < 1e-9);
    }

    #[test]
    fn days_before_the_watchlist_existed_do_not_count_as_quiet() {
        let rules = SpikeRules {
            window_buckets: 1,
            baseline_days: 3,
            ..SpikeRules::default()
        };
        let now = 5 * DAY_US + 3_600_000_000;
        let first_seen = Some(now - DAY_US - 60_000_000);
        let (window, history) = fold_buckets(&rules, now, first_seen, |bucket| {
            if bucket == rules.bucket_of(now) {
                counts(7, 5)
            } else {
                counts(2, 1)
            }
        });
        assert_eq!(window, counts(7, 5));
        assert_eq!(history, vec![Some(counts(2, 1)), None, None]);
    }

    #[test]
    fn cooldown_blocks_repeats() {
        let rules = SpikeRules::default();
        assert!(cooled_down(&rules, None, 0));
        assert!(!cooled_down(&rules, Some(0), rules.cooldown_us - 1));
        assert!(cooled_down(&rules, Some(0), rules.cooldown_us));
    }
}
