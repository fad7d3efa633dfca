//! The campaign report: per arm (each variant, the holdout) and in total, what the campaign reached
//! and what it brought in under the attribution rule, with the experiment's statistics
//! ([`crate::domain::stats`]) and a verdict in words.

use std::collections::BTreeMap;

use socialops_proto::campaign::v1::{
    ArmReport, CampaignReport, Comparison, RuleCount, TenantReport,
};

use crate::domain::stats::{
    self, Analysis, ArmStats, Decision, Estimate, Metric, Settings, SrmResult, SrmStatus,
    Unavailable, Verdict, VerdictInput,
};
use crate::engine::Engine;
use crate::error::CampaignError;
use crate::store::attribution::{self, ArmKey, ArmTotals};
use crate::store::{campaigns, tenants};

/// Users each arm needs before the report gives a verdict, unless the campaign's experiment sets
/// its own minimum.
pub const MIN_USERS_PER_ARM: u64 = 100;

impl Engine {
    /// Rolls out the winner of every running experiment with `auto_rollout` that has one: the
    /// sequential test on conversion rate finds a variant better than the first (or the first
    /// better than every other), every variant has the minimum users, and the campaign has run the
    /// minimum duration. Returns how many were rolled out.
    pub async fn check_rollouts(&self) -> Result<u64, CampaignError> {
        let candidates = {
            let mut conn = self.store.db().pool().acquire().await?;
            campaigns::running_undecided(&mut conn).await?
        };
        let now_us = self.clock.now_us();
        let mut rolled_out = 0;
        for campaign in candidates {
            let Some(experiment) = campaign.spec.experiment.as_ref().filter(|e| e.auto_rollout)
            else {
                continue;
            };
            let (tenant_id, campaign_id) = (&campaign.tenant_id, &campaign.campaign_id);
            let started_us = {
                let mut conn = self.store.db().pool().acquire().await?;
                campaigns::transitions(&mut conn, tenant_id, campaign_id)
                    .await?
                    .iter()
                    .find(|t| t.to == "running")
                    .map_or(campaign.created_at_us, |t| t.at_us)
            };
            let min_duration_us =
                i64::try_from(experiment.min_duration.as_micros()).unwrap_or(i64::MAX);
            if now_us.saturating_sub(started_us) < min_duration_us {
                continue;
            }
            let report = self.campaign_report(tenant_id, campaign_id).await?;
            let Some((winner, reason)) =
                winner(&campaign.spec, experiment.min_users_per_arm, &report)
            else {
                continue;
            };
            let mut tx = self.store.db().begin_write().await?;
            if campaigns::roll_out(&mut tx, tenant_id, campaign_id, &winner, &reason, now_us)
                .await?
            {
                rolled_out += 1;
                tracing::info!(tenant_id, campaign_id, winner, "experiment rolled out");
            }
            tx.commit().await?;
        }
        Ok(rolled_out)
    }

    /// Over all the tenant's campaigns: the users sent to against the global control group.
    pub async fn tenant_report(&self, tenant_id: &str) -> Result<TenantReport, CampaignError> {
        let settings = {
            let mut conn = self.store.db().pool().acquire().await?;
            tenants::settings(&mut conn, tenant_id).await?
        };
        let (treated, control, _) = attribution::tenant_totals(self.store.db(), tenant_id).await?;
        // The control group's share is the tenant's setting; the split is not a randomised one
        // between these two groups of users, so it is not checked.
        let srm = Err(Unavailable::TooFewUsers { users: 0 });
        let lift = compare(
            "control",
            "treated",
            &arm_stats(&control),
            &arm_stats(&treated),
            &srm,
            MIN_USERS_PER_ARM,
        );
        let treated = arm_report("treated", false, &treated, false);
        let control = arm_report("control", false, &control, false);
        let summary = format!(
            "{} users were sent to, {} held back by the global control group. {} of the first \
             converted ({:.1} %), {} of the second ({:.1} %). {}",
            treated.audience,
            control.audience,
            treated.converted,
            treated.conversion_rate * 100.0,
            control.converted,
            control.conversion_rate * 100.0,
            lift.first().map_or("", |c| c.sentence.as_str()),
        );
        Ok(TenantReport {
            attribution: attribution_rule(settings.attribution_window),
            treated: Some(treated),
            control: Some(control),
            lift,
            summary,
        })
    }

