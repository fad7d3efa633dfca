use super::*;

use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

/// Textbook 97.5 % quantile of the standard normal (two-sided 95 %), also
/// `statistics.NormalDist().inv_cdf(0.975)` in Python's standard library.
const Z_975: f64 = 1.959_963_984_540_054;

fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "expected {expected} ± {tolerance}, got {actual}"
    );
}

fn arm(users: u64, conversions: u64) -> ArmStats {
    ArmStats {
        users,
        conversions,
        ..ArmStats::default()
    }
}

/// Totals for users given as (pre-period revenue, revenue) pairs.
fn arm_from_users(users: &[(f64, f64)]) -> ArmStats {
    users.iter().fold(ArmStats::default(), |acc, &(x, y)| {
        acc + ArmStats {
            users: 1,
            conversions: u64::from(y > 0.0),
            revenue_sum: y,
            revenue_sq_sum: y * y,
            pre_sum: x,
            pre_sq_sum: x * x,
            pre_cross_sum: x * y,
        }
    })
}

const FIXED: Analysis = Analysis::FixedHorizon;

// ---------------------------------------------------------------- estimates

#[test]
fn wald_interval_matches_hand_calculation() {
    // Control 50/1000 = 5 %, treatment 70/1000 = 7 %.
    // d = 0.07 - 0.05 = 0.02
    // var = 0.05·0.95/1000 + 0.07·0.93/1000 = 0.0000475 + 0.0000651 = 0.0001126
    // se = √0.0001126 = 0.0106113
    // half-width = 1.959964 · 0.0106113 = 0.0207978 → CI (-0.0007978, 0.0407978)
    // z = 0.02 / 0.0106113 = 1.88478; p = 2(1 − Φ(1.88478)) = 0.0594595
    // (Φ from Python's statistics.NormalDist).
    let e = conversion_difference(&arm(1000, 50), &arm(1000, 70), &Settings::default(), FIXED)
        .expect("estimate");
    assert_close(e.difference, 0.02, 1e-12);
    assert_close(e.std_error, 0.010_611_314_7, 1e-9);
    assert_close(e.interval.lower, -0.000_797_794_7, 1e-9);
    assert_close(e.interval.upper, 0.040_797_794_7, 1e-9);
    assert_close(e.interval.half_width() / e.std_error, Z_975, 1e-9);
    assert_close(e.p_value, 0.059_459_466_7, 1e-8);
    assert!(!e.is_significant());
    assert_eq!(e.metric, Metric::ConversionRate);
    assert_eq!(e.cuped_theta, None);
    // Relative lift: 0.02 / 0.05 = 0.4, i.e. 40 % better.
    assert_close(e.relative_lift.expect("control converts"), 0.4, 1e-12);
}

#[test]
fn confidence_level_sets_the_quantile() {
    // 95 % quantile of the standard normal (two-sided 90 %) is 1.644854 from
    // standard tables; NormalDist().inv_cdf(0.95) = 1.6448536269514715.
    let settings = Settings {
        confidence: 0.90,
        ..Settings::default()
    };
    let e =
        conversion_difference(&arm(1000, 50), &arm(1000, 70), &settings, FIXED).expect("estimate");
    assert_close(
        e.interval.half_width() / e.std_error,
        1.644_853_626_951_471_5,
        1e-9,
    );
    assert!(e.is_significant(), "p = 0.0595 < 0.10");
    assert!(e.p_value < 0.10);
}

