//! Statistics behind an A/B-experiment report: how much better or worse a
//! variant does than control, how sure we can be, whether the traffic split
//! is healthy, and a one-sentence verdict.
//!
//! Every function works on per-arm running totals ([`ArmStats`]), so a report
//! over a million users costs the same as one over a hundred.

use std::fmt;
use std::ops::{Add, AddAssign};

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// Confidence level used when the experiment does not configure one.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// Default tuning parameter of the always-valid test (the `gbstats` default):
/// roughly the total sample size at which its interval is tightest relative
/// to the fixed-horizon one.
pub const DEFAULT_SEQUENTIAL_TUNING: f64 = 5000.0;

/// Below this sample-ratio p-value the traffic split is considered broken and
/// no verdict is given.
pub const SRM_MISMATCH_P: f64 = 0.001;

/// Below this sample-ratio p-value (and at or above [`SRM_MISMATCH_P`]) the
/// report warns that the traffic split looks off.
pub const SRM_WARNING_P: f64 = 0.01;

/// Running totals for one arm of an experiment. Each user contributes once;
/// users who did nothing contribute zeros. Totals from separate batches can
/// be combined with `+`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ArmStats {
    /// Users assigned to the arm.
    pub users: u64,
    /// Users who converted.
    pub conversions: u64,
    /// Sum of revenue per user.
    pub revenue_sum: f64,
    /// Sum of squared revenue per user.
    pub revenue_sq_sum: f64,
    /// CUPED covariate: sum of each user's pre-period revenue (0 for users
    /// with no pre-period orders). Leave all three `pre_*` fields at 0 to
    /// skip the adjustment.
    pub pre_sum: f64,
    /// Sum of squared pre-period revenue per user.
    pub pre_sq_sum: f64,
    /// Sum over users of pre-period revenue times experiment-period revenue.
    pub pre_cross_sum: f64,
}

impl ArmStats {
    /// Share of users who converted, or `None` for an empty arm.
    #[must_use]
    pub fn conversion_rate(&self) -> Option<f64> {
        (self.users > 0).then(|| count(self.conversions) / count(self.users))
    }

    /// Average revenue per assigned user, or `None` for an empty arm.
    #[must_use]
    pub fn revenue_per_user(&self) -> Option<f64> {
        (self.users > 0).then(|| self.revenue_sum / count(self.users))
    }
}

impl Add for ArmStats {
    type Output = Self;

    fn add(mut self, other: Self) -> Self {
        self += other;
        self
    }
}

impl AddAssign for ArmStats {
    fn add_assign(&mut self, other: Self) {
        self.users = self.users.saturating_add(other.users);
        self.conversions = self.conversions.saturating_add(other.conversions);
        self.revenue_sum += other.revenue_sum;
        self.revenue_sq_sum += other.revenue_sq_sum;
        self.pre_sum += other.pre_sum;
        self.pre_sq_sum += other.pre_sq_sum;
        self.pre_cross_sum += other.pre_cross_sum;
    }
}

/// What is being compared between arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Share of users who converted; differences are reported in percentage points.
    ConversionRate,
    /// Revenue per assigned user, in the currency of the revenue sums.
    RevenuePerUser,
}

/// How the interval and p-value may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Analysis {
    /// Classic normal-approximation test: valid only if the result is read
    /// once, at a sample size fixed in advance. Peeking inflates false alarms.
    FixedHorizon,
    /// Always-valid test: the interval covers the true difference at every
    /// look simultaneously, so the report may be checked as often as anyone
    /// likes and stopped as soon as it excludes zero.
    ///
    /// Method: asymptotic confidence sequences (Waudby-Smith, Wu, Ramdas,
    /// Karampatziakis and Mineiro, "Time-uniform central limit theory and
    /// asymptotic confidence sequences", arXiv:2103.06476, eqs. 9, 155 and
    /// 161; building on Howard et al., "Time-uniform, nonparametric,
    /// nonasymptotic confidence sequences", Annals of Statistics 2021), as
    /// implemented by `GrowthBook` (commit 8f1db44) in
    /// `packages/stats/gbstats/frequentist/tests.py` of `growthbook/growthbook`
    /// (`sequential_rho`, `sequential_interval_halfwidth` and
    /// `SequentialTwoSidedTTest.p_value`).
    Sequential,
}