    pub async fn campaign_report(
        &self,
        tenant_id: &str,
        campaign_id: &str,
    ) -> Result<CampaignReport, CampaignError> {
        let campaign = self.campaign(tenant_id, campaign_id).await?;
        let settings = {
            let mut conn = self.store.db().pool().acquire().await?;
            tenants::settings(&mut conn, tenant_id).await?
        };
        let mut totals =
            attribution::campaign_totals(self.store.db(), tenant_id, campaign_id).await?;
        let spec = &campaign.spec;
        for variant in &spec.variants {
            totals.entry((false, variant.id.clone())).or_default();
        }
        if spec.holdout > 0.0 {
            let first = spec
                .variants
                .first()
                .map(|v| v.id.clone())
                .unwrap_or_default();
            if !totals.keys().any(|(holdout, _)| *holdout) {
                totals.insert((true, first), ArmTotals::default());
            }
        }
        let platform = spec.channel == crate::domain::campaign::Channel::Platform;
        let holdout = merge_holdout(&totals);
        let variants: Vec<(&str, u32)> = spec
            .variants
            .iter()
            .map(|v| (v.id.as_str(), v.weight))
            .collect();
        let srm = match campaign.rolled_out_at_us {
            None => sample_ratio(&variants, spec.holdout, &totals, holdout.as_ref()),
            Some(at_us) => {
                let before =
                    attribution::audience_before(self.store.db(), tenant_id, campaign_id, at_us)
                        .await?;
                let mut split: BTreeMap<ArmKey, ArmTotals> = BTreeMap::new();
                let mut held_out = ArmTotals::default();
                for ((is_holdout, variant), n) in before {
                    if is_holdout {
                        held_out.audience += n;
                    } else {
                        split.entry((false, variant)).or_default().audience = n;
                    }
                }
                let holdout_before = holdout.as_ref().map(|_| held_out);
                sample_ratio(&variants, spec.holdout, &split, holdout_before.as_ref())
            }
        };
        let mut arms = Vec::new();
        let mut total = ArmTotals::default();
        for (id, _) in &variants {
            let arm = totals
                .get(&(false, (*id).to_owned()))
                .cloned()
                .unwrap_or_default();
            add(&mut total, &arm);
            arms.push(arm_report(id, false, &arm, platform));
        }
        if let Some(holdout) = &holdout {
            arms.push(arm_report("holdout", true, holdout, platform));
        }
        let min_users = spec
            .experiment
            .as_ref()
            .map_or(MIN_USERS_PER_ARM, |e| e.min_users_per_arm);
        let mut comparisons = Vec::new();
        if let Some((control_id, _)) = variants.first() {
            let control = arm_stats(&totals[&(false, (*control_id).to_owned())]);
            for (id, _) in variants.iter().skip(1) {
                let treatment = arm_stats(&totals[&(false, (*id).to_owned())]);
                comparisons.extend(compare(
                    control_id, id, &control, &treatment, &srm, min_users,
                ));
            }
        }
        if let Some(holdout) = &holdout {
            let control = arm_stats(holdout);
            for (id, _) in &variants {
                let treatment = arm_stats(&totals[&(false, (*id).to_owned())]);
                comparisons.extend(compare(
                    "holdout", id, &control, &treatment, &srm, min_users,
                ));
            }
        }
        let attribution_rule = attribution_rule(settings.attribution_window);
        let total_report = arm_report("total", false, &total, platform);
        let held_out = holdout.as_ref().map_or(0, |h| h.audience);
        let summary = summary(&total_report, held_out, &comparisons);
        let (srm_p_value, srm_status) = match &srm {
            Ok(result) => (
                result.p_value,
                match result.status {
                    SrmStatus::Ok => "ok",
                    SrmStatus::Warning => "warning",
                    SrmStatus::Mismatch => "mismatch",
                }
                .to_owned(),
            ),
            Err(_) => (0.0, String::new()),
        };
        Ok(CampaignReport {
            campaign_id: campaign_id.to_owned(),
            attribution: attribution_rule,
            arms,
            total: Some(total_report),
            comparisons,
            srm_p_value,
            srm_status,
            summary,
        })
    }
}