#[test]
fn welch_interval_matches_hand_calculation() {
    // Control revenue 1, 2, 3, 4: mean 2.5, sample variance 5/3.
    // Treatment revenue 2, 3, 4, 7: mean 4, sample variance (4+1+0+9)/3 = 14/3.
    // se = √(5/12 + 14/12) = √(19/12) = 1.2583057; d = 1.5
    // half-width = 1.959964 · 1.2583057 = 2.4662339
    // z = 1.5 / 1.2583057 = 1.19208; p = 2(1 − Φ(1.19208)) = 0.2332302 (NormalDist).
    let control = arm_from_users(&[(0.0, 1.0), (0.0, 2.0), (0.0, 3.0), (0.0, 4.0)]);
    let treatment = arm_from_users(&[(0.0, 2.0), (0.0, 3.0), (0.0, 4.0), (0.0, 7.0)]);
    let e =
        revenue_difference(&control, &treatment, &Settings::default(), FIXED).expect("estimate");
    assert_close(e.difference, 1.5, 1e-12);
    assert_close(e.std_error, (19.0_f64 / 12.0).sqrt(), 1e-12);
    assert_close(e.interval.lower, 1.5 - 2.466_233_930_4, 1e-9);
    assert_close(e.interval.upper, 1.5 + 2.466_233_930_4, 1e-9);
    assert_close(e.p_value, 0.233_230_222_8, 1e-8);
    assert_close(e.relative_lift.expect("non-zero control"), 1.5 / 2.5, 1e-12);
    assert_eq!(e.metric, Metric::RevenuePerUser);
}

#[test]
fn relative_lift_is_absent_when_control_is_zero() {
    let e = conversion_difference(&arm(1000, 0), &arm(1000, 10), &Settings::default(), FIXED)
        .expect("treatment varies");
    assert_eq!(e.relative_lift, None);
    assert_close(e.difference, 0.01, 1e-12);
}

#[test]
fn degenerate_inputs_say_not_enough_data() {
    let s = Settings::default();
    assert_eq!(
        conversion_difference(&arm(0, 0), &arm(10, 1), &s, FIXED),
        Err(Unavailable::TooFewUsers { users: 0 })
    );
    assert_eq!(
        revenue_difference(&arm(1, 0), &arm(10, 1), &s, Analysis::Sequential),
        Err(Unavailable::TooFewUsers { users: 1 })
    );
    assert_eq!(
        conversion_difference(&arm(500, 0), &arm(500, 0), &s, Analysis::Sequential),
        Err(Unavailable::NoVariance)
    );
    assert_eq!(
        revenue_difference(&arm(500, 0), &arm(500, 0), &s, FIXED),
        Err(Unavailable::NoVariance)
    );
    assert_eq!(
        conversion_difference(&arm(10, 11), &arm(10, 1), &s, FIXED),
        Err(Unavailable::InvalidStats)
    );
    let nan = ArmStats {
        revenue_sum: f64::NAN,
        ..arm(10, 1)
    };
    assert_eq!(
        cuped_revenue_difference(&nan, &arm(10, 1), &s, FIXED),
        Err(Unavailable::InvalidStats)
    );
    for confidence in [0.0, 1.0, f64::NAN] {
        let bad = Settings { confidence, ..s };
        assert_eq!(
            conversion_difference(&arm(100, 5), &arm(100, 7), &bad, FIXED),
            Err(Unavailable::InvalidSettings)
        );
    }
    let bad_tuning = Settings {
        sequential_tuning: 0.0,
        ..s
    };
    assert_eq!(
        conversion_difference(
            &arm(100, 5),
            &arm(100, 7),
            &bad_tuning,
            Analysis::Sequential
        ),
        Err(Unavailable::InvalidSettings)
    );
}

#[test]
fn arm_stats_add_up_and_report_means() {
    let a = ArmStats {
        users: 3,
        conversions: 1,
        revenue_sum: 6.0,
        ..ArmStats::default()
    };
    let b = ArmStats {
        users: 1,
        conversions: 1,
        revenue_sum: 2.0,
        ..ArmStats::default()
    };
    let total = a + b;
    assert_eq!(total.users, 4);
    assert_eq!(total.conversion_rate(), Some(0.5));
    assert_eq!(total.revenue_per_user(), Some(2.0));
    assert_eq!(ArmStats::default().conversion_rate(), None);
    assert_eq!(ArmStats::default().revenue_per_user(), None);
}

// --------------------------------------------------------------- sequential