/// Knobs shared by all comparisons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Two-sided confidence level, strictly between 0 and 1 (0.95 means a
    /// 95 % interval and a 5 % false-alarm rate).
    pub confidence: f64,
    /// Tuning parameter of the always-valid test; see [`DEFAULT_SEQUENTIAL_TUNING`].
    pub sequential_tuning: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            confidence: DEFAULT_CONFIDENCE,
            sequential_tuning: DEFAULT_SEQUENTIAL_TUNING,
        }
    }
}

impl Settings {
    fn alpha(&self) -> Result<f64, Unavailable> {
        let valid = self.confidence > 0.0
            && self.confidence < 1.0
            && self.sequential_tuning.is_finite()
            && self.sequential_tuning > 0.0;
        if valid {
            Ok(1.0 - self.confidence)
        } else {
            Err(Unavailable::InvalidSettings)
        }
    }
}

/// A two-sided interval for a difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lowest plausible value.
    pub lower: f64,
    /// Highest plausible value.
    pub upper: f64,
}

impl Interval {
    /// Whether zero lies outside the interval, i.e. the difference is real at
    /// the chosen confidence.
    #[must_use]
    pub fn excludes_zero(&self) -> bool {
        self.lower > 0.0 || self.upper < 0.0
    }

    /// Distance from the centre to either end.
    #[must_use]
    pub fn half_width(&self) -> f64 {
        (self.upper - self.lower) / 2.0
    }
}

/// Treatment minus control for one metric, with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Which metric was compared.
    pub metric: Metric,
    /// Whether the interval and p-value are fixed-horizon or always valid.
    pub analysis: Analysis,
    /// Confidence level of `interval`.
    pub confidence: f64,
    /// Control mean (CUPED-adjusted when `cuped_theta` is set).
    pub control_mean: f64,
    /// Treatment mean (CUPED-adjusted when `cuped_theta` is set).
    pub treatment_mean: f64,
    /// Treatment mean minus control mean: a rate difference (0.021 = 2.1
    /// points) or revenue per user.
    pub difference: f64,
    /// Standard error of `difference`.
    pub std_error: f64,
    /// Range of differences consistent with the data at `confidence`.
    pub interval: Interval,
    /// Two-sided p-value for "no difference". For [`Analysis::Sequential`] it
    /// is always valid: the smallest running value over all looks may be used.
    pub p_value: f64,
    /// `difference` as a share of the control mean (0.4 = 40 % better), or
    /// `None` when the control mean is zero. A point estimate only.
    pub relative_lift: Option<f64>,
    /// CUPED coefficient used, or `None` if no pre-period adjustment was made.
    pub cuped_theta: Option<f64>,
}

impl Estimate {
    /// Whether the data show a real difference at the chosen confidence.
    /// Equivalent to `p_value < 1 - confidence`.
    #[must_use]
    pub fn is_significant(&self) -> bool {
        self.interval.excludes_zero()
    }
}

/// Why a figure could not be computed. Shown to users as "not enough data".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unavailable {
    /// An arm has fewer than two users.
    TooFewUsers {
        /// Users in the smallest arm.
        users: u64,
    },
    /// The metric does not vary yet (for example nobody has converted), so
    /// no interval can be formed.
    NoVariance,
    /// The totals contradict each other (more conversions than users,
    /// negative or non-finite sums).
    InvalidStats,
    /// Confidence outside (0, 1) or a non-positive tuning parameter.
    InvalidSettings,
    /// Arm counts and weights differ in number, there are fewer than two
    /// arms, or a weight is not a positive number.
    InvalidWeights,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFewUsers { users: 1 } => f.write_str("1 user in the smallest variant"),
            Self::TooFewUsers { users } => {
                write!(
                    f,
                    "{} users in the smallest variant",
                    group_thousands(*users)
                )
            }
            Self::NoVariance => f.write_str("the metric has shown no variation so far"),
            Self::InvalidStats => f.write_str("the collected totals are inconsistent"),
            Self::InvalidSettings => f.write_str("the confidence settings are invalid"),
            Self::InvalidWeights => f.write_str("the configured weights are invalid"),
        }
    }
}

