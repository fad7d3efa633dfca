//! Audience KPIs per period, weekly cohort retention and target progress, and the tag-rule and
//! target wire forms.

use std::collections::BTreeMap;

use socialops_proto::segmentation::v1 as api;

use crate::domain::DAY_US;
use crate::domain::kpi::{self, Period};
use crate::domain::state::{local_day, local_day_start_us};
use crate::error::SegmentationError;
use crate::store::audience::{self, KpiTargetRow};
use crate::store::tags::TagRuleRow;
use crate::update::Updater;
use crate::update::changes::timestamp;

use super::convert::micros;

/// Without `from`, KPIs cover this many days before `to`.
const DEFAULT_SPAN_DAYS: i64 = 28;
/// Retention is reported for at most this many weeks after a cohort's week.
const MAX_RETENTION_WEEKS: i64 = 12;

pub fn tag_rule(row: &TagRuleRow) -> api::TagRule {
    api::TagRule {
        rule_id: row.rule_id.clone(),
        pattern: row.pattern.clone(),
        tag: row.tag.clone(),
        created_at: Some(timestamp(row.created_at_us)),
    }
}

pub fn target(row: &KpiTargetRow) -> api::KpiTarget {
    api::KpiTarget {
        target_id: row.target_id.clone(),
        metric: row.metric as i32,
        value: row.value.max(0) as u64,
        start: Some(timestamp(row.start_us)),
        end: Some(timestamp(row.end_us)),
        name: row.name.clone(),
    }
}

pub async fn set_target(
    updater: &Updater,
    tenant_id: &str,
    request: api::SetKpiTargetRequest,
) -> Result<api::KpiTarget, SegmentationError> {
    let invalid = |m: &str| SegmentationError::InvalidArgument(m.to_owned());
    match api::KpiMetric::try_from(request.metric) {
        Ok(api::KpiMetric::Unspecified) | Err(_) => return Err(invalid("metric: required")),
        Ok(_) => {}
    }
    let start_us = micros(request.start.as_ref()).ok_or_else(|| invalid("start: required"))?;
    let end_us = micros(request.end.as_ref()).ok_or_else(|| invalid("end: required"))?;
    if end_us <= start_us {
        return Err(invalid("end: must be after start"));
    }
    let row = KpiTargetRow {
        target_id: if request.target_id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            request.target_id
        },
        name: request.name,
        metric: i64::from(request.metric),
        value: i64::try_from(request.value).map_err(|_| invalid("value: too large"))?,
        start_us,
        end_us,
    };
    let mut conn = updater.store().conn().await?;
    audience::put_target(&mut conn, tenant_id, &row).await?;
    Ok(target(&row))
}

/// Sums of the daily counters over `[from_day, to_day)`.
fn sum(
    daily: &BTreeMap<i64, audience::DailyCounts>,
    from_day: i64,
    to_day: i64,
) -> audience::DailyCounts {
    daily
        .range(from_day..to_day)
        .fold(audience::DailyCounts::default(), |mut acc, (_, d)| {
            acc.new_followers += d.new_followers;
            acc.unfollows += d.unfollows;
            acc.interactions += d.interactions;
            acc.impressions += d.impressions;
            acc
        })
}

fn rate(c: &audience::DailyCounts) -> f64 {
    if c.impressions > 0 {
        c.interactions as f64 / c.impressions as f64
    } else {
        0.0
    }
}

