//! What the funnel, RFM distribution and audience KPIs read: the stage-transition log, RFM edges,
//! daily counters, activity days and KPI targets.

use std::collections::{BTreeMap, HashMap};

use socialops_storage::Row;
use socialops_storage::rows::{ColumnType, Rows};
use sqlx::AnyConnection;

use crate::domain::RfmEdges;
use crate::error::SegmentationError;

/// One logged stage transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRow {
    pub profile_id: String,
    pub from_stage: i64,
    pub to_stage: i64,
    pub at_us: i64,
    pub cause: i64,
}

pub async fn log_transitions(
    conn: &mut AnyConnection,
    tenant_id: &str,
    transitions: &[TransitionRow],
) -> Result<(), SegmentationError> {
    let mut rows = Rows::new(&[
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Int,
        ColumnType::Int,
        ColumnType::Int,
        ColumnType::Int,
    ]);
    for t in transitions {
        rows.push(tenant_id)
            .push(t.profile_id.as_str())
            .push(t.from_stage)
            .push(t.to_stage)
            .push(t.at_us)
            .push(t.cause);
    }
    rows.insert(
        conn,
        "INSERT INTO stage_transitions (tenant_id, profile_id, from_stage, to_stage, at_us, cause) ",
        "",
    )
    .await?;
    Ok(())
}