impl std::error::Error for Unavailable {}

/// Difference in conversion rate, treatment minus control, with an unpooled
/// (Wald) standard error.
///
/// # Errors
/// [`Unavailable`] when an arm has fewer than two users, nobody's outcome
/// varies, the totals are inconsistent or the settings are invalid.
pub fn conversion_difference(
    control: &ArmStats,
    treatment: &ArmStats,
    settings: &Settings,
    analysis: Analysis,
) -> Result<Estimate, Unavailable> {
    check_arms(control, treatment)?;
    let moments = |arm: &ArmStats| {
        let p = count(arm.conversions) / count(arm.users);
        Moments {
            users: arm.users,
            mean: p,
            variance: p * (1.0 - p),
        }
    };
    compare(
        Metric::ConversionRate,
        moments(control),
        moments(treatment),
        settings,
        analysis,
        None,
    )
}

/// Difference in revenue per user, treatment minus control, with a Welch
/// (unequal-variance) standard error.
///
/// # Errors
/// As [`conversion_difference`].
pub fn revenue_difference(
    control: &ArmStats,
    treatment: &ArmStats,
    settings: &Settings,
    analysis: Analysis,
) -> Result<Estimate, Unavailable> {
    check_arms(control, treatment)?;
    let moments = |arm| revenue_moments(arm, 0.0, 0.0);
    compare(
        Metric::RevenuePerUser,
        moments(control),
        moments(treatment),
        settings,
        analysis,
        None,
    )
}

/// Difference in revenue per user after CUPED variance reduction with each
/// user's pre-period revenue as covariate. Narrower intervals for the same
/// data when pre-period and experiment revenue are correlated.
///
/// θ = cov(Y, X) / var(X) is pooled within arms over control and treatment;
/// each arm's mean becomes Ȳ − θ (X̄ − pooled X̄) and its variance
/// var(Y − θX), which equals var(Y)(1 − ρ²) when θ is the arm's own
/// regression slope. Falls back to [`revenue_difference`] (with
/// `cuped_theta: None`) when the covariate has no variance, for example
/// when no pre-period totals were collected.
///
/// # Errors
/// As [`conversion_difference`].
pub fn cuped_revenue_difference(
    control: &ArmStats,
    treatment: &ArmStats,
    settings: &Settings,
    analysis: Analysis,
) -> Result<Estimate, Unavailable> {
    check_arms(control, treatment)?;
    let arms = [control, treatment];
    let sxx: f64 = arms
        .iter()
        .map(|a| centred(a.pre_sq_sum, a.pre_sum, a.pre_sum, a.users))
        .sum();
    let sxy: f64 = arms
        .iter()
        .map(|a| centred(a.pre_cross_sum, a.pre_sum, a.revenue_sum, a.users))
        .sum();
    let scale: f64 = arms.iter().map(|a| a.pre_sq_sum).sum();
    if sxx <= COVARIATE_TOLERANCE * scale {
        return revenue_difference(control, treatment, settings, analysis);
    }
    let theta = sxy / sxx;
    let pooled_pre =
        (control.pre_sum + treatment.pre_sum) / (count(control.users) + count(treatment.users));
    let moments = |arm| revenue_moments(arm, theta, pooled_pre);
    compare(
        Metric::RevenuePerUser,
        moments(control),
        moments(treatment),
        settings,
        analysis,
        Some(theta),
    )
}

/// The comparison a report shows for `metric`: conversion rate as in
/// [`conversion_difference`], revenue per user CUPED-adjusted whenever
/// pre-period totals are present ([`cuped_revenue_difference`]).
///
/// # Errors
/// As [`conversion_difference`].
pub fn estimate(
    metric: Metric,
    control: &ArmStats,
    treatment: &ArmStats,
    settings: &Settings,
    analysis: Analysis,
) -> Result<Estimate, Unavailable> {
    match metric {
        Metric::ConversionRate => conversion_difference(control, treatment, settings, analysis),
        Metric::RevenuePerUser => cuped_revenue_difference(control, treatment, settings, analysis),
    }
}