#[test]
fn sequential_half_width_matches_hand_evaluation_of_growthbook_formula() {
    // Same data as the Wald example: N = 2000, var of the difference 0.0001126.
    // α = 0.05, tuning 5000 (GrowthBook defaults). Evaluated step by step
    // with Python's math module:
    //   −2 ln α              = 5.991464547
    //   ln(−2 ln α + 1)      = 1.944690055
    //   ρ² = (5.991464547 + 1.944690055) / 5000 = 0.001587230920
    //   Nρ² + 1              = 4.174461841
    //   ln(√4.174461841 / α) = 3.710224998
    //   s2 = 0.0001126 · 2000 = 0.2252
    //   half-width = √0.2252 · √(2 · 4.174461841 · 3.710224998 / (2000² · 0.001587230920))
    //              = 0.0331474030
    //   p = √(Nρ² + 1) · exp(−ρ² N z² / (2(Nρ² + 1))) with z = 1.8847806 → 0.52929228
    assert_close(
        sequential_rho(0.05, 5000.0).powi(2),
        0.001_587_230_920,
        1e-12,
    );
    let e = conversion_difference(
        &arm(1000, 50),
        &arm(1000, 70),
        &Settings::default(),
        Analysis::Sequential,
    )
    .expect("estimate");
    assert_eq!(e.analysis, Analysis::Sequential);
    assert_close(e.interval.half_width(), 0.033_147_403_0, 1e-9);
    assert_close(e.difference, 0.02, 1e-12);
    assert_close(e.p_value, 0.529_292_276, 1e-8);
}

#[test]
fn sequential_interval_is_wider_than_fixed_and_shrinks_with_n() {
    let s = Settings::default();
    let mut previous = f64::INFINITY;
    for scale in [1, 4, 16, 64] {
        let (c, t) = (arm(1000 * scale, 50 * scale), arm(1000 * scale, 70 * scale));
        let fixed_e = conversion_difference(&c, &t, &s, FIXED).expect("fixed");
        let seq = conversion_difference(&c, &t, &s, Analysis::Sequential).expect("sequential");
        assert!(seq.interval.half_width() > fixed_e.interval.half_width());
        assert!(seq.p_value > fixed_e.p_value);
        assert!(seq.interval.half_width() < previous, "shrinks as N grows");
        previous = seq.interval.half_width();
    }
}

#[test]
fn sequential_p_value_is_the_alpha_at_which_the_interval_touches_zero() {
    // With ρ fixed, p(z) = α exactly when |d| equals the half-width at α.
    let (alpha, n) = (0.05, 2000.0);
    let rho = sequential_rho(alpha, 5000.0);
    let se = 0.01;
    let half = sequential_half_width(se * se * n, n, alpha, rho);
    assert_close(sequential_p_value(half / se, n, rho), alpha, 1e-12);
    assert!(sequential_p_value(1.01 * half / se, n, rho) < alpha);
    assert!(sequential_p_value(0.99 * half / se, n, rho) > alpha);
    assert_close(sequential_p_value(0.0, n, rho), 1.0, 0.0);

    // On real estimates: significant exactly when p < α.
    for treated in [60, 70, 80, 90, 100] {
        let e = conversion_difference(
            &arm(4000, 200),
            &arm(4000, treated * 4),
            &Settings::default(),
            Analysis::Sequential,
        )
        .expect("estimate");
        assert_eq!(
            e.is_significant(),
            e.p_value < 0.05,
            "treated {treated}: p = {}",
            e.p_value
        );
    }
}

// ----------------------------------------------------------------------- SRM

#[test]
fn srm_classification_follows_chi_squared_tables() {
    // 20,000 users at 50/50: expected 10,000 each, statistic = 2d²/10,000.
    // Standard tables, df 1: 10.828 at p = 0.001, 6.635 at p = 0.01.
    // Cross-check: for df 1, p = 2(1 − Φ(√x)) (NormalDist).
    let cases = [
        (10_233, 9_767, 10.8578, 0.000_983_805, SrmStatus::Mismatch),
        (10_232, 9_768, 10.7648, 0.001_034_487, SrmStatus::Warning),
        (10_183, 9_817, 6.6978, 0.009_653_195, SrmStatus::Warning),
        (10_182, 9_818, 6.6248, 0.010_056_844, SrmStatus::Ok),
        (10_000, 10_000, 0.0, 1.0, SrmStatus::Ok),
    ];
    for (a, b, statistic, p, status) in cases {
        let srm = sample_ratio_mismatch(&[a, b], &[50.0, 50.0]).expect("valid");
        assert_close(srm.statistic, statistic, 1e-9);
        assert_close(srm.p_value, p, 1e-8);
        assert_eq!(srm.status, status, "{a}/{b}");
        assert_eq!(srm.degrees_of_freedom, 1);
    }
}