/// Profiles per stage code.
pub async fn stage_counts(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<BTreeMap<i64, i64>, SegmentationError> {
    let rows =
        sqlx::query("SELECT stage, COUNT(*) FROM profiles WHERE tenant_id = $1 GROUP BY stage")
            .bind(tenant_id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Transitions in `[from_us, to_us)`, counted per (from, to) stage code.
pub async fn transition_counts(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<BTreeMap<(i64, i64), i64>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT from_stage, to_stage, COUNT(*) FROM stage_transitions \
         WHERE tenant_id = $1 AND at_us >= $2 AND at_us < $3 GROUP BY from_stage, to_stage",
    )
    .bind(tenant_id)
    .bind(from_us)
    .bind(to_us)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok(((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?)))
        .collect()
}

/// Profiles per (R, F, M) and per tier code, over scored profiles.
pub struct RfmCounts {
    pub cells: Vec<([i64; 3], i64)>,
    pub tiers: Vec<(i64, i64)>,
}

pub async fn rfm_counts(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<RfmCounts, SegmentationError> {
    let cells = sqlx::query(
        "SELECT rfm_r, rfm_f, rfm_m, COUNT(*) FROM profiles WHERE tenant_id = $1 \
         AND rfm_r IS NOT NULL GROUP BY rfm_r, rfm_f, rfm_m ORDER BY rfm_r, rfm_f, rfm_m",
    )
    .bind(tenant_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok((
            [row.try_get(0)?, row.try_get(1)?, row.try_get(2)?],
            row.try_get(3)?,
        ))
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let tiers = sqlx::query(
        "SELECT tier, COUNT(*) FROM profiles WHERE tenant_id = $1 GROUP BY tier ORDER BY tier",
    )
    .bind(tenant_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(RfmCounts { cells, tiers })
}

/// A tenant's stored RFM edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEdges {
    pub edges: RfmEdges,
    pub window_days: i64,
    pub num_buyers: i64,
    pub computed_at_us: i64,
}

fn encode_edges(edges: [i64; 4]) -> String {
    edges.map(|e| e.to_string()).join(",")
}

fn decode_edges(text: &str) -> Result<[i64; 4], SegmentationError> {
    let corrupt = || SegmentationError::Corrupt(format!("rfm edges `{text}`"));
    let values: Vec<i64> = text
        .split(',')
        .map(|v| v.parse().map_err(|_| corrupt()))
        .collect::<Result<_, _>>()?;
    values.try_into().map_err(|_| corrupt())
}

/// Stores the tenant's edges and when they were computed; `edges` is `None` when the tenant has no
/// buyers yet, which still counts as a computation.
pub async fn put_edges(
    conn: &mut AnyConnection,
    tenant_id: &str,
    edges: Option<&StoredEdges>,
    computed_at_us: i64,
) -> Result<(), SegmentationError> {
    let encoded = edges.map(|e| {
        (
            encode_edges(e.edges.recency_days_edges()),
            encode_edges(e.edges.frequency_edges()),
            encode_edges(e.edges.monetary_edges()),
        )
    });
    sqlx::query(
        "INSERT INTO tenants (tenant_id, rfm_recency_days, rfm_frequency, rfm_monetary_cents, \
         rfm_window_days, rfm_num_buyers, rfm_computed_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id) DO UPDATE SET rfm_recency_days = excluded.rfm_recency_days, \
         rfm_frequency = excluded.rfm_frequency, rfm_monetary_cents = excluded.rfm_monetary_cents, \
         rfm_window_days = excluded.rfm_window_days, rfm_num_buyers = excluded.rfm_num_buyers, \
         rfm_computed_at_us = excluded.rfm_computed_at_us",
    )
    .bind(tenant_id)
    .bind(encoded.as_ref().map(|e| e.0.clone()))
    .bind(encoded.as_ref().map(|e| e.1.clone()))
    .bind(encoded.as_ref().map(|e| e.2.clone()))
    .bind(edges.map(|e| e.window_days))
    .bind(edges.map(|e| e.num_buyers))
    .bind(computed_at_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn edges(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<StoredEdges>, SegmentationError> {
    let row = sqlx::query(
        "SELECT rfm_recency_days, rfm_frequency, rfm_monetary_cents, rfm_window_days, \
         rfm_num_buyers, rfm_computed_at_us FROM tenants WHERE tenant_id = $1 \
         AND rfm_recency_days IS NOT NULL",
    )
    .bind(tenant_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(StoredEdges {
        edges: RfmEdges::from_edges(
            decode_edges(&row.try_get::<String, _>(0)?)?,
            decode_edges(&row.try_get::<String, _>(1)?)?,
            decode_edges(&row.try_get::<String, _>(2)?)?,
        ),
        window_days: row.try_get(3)?,
        num_buyers: row.try_get(4)?,
        computed_at_us: row.try_get(5)?,
    }))
}

/// The tenants whose RFM edges were computed before `due_before_us`, or never.
pub async fn tenants_due_for_rfm(
    conn: &mut AnyConnection,
    due_before_us: i64,
) -> Result<Vec<String>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT tenant_id FROM tenants WHERE rfm_computed_at_us IS NULL \
         OR rfm_computed_at_us <= $1 ORDER BY tenant_id",
    )
    .bind(due_before_us)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// One tenant-local day's audience counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyCounts {
    pub new_followers: i64,
    pub unfollows: i64,
    pub interactions: i64,
    pub impressions: i64,
}

pub async fn add_daily(
    conn: &mut AnyConnection,
    tenant_id: &str,
    days: &BTreeMap<i64, DailyCounts>,
) -> Result<(), SegmentationError> {
    for (day, c) in days {
        sqlx::query(
            "INSERT INTO audience_daily (tenant_id, day, new_followers, unfollows, interactions, \
             impressions) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, day) DO UPDATE SET \
             new_followers = audience_daily.new_followers + excluded.new_followers, \
             unfollows = audience_daily.unfollows + excluded.unfollows, \
             interactions = audience_daily.interactions + excluded.interactions, \
             impressions = audience_daily.impressions + excluded.impressions",
        )
        .bind(tenant_id)
        .bind(*day)
        .bind(c.new_followers)
        .bind(c.unfollows)
        .bind(c.interactions)
        .bind(c.impressions)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn daily(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from_day: i64,
    to_day: i64,
) -> Result<BTreeMap<i64, DailyCounts>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT day, new_followers, unfollows, interactions, impressions FROM audience_daily \
         WHERE tenant_id = $1 AND day >= $2 AND day < $3",
    )
    .bind(tenant_id)
    .bind(from_day)
    .bind(to_day)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                DailyCounts {
                    new_followers: row.try_get(1)?,
                    unfollows: row.try_get(2)?,
                    interactions: row.try_get(3)?,
                    impressions: row.try_get(4)?,
                },
            ))
        })
        .collect()
}

/// Records that each (day, profile) was active.
pub async fn add_active_days(
    conn: &mut AnyConnection,
    tenant_id: &str,
    active: &[(i64, String)],
) -> Result<(), SegmentationError> {
    let mut rows = Rows::new(&[ColumnType::Text, ColumnType::Int, ColumnType::Text]);
    for (day, profile_id) in active {
        rows.push(tenant_id).push(*day).push(profile_id.as_str());
    }
    rows.insert(
        conn,
        "INSERT INTO active_days (tenant_id, day, profile_id) ",
        " ON CONFLICT (tenant_id, day, profile_id) DO NOTHING",
    )
    .await?;
    Ok(())
}

/// Distinct profiles active in `[from_day, to_day)`.
pub async fn active_users(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from_day: i64,
    to_day: i64,
) -> Result<i64, SegmentationError> {
    let row = sqlx::query(
        "SELECT COUNT(DISTINCT profile_id) FROM active_days WHERE tenant_id = $1 AND day >= $2 \
         AND day < $3",
    )
    .bind(tenant_id)
    .bind(from_day)
    .bind(to_day)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get(0)?)
}