/// Mean and variance of revenue minus `theta` times the centred covariate;
/// `theta = 0` gives plain revenue per user.
fn revenue_moments(arm: &ArmStats, theta: f64, pooled_pre: f64) -> Moments {
    let n = count(arm.users);
    let var_y = sample_covariance(
        arm.revenue_sq_sum,
        arm.revenue_sum,
        arm.revenue_sum,
        arm.users,
    );
    let var_x = sample_covariance(arm.pre_sq_sum, arm.pre_sum, arm.pre_sum, arm.users);
    let cov = sample_covariance(arm.pre_cross_sum, arm.pre_sum, arm.revenue_sum, arm.users);
    Moments {
        users: arm.users,
        mean: arm.revenue_sum / n - theta * (arm.pre_sum / n - pooled_pre),
        variance: (var_y - 2.0 * theta * cov + theta * theta * var_x).max(0.0),
    }
}

/// Relative size below which the covariate counts as constant.
const COVARIATE_TOLERANCE: f64 = 1e-9;

/// One arm's mean and per-user variance of the (possibly adjusted) metric.
#[derive(Debug, Clone, Copy)]
struct Moments {
    users: u64,
    mean: f64,
    variance: f64,
}

fn check_arms(control: &ArmStats, treatment: &ArmStats) -> Result<(), Unavailable> {
    for arm in [control, treatment] {
        let sums = [
            arm.revenue_sum,
            arm.revenue_sq_sum,
            arm.pre_sum,
            arm.pre_sq_sum,
            arm.pre_cross_sum,
        ];
        if arm.conversions > arm.users
            || sums.iter().any(|s| !s.is_finite())
            || arm.revenue_sq_sum < 0.0
            || arm.pre_sq_sum < 0.0
        {
            return Err(Unavailable::InvalidStats);
        }
    }
    let users = control.users.min(treatment.users);
    if users < 2 {
        return Err(Unavailable::TooFewUsers { users });
    }
    Ok(())
}

fn compare(
    metric: Metric,
    control: Moments,
    treatment: Moments,
    settings: &Settings,
    analysis: Analysis,
    cuped_theta: Option<f64>,
) -> Result<Estimate, Unavailable> {
    let alpha = settings.alpha()?;
    let variance =
        control.variance / count(control.users) + treatment.variance / count(treatment.users);
    let std_error = variance.sqrt();
    if !(std_error > 0.0 && std_error.is_finite()) {
        return Err(Unavailable::NoVariance);
    }
    let difference = treatment.mean - control.mean;
    let z = difference / std_error;
    let (half_width, p_value) = match analysis {
        Analysis::FixedHorizon => {
            let normal = Normal::standard();
            (
                normal.inverse_cdf(1.0 - alpha / 2.0) * std_error,
                (2.0 * normal.sf(z.abs())).min(1.0),
            )
        }
        Analysis::Sequential => {
            let n = count(control.users) + count(treatment.users);
            let rho = sequential_rho(alpha, settings.sequential_tuning);
            (
                sequential_half_width(variance * n, n, alpha, rho),
                sequential_p_value(z, n, rho),
            )
        }
    };
    if !(half_width.is_finite() && p_value.is_finite() && difference.is_finite()) {
        return Err(Unavailable::InvalidStats);
    }
    Ok(Estimate {
        metric,
        analysis,
        confidence: settings.confidence,
        control_mean: control.mean,
        treatment_mean: treatment.mean,
        difference,
        std_error,
        interval: Interval {
            lower: difference - half_width,
            upper: difference + half_width,
        },
        p_value,
        relative_lift: (control.mean != 0.0).then(|| difference / control.mean),
        cuped_theta,
    })
}

/// Mixing parameter ρ of the asymptotic confidence sequence, chosen so the
/// sequence is tightest near `tuning` total users (arXiv:2103.06476 eq. 161;
/// gbstats `sequential_rho`, two-sided).
fn sequential_rho(alpha: f64, tuning: f64) -> f64 {
    let log_term = -2.0 * alpha.ln();
    ((log_term + (log_term + 1.0).ln()) / tuning).sqrt()
}