#[test]
fn srm_includes_a_holdout_arm() {
    // Weights 45/45/10 over 10,000 users: expected 4,500 / 4,500 / 1,000.
    // Observed 4,400 / 4,500 / 1,100: 100²/4500 + 0 + 100²/1000 = 12.2222.
    // For df 2 the chi-squared survival function is exactly exp(−x/2) = 0.0022181.
    let srm = sample_ratio_mismatch(&[4_400, 4_500, 1_100], &[0.45, 0.45, 0.10]).expect("valid");
    assert_close(srm.statistic, 12.222_222_222, 1e-8);
    assert_close(srm.p_value, (-srm.statistic / 2.0).exp(), 1e-10);
    assert_close(srm.p_value, 0.002_218_085, 1e-8);
    assert_eq!(srm.degrees_of_freedom, 2);
    assert_eq!(srm.status, SrmStatus::Warning);
}

#[test]
fn srm_rejects_bad_configuration() {
    assert_eq!(
        sample_ratio_mismatch(&[10, 10], &[1.0]),
        Err(Unavailable::InvalidWeights)
    );
    assert_eq!(
        sample_ratio_mismatch(&[10], &[1.0]),
        Err(Unavailable::InvalidWeights)
    );
    assert_eq!(
        sample_ratio_mismatch(&[10, 10], &[1.0, 0.0]),
        Err(Unavailable::InvalidWeights)
    );
    assert_eq!(
        sample_ratio_mismatch(&[10, 10], &[1.0, f64::NAN]),
        Err(Unavailable::InvalidWeights)
    );
    assert_eq!(
        sample_ratio_mismatch(&[0, 0], &[1.0, 1.0]),
        Err(Unavailable::TooFewUsers { users: 0 })
    );
}

// --------------------------------------------------------------------- CUPED