/// An arm's totals as the statistics take them: users are the arm's audience.
fn arm_stats(arm: &ArmTotals) -> ArmStats {
    ArmStats {
        users: arm.audience,
        conversions: arm.converted_users,
        revenue_sum: arm.revenue_cents as f64,
        revenue_sq_sum: arm.revenue_sq_sum,
        ..ArmStats::default()
    }
}

/// The holdout over all its variant assignments: holdout users get nothing, whichever variant
/// they would have seen.
fn merge_holdout(totals: &BTreeMap<ArmKey, ArmTotals>) -> Option<ArmTotals> {
    let mut merged: Option<ArmTotals> = None;
    for ((holdout, _), arm) in totals {
        if *holdout {
            add(merged.get_or_insert_with(ArmTotals::default), arm);
        }
    }
    merged
}

fn add(into: &mut ArmTotals, arm: &ArmTotals) {
    into.audience += arm.audience;
    into.sent += arm.sent;
    into.sent_users += arm.sent_users;
    for (rule, n) in &arm.held {
        match into.held.iter_mut().find(|(r, _)| r == rule) {
            Some((_, total)) => *total += n,
            None => into.held.push((rule.clone(), *n)),
        }
    }
    into.impressed_users += arm.impressed_users;
    into.clicked_users += arm.clicked_users;
    into.converted_users += arm.converted_users;
    into.orders += arm.orders;
    into.first_orders += arm.first_orders;
    into.repeat_buyers += arm.repeat_buyers;
    into.revenue_cents += arm.revenue_cents;
    into.revenue_sq_sum += arm.revenue_sq_sum;
    into.coupon_cost_cents += arm.coupon_cost_cents;
}