/// Half-width of the two-sided asymptotic confidence sequence
/// (arXiv:2103.06476 eq. 9; gbstats `sequential_interval_halfwidth`):
/// √s2 · √( 2(Nρ² + 1) / (N²ρ²) · ln(√(Nρ² + 1) / α) ), where `n` is the
/// total sample size and `s2` the variance of the difference times `n`.
fn sequential_half_width(s2: f64, n: f64, alpha: f64, rho: f64) -> f64 {
    let rho2 = rho * rho;
    let growth = n * rho2 + 1.0;
    s2.sqrt() * (2.0 * growth * (growth.sqrt() / alpha).ln() / (n * n * rho2)).sqrt()
}

/// Always-valid p-value: the smallest α whose sequence (with ρ held at the
/// configured value) excludes zero, in closed form as the reciprocal of the
/// mixture e-value (arXiv:2103.06476 eq. 155; gbstats
/// `SequentialTwoSidedTTest.p_value`): √(Nρ² + 1) · exp(−ρ² N z² / (2(Nρ² + 1))).
fn sequential_p_value(z: f64, n: f64, rho: f64) -> f64 {
    let growth = n * rho * rho + 1.0;
    let log_p = 0.5 * growth.ln() - rho * rho * n * z * z / (2.0 * growth);
    log_p.min(0.0).exp()
}

/// `Σxy − Σx·Σy / n`: the centred cross-product of a sum of products.
fn centred(cross_sum: f64, x_sum: f64, y_sum: f64, users: u64) -> f64 {
    if users == 0 {
        0.0
    } else {
        cross_sum - x_sum * y_sum / count(users)
    }
}

/// Sample covariance (n − 1 denominator) from sums; needs at least two users.
fn sample_covariance(cross_sum: f64, x_sum: f64, y_sum: f64, users: u64) -> f64 {
    centred(cross_sum, x_sum, y_sum, users) / (count(users) - 1.0)
}

/// Converts a user count to `f64` (exact below 2^53 users).
#[allow(clippy::cast_precision_loss)]
fn count(n: u64) -> f64 {
    n as f64
}

/// How healthy the traffic split is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrmStatus {
    /// Consistent with the configured weights (p ≥ 0.01).
    Ok,
    /// Somewhat unlikely under the configured weights (0.001 ≤ p < 0.01):
    /// check assignment and logging before acting on results.
    Warning,
    /// Almost certainly not the configured split (p < 0.001): assignment or
    /// logging is broken and no verdict should be drawn.
    Mismatch,
}

/// Result of the sample-ratio-mismatch check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrmResult {
    /// Pearson chi-squared statistic of observed against expected users.
    pub statistic: f64,
    /// Degrees of freedom: number of arms minus one.
    pub degrees_of_freedom: usize,
    /// Chance of a split at least this uneven if assignment works as configured.
    pub p_value: f64,
    /// Classification of `p_value` against [`SRM_MISMATCH_P`] and [`SRM_WARNING_P`].
    pub status: SrmStatus,
}

/// Chi-squared goodness-of-fit test of users per arm against configured
/// weights (any positive scale; include the holdout arm if there is one).
///
/// # Errors
/// [`Unavailable::InvalidWeights`] if the slices differ in length, hold
/// fewer than two arms or a weight is not positive and finite;
/// [`Unavailable::TooFewUsers`] when no users have arrived.
pub fn sample_ratio_mismatch(
    observed_users: &[u64],
    weights: &[f64],
) -> Result<SrmResult, Unavailable> {
    if observed_users.len() != weights.len()
        || observed_users.len() < 2
        || weights.iter().any(|w| !(w.is_finite() && *w > 0.0))
    {
        return Err(Unavailable::InvalidWeights);
    }
    let total: f64 = observed_users.iter().map(|&n| count(n)).sum();
    if total == 0.0 {
        return Err(Unavailable::TooFewUsers { users: 0 });
    }
    let weight_sum: f64 = weights.iter().sum();
    let statistic: f64 = observed_users
        .iter()
        .zip(weights)
        .map(|(&n, w)| {
            let expected = total * w / weight_sum;
            (count(n) - expected).powi(2) / expected
        })
        .sum();
    let degrees_of_freedom = observed_users.len() - 1;
    let chi_squared = ChiSquared::new(count(degrees_of_freedom as u64))
        .map_err(|_| Unavailable::InvalidWeights)?;
    let p_value = chi_squared.sf(statistic);
    let status = if p_value < SRM_MISMATCH_P {
        SrmStatus::Mismatch
    } else if p_value < SRM_WARNING_P {
        SrmStatus::Warning
    } else {
        SrmStatus::Ok
    };
    Ok(SrmResult {
        statistic,
        degrees_of_freedom,
        p_value,
        status,
    })
}