fn cuped_example() -> (ArmStats, ArmStats) {
    (
        arm_from_users(&[(0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (3.0, 4.0)]),
        arm_from_users(&[(0.0, 2.0), (2.0, 3.0), (4.0, 7.0), (1.0, 1.0)]),
    )
}

#[test]
fn cuped_matches_hand_calculation() {
    // Pairs (pre-period x, revenue y).
    // Control:   (0,1) (1,2) (2,4) (3,4): x̄ = 1.5, ȳ = 2.75, Sxx = 5,  Sxy = 5.5
    // Treatment: (0,2) (2,3) (4,7) (1,1): x̄ = 1.75, ȳ = 3.25, Sxx = 8.75, Sxy = 12.25
    // θ = (5.5 + 12.25) / (5 + 8.75) = 17.75 / 13.75 = 1.2909091; pooled x̄ = 13/8 = 1.625
    // adjusted control   = 2.75 − θ(1.5 − 1.625)  = 2.9113636
    // adjusted treatment = 3.25 − θ(1.75 − 1.625) = 3.0886364
    // Sample variance of y − θx, listed per user and computed directly in Python:
    //   control 0.2940771, treatment 1.2347107 (plain: 2.25 and 6.9166667)
    // se = √(0.2940771/4 + 1.2347107/4) = 0.6182208; half-width = 1.959964 · se = 1.2116905.
    let (control, treatment) = cuped_example();
    let e = cuped_revenue_difference(&control, &treatment, &Settings::default(), FIXED)
        .expect("estimate");
    assert_close(e.cuped_theta.expect("adjusted"), 17.75 / 13.75, 1e-12);
    assert_close(e.control_mean, 2.911_363_636_4, 1e-9);
    assert_close(e.treatment_mean, 3.088_636_363_6, 1e-9);
    assert_close(e.difference, 0.177_272_727_3, 1e-9);
    assert_close(e.std_error, 0.618_220_809_8, 1e-9);
    assert_close(e.interval.half_width(), 1.211_690_521_7, 1e-9);
    assert_close(e.p_value, 0.774_306_338_7, 1e-8);

    let plain =
        revenue_difference(&control, &treatment, &Settings::default(), FIXED).expect("plain");
    assert!(e.std_error < plain.std_error);
    let dispatched = estimate(
        Metric::RevenuePerUser,
        &control,
        &treatment,
        &Settings::default(),
        FIXED,
    );
    assert_eq!(dispatched, Ok(e));
}

#[test]
fn cuped_falls_back_without_covariate_variance() {
    let control = arm_from_users(&[(0.0, 1.0), (0.0, 2.0), (0.0, 3.0), (0.0, 4.0)]);
    let treatment = arm_from_users(&[(0.0, 2.0), (0.0, 3.0), (0.0, 4.0), (0.0, 7.0)]);
    for analysis in [FIXED, Analysis::Sequential] {
        let plain = revenue_difference(&control, &treatment, &Settings::default(), analysis);
        let cuped = cuped_revenue_difference(&control, &treatment, &Settings::default(), analysis);
        assert_eq!(cuped, plain);
        assert_eq!(cuped.expect("estimate").cuped_theta, None);
    }
    // A constant non-zero covariate carries no information either.
    let constant = |a: ArmStats| ArmStats {
        pre_sum: 5.0 * count(a.users),
        pre_sq_sum: 25.0 * count(a.users),
        pre_cross_sum: 5.0 * a.revenue_sum,
        ..a
    };
    let cuped = cuped_revenue_difference(
        &constant(control),
        &constant(treatment),
        &Settings::default(),
        FIXED,
    );
    assert_eq!(cuped.expect("estimate").cuped_theta, None);
}

#[test]
fn cuped_narrows_the_interval_on_correlated_data() {
    // Revenue = pre-period revenue X ~ U(0, 10) (variance 100/12) plus
    // noise U(−2.5, 2.5) (variance 25/12), so ρ² = (100/12) / (125/12) = 0.8
    // and the CUPED standard error should be √(1 − ρ²) = √0.2 ≈ 0.447 of the
    // plain one; θ should be the true slope 1.
    let mut rng = StdRng::seed_from_u64(7);
    let mut arms = [ArmStats::default(); 2];
    for (i, arm) in arms.iter_mut().enumerate() {
        let lift = if i == 1 { 0.5 } else { 0.0 };
        for _ in 0..2000 {
            let x: f64 = 10.0 * rng.random::<f64>();
            let y = x + lift + 5.0 * (rng.random::<f64>() - 0.5);
            *arm += arm_from_users(&[(x, y)]);
        }
    }
    let s = Settings::default();
    let plain = revenue_difference(&arms[0], &arms[1], &s, Analysis::Sequential).expect("plain");
    let cuped =
        cuped_revenue_difference(&arms[0], &arms[1], &s, Analysis::Sequential).expect("cuped");
    let ratio = cuped.std_error / plain.std_error;
    assert!((0.40..0.50).contains(&ratio), "ratio {ratio}");
    assert_close(cuped.cuped_theta.expect("adjusted"), 1.0, 0.05);
    assert!(cuped.interval.half_width() < plain.interval.half_width());
}

// ------------------------------------------------------------------- verdict

fn srm_ok() -> Result<SrmResult, Unavailable> {
    sample_ratio_mismatch(&[10_000, 10_000], &[1.0, 1.0])
}

fn verdict_for(
    control: &ArmStats,
    treatment: &ArmStats,
    srm: &Result<SrmResult, Unavailable>,
    primary: &Result<Estimate, Unavailable>,
) -> Decision {
    decide(&VerdictInput {
        control_name: "A",
        treatment_name: "B",
        control,
        treatment,
        srm,
        min_users_per_arm: 1000,
        primary,
    })
}

#[test]
fn verdict_names_a_winner_in_points() {
    let (c, t) = (arm(10_000, 500), arm(10_000, 710));
    let primary = conversion_difference(&c, &t, &Settings::default(), Analysis::Sequential);
    let d = verdict_for(&c, &t, &srm_ok(), &primary);
    assert_eq!(
        d.verdict,
        Verdict::Winner {
            arm: "B".to_owned()
        }
    );
    // d = 2.1 points; var = 0.05·0.95/10⁴ + 0.071·0.929/10⁴; the sequential
    // half-width from the formula (evaluated in Python, N = 20,000) is 0.010533
    // → CI 1.047 to 3.153 points, shown as 1.0 to 3.2.
    assert_eq!(
        d.sentence,
        "Variant B converts 2.1 points better than A (95 % CI 1.0 to 3.2); \
         this holds however often you look; traffic split is as configured."
    );
}

#[test]
fn verdict_names_a_loser_and_mentions_a_split_warning() {
    let (c, t) = (arm(10_000, 710), arm(10_000, 500));
    let primary = conversion_difference(&c, &t, &Settings::default(), Analysis::Sequential);
    let srm = sample_ratio_mismatch(&[10_183, 9_817], &[1.0, 1.0]);
    let d = verdict_for(&c, &t, &srm, &primary);
    assert_eq!(
        d.verdict,
        Verdict::Loser {
            arm: "B".to_owned()
        }
    );
    assert_eq!(
        d.sentence,
        "Variant B converts 2.1 points worse than A (95 % CI 1.0 to 3.2 worse); \
         this holds however often you look; the traffic split is slightly off the configured \
         weights (chi-squared p = 0.0097), so check assignment before acting."
    );
}

#[test]
fn verdict_on_revenue_and_fixed_horizon_says_so() {
    let (c, t) = cuped_example();
    let settings = Settings {
        confidence: 0.5,
        ..Settings::default()
    };
    let mut primary = revenue_difference(&c, &t, &settings, FIXED);
    if let Ok(e) = primary.as_mut() {
        // Force a clear result without touching the wording logic.
        e.interval = Interval {
            lower: 0.104,
            upper: 0.7449,
        };
        e.difference = 0.42;
    }
    let d = decide(&VerdictInput {
        control_name: "A",
        treatment_name: "B",
        control: &c,
        treatment: &t,
        srm: &srm_ok(),
        min_users_per_arm: 2,
        primary: &primary,
    });
    assert_eq!(
        d.sentence,
        "Variant B earns 0.42 more revenue per user than A (50 % CI 0.10 to 0.74); \
         this is valid for a single look at the planned sample size; traffic split is as configured."
    );
}

#[test]
fn verdict_is_blocked_by_sample_ratio_mismatch() {
    let (c, t) = (arm(10_000, 500), arm(10_000, 710));
    let primary = conversion_difference(&c, &t, &Settings::default(), Analysis::Sequential);
    // 10,260 / 9,740: statistic 2·260²/10,000 = 13.52, p = 2(1 − Φ(3.677)) = 0.000236.
    let srm = sample_ratio_mismatch(&[10_260, 9_740], &[1.0, 1.0]);
    let d = verdict_for(&c, &t, &srm, &primary);
    assert!(matches!(
        d.verdict,
        Verdict::Blocked { reason: BlockedReason::SampleRatioMismatch { p_value } } if (p_value - 0.000_236).abs() < 1e-5
    ));
    assert_eq!(
        d.sentence,
        "No verdict: the traffic split does not match the configured weights \
         (chi-squared p = 0.0002), so the comparison is not trustworthy."
    );
    let broken = sample_ratio_mismatch(&[1, 1], &[1.0, -1.0]);
    let d = verdict_for(&c, &t, &broken, &primary);
    assert_eq!(
        d.verdict,
        Verdict::Blocked {
            reason: BlockedReason::SplitNotChecked(Unavailable::InvalidWeights)
        }
    );
    assert_eq!(
        d.sentence,
        "No verdict: the traffic split could not be checked (the configured weights are invalid), \
         so the comparison is not trustworthy."
    );
}

#[test]
fn verdict_waits_for_the_minimum_sample() {
    let (c, t) = (arm(412, 20), arm(430, 40));
    let primary = conversion_difference(&c, &t, &Settings::default(), Analysis::Sequential);
    let srm = sample_ratio_mismatch(&[412, 430], &[1.0, 1.0]);
    let d = verdict_for(&c, &t, &srm, &primary);
    assert_eq!(
        d.verdict,
        Verdict::Inconclusive {
            reason: InconclusiveReason::NotEnoughUsers {
                smallest_arm: 412,
                required: 1000
            }
        }
    );
    assert_eq!(
        d.sentence,
        "Not enough data yet: 412 of 1,000 users per variant."
    );

    // No users at all: the split cannot be checked yet, which is not a block.
    let empty = ArmStats::default();
    let primary = conversion_difference(&empty, &empty, &Settings::default(), Analysis::Sequential);
    let d = verdict_for(
        &empty,
        &empty,
        &sample_ratio_mismatch(&[0, 0], &[1.0, 1.0]),
        &primary,
    );
    assert_eq!(
        d.sentence,
        "Not enough data yet: 0 of 1,000 users per variant."
    );
}

#[test]
fn verdict_without_estimate_or_difference_is_inconclusive() {
    let (c, t) = (arm(2000, 0), arm(2000, 0));
    let primary = conversion_difference(&c, &t, &Settings::default(), Analysis::Sequential);
    let d = verdict_for(&c, &t, &srm_ok(), &primary);
    assert_eq!(
        d.verdict,
        Verdict::Inconclusive {
            reason: InconclusiveReason::NoEstimate(Unavailable::NoVariance)
        }
    );
    assert_eq!(
        d.sentence,
        "Not enough data yet: the metric has shown no variation so far."
    );

    let (c, t) = (arm(2000, 100), arm(2000, 106));
    let primary = conversion_difference(&c, &t, &Settings::default(), Analysis::Sequential);
    let d = verdict_for(&c, &t, &srm_ok(), &primary);
    assert_eq!(
        d.verdict,
        Verdict::Inconclusive {
            reason: InconclusiveReason::NoClearDifference
        }
    );
    // d = 0.3 points; sequential half-width 2.12 points (formula in Python, N = 4,000)
    // → CI -1.8 to 2.4.
    assert!(
        d.sentence
            .starts_with("No clear difference yet: B minus A is 0.3 points (95 % CI -"),
        "{}",
        d.sentence
    );
    assert!(!d.sentence.contains("NaN"));

    let nan = primary.map(|e| Estimate {
        difference: f64::NAN,
        ..e
    });
    let d = verdict_for(&c, &t, &srm_ok(), &nan);
    assert_eq!(
        d.verdict,
        Verdict::Inconclusive {
            reason: InconclusiveReason::NoEstimate(Unavailable::InvalidStats)
        }
    );
}

#[test]
fn number_formatting_is_plain() {
    assert_eq!(group_thousands(0), "0");
    assert_eq!(group_thousands(999), "999");
    assert_eq!(group_thousands(1000), "1,000");
    assert_eq!(group_thousands(1_234_567), "1,234,567");
    assert_eq!(rounded(-0.04, 1), "0.0");
    assert_eq!(rounded(-0.06, 1), "-0.1");
    assert_eq!(format_p(0.000_04), "p < 0.0001");
    assert_eq!(format_p(0.004_3), "p = 0.0043");
    assert_eq!(format_p(0.123_4), "p = 0.123");
    assert_eq!(format_percent(0.95), "95");
    assert_eq!(format_percent(0.975), "97.5");
    assert_eq!(
        Unavailable::TooFewUsers { users: 1 }.to_string(),
        "1 user in the smallest variant"
    );
}

// --------------------------------------------------------------- simulation

/// Number of successes in `n` Bernoulli(`p`) trials, one draw per user.
fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    (0..n).map(|_| u64::from(rng.random::<f64>() < p)).sum()
}