pub async fn audience_kpis(
    updater: &Updater,
    tenant_id: &str,
    request: &api::GetAudienceKpisRequest,
) -> Result<api::GetAudienceKpisResponse, SegmentationError> {
    let tz = updater.tenant_rules(tenant_id).time_zone;
    let now_us = updater.now_us();
    let to_us = micros(request.to.as_ref()).unwrap_or(now_us);
    let from_us = micros(request.from.as_ref()).unwrap_or(to_us - DEFAULT_SPAN_DAYS * DAY_US);
    if to_us <= from_us {
        return Err(SegmentationError::InvalidArgument(
            "to: must be after from".into(),
        ));
    }
    let period = match api::Period::try_from(request.period) {
        Ok(api::Period::Day) => Period::Day,
        Ok(api::Period::Month) => Period::Month,
        Ok(api::Period::Quarter) => Period::Quarter,
        Ok(api::Period::Week | api::Period::Unspecified) | Err(_) => Period::Week,
    };
    let from_day = local_day(from_us, tz);
    let to_day = local_day(to_us - 1, tz) + 1;
    let targets = {
        let mut conn = updater.store().conn().await?;
        audience::targets(&mut conn, tenant_id).await?
    };
    let first_day = targets
        .iter()
        .map(|t| local_day(t.start_us, tz))
        .fold(from_day, i64::min);
    let last_day = targets
        .iter()
        .map(|t| local_day(t.end_us - 1, tz) + 1)
        .fold(to_day, i64::max);
    let mut conn = updater.store().conn().await?;
    let daily = audience::daily(&mut conn, tenant_id, first_day, last_day).await?;

    let mut response = api::GetAudienceKpisResponse::default();
    for (start, end) in kpi::periods(from_day, to_day, period) {
        let counts = sum(&daily, start, end);
        response.periods.push(api::PeriodKpis {
            start: Some(timestamp(local_day_start_us(start, tz))),
            end: Some(timestamp(local_day_start_us(end, tz))),
            new_followers: counts.new_followers.max(0) as u64,
            unfollows: counts.unfollows.max(0) as u64,
            active_users: audience::active_users(&mut conn, tenant_id, start, end)
                .await?
                .max(0) as u64,
            interactions: counts.interactions.max(0) as u64,
            impressions: counts.impressions.max(0) as u64,
            interaction_rate: rate(&counts),
        });
    }

    let cohort_from = kpi::period_start(from_day, Period::Week);
    let activity = audience::cohort_activity(
        &mut conn,
        tenant_id,
        local_day_start_us(cohort_from, tz),
        to_us,
    )
    .await?;
    let mut cohorts: BTreeMap<i64, Vec<Vec<i64>>> = BTreeMap::new();
    for (first_seen_us, days) in activity.into_values() {
        let week = kpi::period_start(local_day(first_seen_us, tz), Period::Week);
        cohorts.entry(week).or_default().push(days);
    }
    let today = local_day(now_us, tz);
    for (week, members) in cohorts {
        let num_weeks = ((today - week) / 7 + 1).clamp(1, MAX_RETENTION_WEEKS) as usize;
        response.cohorts.push(api::CohortRetention {
            week_start: Some(timestamp(local_day_start_us(week, tz))),
            size: members.len() as u64,
            retention: kpi::weekly_retention(week, &members, num_weeks),
        });
    }

    for row in &targets {
        let start = local_day(row.start_us, tz);
        let until = (local_day(now_us.min(row.end_us - 1), tz) + 1).max(start);
        let counts = sum(&daily, start, until);
        let achieved = match api::KpiMetric::try_from(row.metric as i32) {
            Ok(api::KpiMetric::NewFollowers) => counts.new_followers,
            Ok(api::KpiMetric::Interactions) => counts.interactions,
            Ok(api::KpiMetric::ActiveUsers) => {
                audience::active_users(&mut conn, tenant_id, start, until).await?
            }
            Ok(api::KpiMetric::InteractionRatePpm) => (rate(&counts) * 1e6) as i64,
            Ok(api::KpiMetric::Unspecified) | Err(_) => 0,
        }
        .max(0) as u64;
        let pace = kpi::pace(
            row.value.max(0) as u64,
            achieved,
            row.start_us,
            row.end_us,
            now_us,
        );
        response.targets.push(api::TargetProgress {
            target: Some(target(row)),
            achieved,
            progress: pace.progress,
            required_per_day: if pace.required_per_day.is_finite() {
                pace.required_per_day
            } else {
                0.0
            },
            actual_per_day: pace.actual_per_day,
            on_track: pace.on_track,
        });
    }
    Ok(response)
}