/// What the report concludes about one treatment against control.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The treatment is better on the primary metric.
    Winner {
        /// Name of the winning treatment.
        arm: String,
    },
    /// The treatment is worse on the primary metric.
    Loser {
        /// Name of the losing treatment.
        arm: String,
    },
    /// No conclusion yet; keep the experiment running or accept a small effect.
    Inconclusive {
        /// Why not.
        reason: InconclusiveReason,
    },
    /// The data cannot be trusted; fix the experiment before reading results.
    Blocked {
        /// Why not.
        reason: BlockedReason,
    },
}

/// Why a verdict is not reached yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InconclusiveReason {
    /// The smallest arm has not reached the configured minimum sample.
    NotEnoughUsers {
        /// Users in the smallest of the two arms.
        smallest_arm: u64,
        /// Configured minimum users per arm.
        required: u64,
    },
    /// The primary metric could not be estimated yet.
    NoEstimate(Unavailable),
    /// The interval still includes zero.
    NoClearDifference,
}

/// Why no verdict may be drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BlockedReason {
    /// Users per arm do not match the configured weights.
    SampleRatioMismatch {
        /// Chi-squared p-value of the split.
        p_value: f64,
    },
    /// The traffic split could not be checked.
    SplitNotChecked(Unavailable),
}

/// Everything [`decide`] needs for one treatment against control.
#[derive(Debug, Clone, Copy)]
pub struct VerdictInput<'a> {
    /// Display name of the control arm, e.g. "A".
    pub control_name: &'a str,
    /// Display name of the treatment arm, e.g. "B".
    pub treatment_name: &'a str,
    /// Control totals.
    pub control: &'a ArmStats,
    /// Treatment totals.
    pub treatment: &'a ArmStats,
    /// Sample-ratio check over all arms of the experiment.
    pub srm: &'a Result<SrmResult, Unavailable>,
    /// Minimum users each arm needs before any verdict.
    pub min_users_per_arm: u64,
    /// Estimate of the primary metric, normally [`Analysis::Sequential`].
    pub primary: &'a Result<Estimate, Unavailable>,
}

/// A verdict with its one-sentence explanation for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The machine-readable conclusion.
    pub verdict: Verdict,
    /// The same conclusion in plain English, with rounded numbers.
    pub sentence: String,
}

/// Turns the checks and the primary estimate into a verdict. A broken
/// traffic split blocks everything; then the minimum sample must be reached;
/// then the interval decides.
#[must_use]
pub fn decide(input: &VerdictInput<'_>) -> Decision {
    let split_note = match split_note(input.srm) {
        Ok(note) => note,
        Err(blocked) => return blocked,
    };
    let smallest_arm = input.control.users.min(input.treatment.users);
    if smallest_arm < input.min_users_per_arm {
        return Decision {
            verdict: Verdict::Inconclusive {
                reason: InconclusiveReason::NotEnoughUsers {
                    smallest_arm,
                    required: input.min_users_per_arm,
                },
            },
            sentence: format!(
                "Not enough data yet: {} of {} users per variant.",
                group_thousands(smallest_arm),
                group_thousands(input.min_users_per_arm)
            ),
        };
    }
    let estimate = match input.primary {
        Ok(e)
            if [e.difference, e.interval.lower, e.interval.upper]
                .iter()
                .all(|x| x.is_finite()) =>
        {
            e
        }
        Ok(_) => return not_enough(Unavailable::InvalidStats),
        Err(e) => return not_enough(*e),
    };
    let (control, treatment) = (input.control_name, input.treatment_name);
    let metric = estimate.metric;
    let level = format_percent(estimate.confidence);
    let (lo, hi) = (estimate.interval.lower, estimate.interval.upper);
    if !estimate.is_significant() {
        return Decision {
            verdict: Verdict::Inconclusive {
                reason: InconclusiveReason::NoClearDifference,
            },
            sentence: format!(
                "No clear difference yet: {treatment} minus {control} is {} ({level} % CI {} to {}).",
                amount(metric, estimate.difference, true),
                amount(metric, lo, false),
                amount(metric, hi, false),
            ),
        };
    }
    let better = lo > 0.0;
    let (size, near, far) = if better {
        (estimate.difference, lo, hi)
    } else {
        (-estimate.difference, -hi, -lo)
    };
    let (verb, direction, tail) = match (metric, better) {
        (Metric::ConversionRate, true) => ("converts", "better", ""),
        (Metric::ConversionRate, false) => ("converts", "worse", " worse"),
        (Metric::RevenuePerUser, true) => ("earns", "more revenue per user", ""),
        (Metric::RevenuePerUser, false) => ("earns", "less revenue per user", " less"),
    };
    let looks = match estimate.analysis {
        Analysis::Sequential => "this holds however often you look",
        Analysis::FixedHorizon => "this is valid for a single look at the planned sample size",
    };
    let arm = treatment.to_owned();
    Decision {
        verdict: if better {
            Verdict::Winner { arm }
        } else {
            Verdict::Loser { arm }
        },
        sentence: format!(
            "Variant {treatment} {verb} {} {direction} than {control} \
             ({level} % CI {} to {}{tail}); {looks}; {split_note}.",
            amount(metric, size, true),
            amount(metric, near, false),
            amount(metric, far, false),
        ),
    }
}