/// Outcome of repeatedly looking at simulated experiments.
struct Looks {
    sequential_rejections: u32,
    naive_rejections: u32,
}

/// Runs `runs` experiments whose users arrive in `batches` equal batches of
/// `batch` users per arm; after every batch both tests look at the data.
/// Counts runs where any look rejected "no difference" at α = 0.05.
fn simulate(
    seed: u64,
    runs: u32,
    batches: u32,
    batch: u64,
    p_control: f64,
    p_treatment: f64,
) -> Looks {
    let mut rng = StdRng::seed_from_u64(seed);
    let settings = Settings::default();
    let mut looks = Looks {
        sequential_rejections: 0,
        naive_rejections: 0,
    };
    for _ in 0..runs {
        let (mut control, mut treatment) = (ArmStats::default(), ArmStats::default());
        let (mut sequential_hit, mut naive_hit) = (false, false);
        for _ in 0..batches {
            control += arm(batch, binomial(&mut rng, batch, p_control));
            treatment += arm(batch, binomial(&mut rng, batch, p_treatment));
            if let Ok(e) =
                conversion_difference(&control, &treatment, &settings, Analysis::Sequential)
            {
                sequential_hit |= e.is_significant();
            }
            if let Ok(e) = conversion_difference(&control, &treatment, &settings, FIXED) {
                naive_hit |= e.p_value < 0.05;
            }
        }
        looks.sequential_rejections += u32::from(sequential_hit);
        looks.naive_rejections += u32::from(naive_hit);
    }
    looks
}