/// For profiles first seen in `[from_us, to_us)`: each profile's first-seen time and the days it was
/// active.
pub async fn cohort_activity(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<HashMap<String, (i64, Vec<i64>)>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT p.profile_id, p.first_seen_at_us, a.day FROM profiles p \
         LEFT JOIN active_days a ON a.tenant_id = p.tenant_id AND a.profile_id = p.profile_id \
         WHERE p.tenant_id = $1 AND p.first_seen_at_us >= $2 AND p.first_seen_at_us < $3",
    )
    .bind(tenant_id)
    .bind(from_us)
    .bind(to_us)
    .fetch_all(&mut *conn)
    .await?;
    let mut cohort: HashMap<String, (i64, Vec<i64>)> = HashMap::new();
    for row in rows {
        let entry = cohort
            .entry(row.try_get(0)?)
            .or_insert_with(|| (row.try_get(1).unwrap_or_default(), Vec::new()));
        if let Some(day) = row.try_get::<Option<i64>, _>(2)? {
            entry.1.push(day);
        }
    }
    Ok(cohort)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiTargetRow {
    pub target_id: String,
    pub name: String,
    pub metric: i64,
    pub value: i64,
    pub start_us: i64,
    pub end_us: i64,
}

pub async fn put_target(
    conn: &mut AnyConnection,
    tenant_id: &str,
    target: &KpiTargetRow,
) -> Result<(), SegmentationError> {
    sqlx::query(
        "INSERT INTO kpi_targets (tenant_id, target_id, name, metric, value, start_us, end_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, target_id) DO UPDATE SET \
         name = excluded.name, metric = excluded.metric, value = excluded.value, \
         start_us = excluded.start_us, end_us = excluded.end_us",
    )
    .bind(tenant_id)
    .bind(target.target_id.as_str())
    .bind(target.name.as_str())
    .bind(target.metric)
    .bind(target.value)
    .bind(target.start_us)
    .bind(target.end_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn targets(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<KpiTargetRow>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT target_id, name, metric, value, start_us, end_us FROM kpi_targets \
         WHERE tenant_id = $1 ORDER BY start_us, target_id",
    )
    .bind(tenant_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(KpiTargetRow {
                target_id: row.try_get(0)?,
                name: row.try_get(1)?,
                metric: row.try_get(2)?,
                value: row.try_get(3)?,
                start_us: row.try_get(4)?,
                end_us: row.try_get(5)?,
            })
        })
        .collect()
}

pub async fn delete_target(
    conn: &mut AnyConnection,
    tenant_id: &str,
    target_id: &str,
) -> Result<bool, SegmentationError> {
    let deleted = sqlx::query("DELETE FROM kpi_targets WHERE tenant_id = $1 AND target_id = $2")
        .bind(tenant_id)
        .bind(target_id)
        .execute(&mut *conn)
        .await?;
    Ok(deleted.rows_affected() > 0)
}