/// The clause describing the traffic split, or the blocking decision when
/// the split is broken or could not be checked. An experiment without users
/// yet is not blocked: the minimum-sample rule speaks for it.
fn split_note(srm: &Result<SrmResult, Unavailable>) -> Result<String, Decision> {
    let blocked = |reason, detail: String| Decision {
        verdict: Verdict::Blocked { reason },
        sentence: format!(
            "No verdict: the traffic split {detail}, so the comparison is not trustworthy."
        ),
    };
    match srm {
        Ok(srm) if srm.status == SrmStatus::Mismatch => Err(blocked(
            BlockedReason::SampleRatioMismatch {
                p_value: srm.p_value,
            },
            format!(
                "does not match the configured weights (chi-squared {})",
                format_p(srm.p_value)
            ),
        )),
        Ok(srm) if srm.status == SrmStatus::Warning => Ok(format!(
            "the traffic split is slightly off the configured weights (chi-squared {}), \
             so check assignment before acting",
            format_p(srm.p_value)
        )),
        Ok(_) | Err(Unavailable::TooFewUsers { .. }) => {
            Ok("traffic split is as configured".to_owned())
        }
        Err(e) => Err(blocked(
            BlockedReason::SplitNotChecked(*e),
            format!("could not be checked ({e})"),
        )),
    }
}

fn not_enough(reason: Unavailable) -> Decision {
    Decision {
        verdict: Verdict::Inconclusive {
            reason: InconclusiveReason::NoEstimate(reason),
        },
        sentence: format!("Not enough data yet: {reason}."),
    }
}

/// A difference in report units: percentage points with one decimal for
/// rates, two decimals for revenue; `unit` appends "points" to rates.
fn amount(metric: Metric, value: f64, unit: bool) -> String {
    match metric {
        Metric::ConversionRate if unit => format!("{} points", rounded(value * 100.0, 1)),
        Metric::ConversionRate => rounded(value * 100.0, 1),
        Metric::RevenuePerUser => rounded(value, 2),
    }
}

/// Rounds to `decimals` places without ever printing "-0.0".
fn rounded(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_owned()
    } else {
        text
    }
}

/// "p = 0.0002", "p = 0.0043", "p = 0.123" or "p < 0.0001".
fn format_p(p: f64) -> String {
    if p < 0.0001 {
        "p < 0.0001".to_owned()
    } else if p < 0.01 {
        format!("p = {}", rounded(p, 4))
    } else {
        format!("p = {}", rounded(p, 3))
    }
}

/// 0.95 → "95", 0.975 → "97.5".
fn format_percent(share: f64) -> String {
    let text = rounded(share * 100.0, 1);
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => text,
    }
}

/// 1234567 → "1,234,567".
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