#[test]
fn simulated_aa_tests_keep_false_positives_at_alpha_under_peeking() {
    // 2,000 A/A experiments at 5 %, 4,000 users per arm in 20 batches of 200,
    // looked at after every batch.
    let runs = 2000;
    let looks = simulate(2024, runs, 20, 200, 0.05, 0.05);
    let sequential = f64::from(looks.sequential_rejections) / f64::from(runs);
    let naive = f64::from(looks.naive_rejections) / f64::from(runs);
    eprintln!("A/A: sequential false-positive rate {sequential:.3}, naive peeking {naive:.3}");
    // Binomial standard error of a 5 % rate over 2,000 runs: √(0.05·0.95/2000) = 0.0049.
    let tolerance = 3.0 * (0.05 * 0.95 / f64::from(runs)).sqrt();
    assert!(
        sequential <= 0.05 + tolerance,
        "sequential FPR {sequential}"
    );
    // Twenty looks with a fixed-horizon test reject far more often than 5 %.
    assert!(naive > 0.10, "naive FPR {naive}");
}

#[test]
fn simulated_lift_is_detected_by_the_sequential_test() {
    // 400 experiments, 5 % against 6.5 %, 10,000 users per arm in 20 batches.
    // Measured with this seed: 0.968 (binomial sd ≈ 0.009); the floor is 4 sd below.
    let runs = 400;
    let looks = simulate(99, runs, 20, 500, 0.05, 0.065);
    let power = f64::from(looks.sequential_rejections) / f64::from(runs);
    eprintln!("5 % vs 6.5 %: sequential power {power:.3}");
    assert!(power >= 0.93, "power {power}");
}