/// The audience per arm against the configured split: each variant its weight's share of the
/// non-held-out part, the holdout its share.
fn sample_ratio(
    variants: &[(&str, u32)],
    holdout_share: f64,
    totals: &BTreeMap<ArmKey, ArmTotals>,
    holdout: Option<&ArmTotals>,
) -> Result<SrmResult, Unavailable> {
    let sum: f64 = variants.iter().map(|(_, w)| f64::from(*w)).sum();
    let mut observed = Vec::new();
    let mut weights = Vec::new();
    for (id, weight) in variants {
        observed.push(
            totals
                .get(&(false, (*id).to_owned()))
                .map_or(0, |a| a.audience),
        );
        let share = if sum > 0.0 {
            f64::from(*weight) / sum
        } else {
            1.0 / variants.len() as f64
        };
        weights.push((1.0 - holdout_share) * share);
    }
    if let Some(holdout) = holdout
        && holdout_share > 0.0
    {
        observed.push(holdout.audience);
        weights.push(holdout_share);
    }
    stats::sample_ratio_mismatch(&observed, &weights)
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn arm_report(id: &str, holdout: bool, arm: &ArmTotals, platform: bool) -> ArmReport {
    let exposed = if holdout {
        0
    } else if platform {
        arm.impressed_users
    } else {
        arm.sent_users
    };
    ArmReport {
        variant_id: id.to_owned(),
        holdout,
        audience: arm.audience,
        sent: arm.sent,
        held: arm
            .held
            .iter()
            .map(|(rule, n)| RuleCount {
                rule: rule.clone(),
                num_sends: *n,
            })
            .collect(),
        exposed,
        clicked: arm.clicked_users,
        click_through: ratio(arm.clicked_users, exposed),
        converted: arm.converted_users,
        conversion_rate: ratio(arm.converted_users, arm.audience),
        first_orders: arm.first_orders,
        repeat_buyers: arm.repeat_buyers,
        orders: arm.orders,
        revenue_cents: arm.revenue_cents,
        revenue_per_user_cents: if arm.audience == 0 {
            0.0
        } else {
            arm.revenue_cents as f64 / arm.audience as f64
        },
        coupon_cost_cents: arm.coupon_cost_cents,
    }
}

/// Conversion rate (the primary metric, which the verdict reads) and revenue per user.
fn compare(
    control_name: &str,
    treatment_name: &str,
    control: &ArmStats,
    treatment: &ArmStats,
    srm: &Result<SrmResult, Unavailable>,
    min_users_per_arm: u64,
) -> Vec<Comparison> {
    let settings = Settings::default();
    [Metric::ConversionRate, Metric::RevenuePerUser]
        .into_iter()
        .map(|metric| {
            let fixed = stats::estimate(
                metric,
                control,
                treatment,
                &settings,
                Analysis::FixedHorizon,
            );
            let sequential =
                stats::estimate(metric, control, treatment, &settings, Analysis::Sequential);
            let decision = stats::decide(&VerdictInput {
                control_name,
                treatment_name,
                control,
                treatment,
                srm,
                min_users_per_arm,
                primary: &sequential,
            });
            comparison(
                metric,
                control_name,
                treatment_name,
                &fixed,
                &sequential,
                decision,
            )
        })
        .collect()
}

fn comparison(
    metric: Metric,
    control: &str,
    treatment: &str,
    fixed: &Result<Estimate, Unavailable>,
    sequential: &Result<Estimate, Unavailable>,
    decision: Decision,
) -> Comparison {
    let mut out = Comparison {
        control: control.to_owned(),
        treatment: treatment.to_owned(),
        metric: match metric {
            Metric::ConversionRate => "conversion_rate",
            Metric::RevenuePerUser => "revenue_per_user",
        }
        .to_owned(),
        verdict: match decision.verdict {
            Verdict::Winner { .. } => "winner",
            Verdict::Loser { .. } => "loser",
            Verdict::Inconclusive { .. } => "inconclusive",
            Verdict::Blocked { .. } => "blocked",
        }
        .to_owned(),
        sentence: decision.sentence,
        ..Comparison::default()
    };
    match fixed {
        Ok(e) => {
            out.control_value = e.control_mean;
            out.treatment_value = e.treatment_mean;
            out.difference = e.difference;
            out.lower = e.interval.lower;
            out.upper = e.interval.upper;
            out.p_value = e.p_value;
        }
        Err(why) => out.unavailable = why.to_string(),
    }
    if let Ok(e) = sequential {
        out.sequential_lower = e.interval.lower;
        out.sequential_upper = e.interval.upper;
        out.sequential_p_value = e.p_value;
    }
    out
}

fn summary(total: &ArmReport, held_out: u64, comparisons: &[Comparison]) -> String {
    let held: u64 = total.held.iter().map(|r| r.num_sends).sum();
    let mut text = format!(
        "{} users entered ({held_out} held out); {} sends went out and {held} were held back by \
         rules. Of those not held out, {} converted ({:.1} %), revenue {}.",
        total.audience + held_out,
        total.sent,
        total.converted,
        total.conversion_rate * 100.0,
        money(total.revenue_cents),
    );
    if total.coupon_cost_cents > 0 {
        text.push_str(&format!(
            " Coupons cost {}.",
            money(total.coupon_cost_cents)
        ));
    }
    for comparison in comparisons.iter().filter(|c| c.metric == "conversion_rate") {
        text.push(' ');
        text.push_str(&comparison.sentence);
    }
    text
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

/// The variant to roll out and why, in words, or `None` while the experiment has no winner.
fn winner(
    spec: &crate::domain::definition::CampaignSpec,
    min_users: u64,
    report: &CampaignReport,
) -> Option<(String, String)> {
    let control = spec.variants.first()?.id.as_str();
    let arms_ready = spec.variants.iter().all(|v| {
        report
            .arms
            .iter()
            .any(|a| !a.holdout && a.variant_id == v.id && a.audience >= min_users)
    });
    if !arms_ready {
        return None;
    }
    let against_control: Vec<&Comparison> = report
        .comparisons
        .iter()
        .filter(|c| c.control == control && c.metric == "conversion_rate")
        .collect();
    if against_control.is_empty() {
        return None;
    }
    let best = against_control
        .iter()
        .filter(|c| c.verdict == "winner")
        .max_by(|a, b| a.difference.total_cmp(&b.difference));
    let (winner, sentences) = match best {
        Some(best) => (best.treatment.clone(), best.sentence.clone()),
        None if against_control.iter().all(|c| c.verdict == "loser") => (
            control.to_owned(),
            against_control
                .iter()
                .map(|c| c.sentence.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        None => return None,
    };
    Some((
        winner.clone(),
        format!("{sentences} Rolled out: every new entrant gets variant {winner}."),
    ))
}

fn attribution_rule(window: std::time::Duration) -> String {
    format!(
        "last touch across campaigns: an order within {} after a send (on the platform channel, \
         after its impression), a holdout entry or a send the global control group held back is \
         credited to that touch; revenue is net of refunds",
        humantime::format_duration(window)
    )
}