#[test]
fn simulated_srm_fires_rarely_on_a_correct_split_and_reliably_on_a_skewed_one() {
    // Correct 50/50 split of 20,000 users: each user is one fair random bit,
    // so the first arm's count is the number of ones in 20,000 random bits.
    let mut rng = StdRng::seed_from_u64(5);
    let runs = 50_000;
    let mut fired = 0_u32;
    for _ in 0..runs {
        let ones: u32 = (0..312).map(|_| rng.next_u64().count_ones()).sum::<u32>()
            + (rng.next_u64() >> 32).count_ones();
        let a = u64::from(ones);
        let srm = sample_ratio_mismatch(&[a, 20_000 - a], &[50.0, 50.0]).expect("valid");
        fired += u32::from(srm.status == SrmStatus::Mismatch);
    }
    let null_rate = f64::from(fired) / f64::from(runs);
    // Expected 0.1 %: 50 of 50,000, binomial sd √50 ≈ 7; allow ±4 sd.
    assert!(
        (0.000_44..=0.001_56).contains(&null_rate),
        "null rate {null_rate}"
    );

    // Actual split 50/47 over 20,000 users: arm A expects 20,000·50/97 = 10,309
    // (sd 70.7); the flag needs |A − 10,000| > 232.7 (statistic > 10.828), so by
    // the normal approximation it fires with probability Φ((10,309 − 10,233)/70.7) ≈ 0.86.
    let skew_runs = 300;
    let mut skew_fired = 0_u32;
    for _ in 0..skew_runs {
        let a = binomial(&mut rng, 20_000, 50.0 / 97.0);
        let srm = sample_ratio_mismatch(&[a, 20_000 - a], &[50.0, 50.0]).expect("valid");
        skew_fired += u32::from(srm.status == SrmStatus::Mismatch);
    }
    let skew_rate = f64::from(skew_fired) / f64::from(skew_runs);
    eprintln!("SRM: correct split flags {null_rate:.5}, 50/47 split flags {skew_rate:.3}");
    assert!(skew_rate >= 0.80, "skew rate {skew_rate}");
}
