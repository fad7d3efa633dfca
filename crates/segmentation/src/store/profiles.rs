//! Profiles, their aliases and the processed-event keys.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use socialops_storage::{Backend, Row, SqlText};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::domain::state::ProfileState;
use crate::domain::{Order, RfmScore, Stage, ValueTier};
use crate::error::SegmentationError;

/// SQLite allows 32,766 bound parameters per statement, PostgreSQL 65,535.
pub(crate) const MAX_PARAMS: usize = 30_000;
const PROFILE_COLUMNS: usize = 19;

pub(crate) const PROFILE_SELECT: &str = "SELECT profile_id, stage, tier, rfm_r, rfm_f, rfm_m, following, \
     orders_count, orders_total_cents, refunded_cents, first_seen_at_us, last_seen_at_us, \
     last_interaction_at_us, first_order_at_us, last_order_at_us, next_check_at_us, doc, tenant_id \
     FROM profiles";

/// What `doc` holds: the parts of a profile nothing queries by.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Doc {
    #[serde(default)]
    counts: BTreeMap<String, u64>,
    #[serde(default)]
    platforms: BTreeSet<String>,
    #[serde(default)]
    tags: BTreeSet<String>,
    /// (order id, placed at, amount, refunded)
    #[serde(default)]
    orders: Vec<(String, i64, i64, i64)>,
    #[serde(default)]
    bought: BTreeSet<String>,
    #[serde(default)]
    clicked: BTreeSet<String>,
    #[serde(default)]
    hours: Vec<u64>,
    #[serde(default)]
    merged: Vec<String>,
}

/// A profile as stored: its state and when the clock next changes it.
#[derive(Debug, Clone)]
pub struct StoredProfile {
    pub state: ProfileState,
    pub next_check_at_us: Option<i64>,
}

pub fn stage_code(stage: Stage) -> i64 {
    match stage {
        Stage::Potential => 1,
        Stage::New => 2,
        Stage::Active => 3,
        Stage::Loyal => 4,
        Stage::Churned => 5,
    }
}

pub fn stage_from_code(code: i64) -> Stage {
    match code {
        2 => Stage::New,
        3 => Stage::Active,
        4 => Stage::Loyal,
        5 => Stage::Churned,
        _ => Stage::Potential,
    }
}

pub fn tier_code(tier: ValueTier) -> i64 {
    match tier {
        ValueTier::Unscored => 1,
        ValueTier::LowValue => 2,
        ValueTier::Regular => 3,
        ValueTier::PotentialHighValue => 4,
        ValueTier::HighValue => 5,
    }
}

pub fn tier_from_code(code: i64) -> ValueTier {
    match code {
        2 => ValueTier::LowValue,
        3 => ValueTier::Regular,
        4 => ValueTier::PotentialHighValue,
        5 => ValueTier::HighValue,
        _ => ValueTier::Unscored,
    }
}

pub(crate) fn decode_profile(row: &AnyRow) -> Result<StoredProfile, SegmentationError> {
    let doc: String = row.try_get(16)?;
    let doc: Doc =
        serde_json::from_str(&doc).map_err(|e| SegmentationError::Corrupt(e.to_string()))?;
    let rfm = match (
        row.try_get::<Option<i64>, _>(3)?,
        row.try_get::<Option<i64>, _>(4)?,
        row.try_get::<Option<i64>, _>(5)?,
    ) {
        (Some(r), Some(f), Some(m)) => Some(RfmScore {
            recency: r as u8,
            frequency: f as u8,
            monetary: m as u8,
        }),
        _ => None,
    };
    let mut state = ProfileState::new(
        &row.try_get::<String, _>(17)?,
        &row.try_get::<String, _>(0)?,
    );
    let p = &mut state.profile;
    p.stage = stage_from_code(row.try_get(1)?);
    p.tier = tier_from_code(row.try_get(2)?);
    p.rfm = rfm;
    p.following = row.try_get::<i64, _>(6)? != 0;
    p.orders_count = row.try_get::<i64, _>(7)?.max(0) as u64;
    p.orders_total_cents = row.try_get(8)?;
    p.refunded_cents = row.try_get(9)?;
    p.first_seen_at_us = row.try_get(10)?;
    p.last_seen_at_us = row.try_get(11)?;
    p.last_interaction_at_us = row.try_get(12)?;
    p.first_order_at_us = row.try_get(13)?;
    p.last_order_at_us = row.try_get(14)?;
    p.counts = doc.counts;
    p.platforms = doc.platforms;
    p.tags = doc.tags;
    for (id, at_us, amount_cents, refunded_cents) in doc.orders {
        state.order_ids.push(id);
        p.orders.push(Order {
            at_us,
            amount_cents,
            refunded_cents,
        });
    }
    state.categories_bought = doc.bought;
    state.categories_clicked = doc.clicked;
    for (hour, n) in doc.hours.into_iter().take(24).enumerate() {
        state.active_hours[hour] = n;
    }
    state.merged_user_ids = doc.merged;
    Ok(StoredProfile {
        state,
        next_check_at_us: row.try_get(15)?,
    })
}

fn encode_doc(state: &ProfileState) -> String {
    let p = &state.profile;
    let doc = Doc {
        counts: p.counts.clone(),
        platforms: p.platforms.clone(),
        tags: p.tags.clone(),
        orders: state
            .order_ids
            .iter()
            .zip(&p.orders)
            .map(|(id, o)| (id.clone(), o.at_us, o.amount_cents, o.refunded_cents))
            .collect(),
        bought: state.categories_bought.clone(),
        clicked: state.categories_clicked.clone(),
        hours: state.active_hours.to_vec(),
        merged: state.merged_user_ids.clone(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

/// Appends ` IN (…)` with `n` placeholders.
pub(crate) fn push_in(sql: &mut SqlText, n: usize) {
    sql.push(" IN (");
    for i in 0..n {
        if i > 0 {
            sql.push(",");
        }
        sql.param();
    }
    sql.push(")");
}

/// Records `(tenant, event id)` pairs as processed and returns those that were not processed before.
pub async fn mark_processed(
    conn: &mut AnyConnection,
    keys: &[(&str, &str)],
) -> Result<HashSet<(String, String)>, SegmentationError> {
    let backend = Backend::of(conn);
    let mut new = HashSet::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_PARAMS / 2) {
        let mut sql = SqlText::new(
            backend,
            "INSERT INTO processed_events (tenant_id, event_id) VALUES ",
        );
        sql.value_rows(chunk.len(), 2)
            .push(" ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING tenant_id, event_id");
        let mut query = sqlx::query(sql.into_sql());
        for (tenant, event_id) in chunk {
            query = query.bind(*tenant).bind(*event_id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            new.insert((row.try_get(0)?, row.try_get(1)?));
        }
    }
    Ok(new)
}

/// The profile each alias points to, for those that exist.
pub async fn resolve_aliases(
    conn: &mut AnyConnection,
    tenant_id: &str,
    aliases: &[String],
) -> Result<HashMap<String, String>, SegmentationError> {
    let backend = Backend::of(conn);
    let mut found = HashMap::with_capacity(aliases.len());
    for chunk in aliases.chunks(MAX_PARAMS) {
        let mut sql = SqlText::new(
            backend,
            "SELECT alias, profile_id FROM aliases WHERE tenant_id = ",
        );
        sql.param().push(" AND alias");
        push_in(&mut sql, chunk.len());
        let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
        for alias in chunk {
            query = query.bind(alias.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(found)
}

/// Points `alias` at `profile_id`, replacing what it pointed at before.
pub async fn put_aliases(
    conn: &mut AnyConnection,
    tenant_id: &str,
    aliases: &[(String, String)],
) -> Result<(), SegmentationError> {
    let backend = Backend::of(conn);
    for chunk in aliases.chunks(MAX_PARAMS / 3) {
        let mut sql = SqlText::new(
            backend,
            "INSERT INTO aliases (tenant_id, alias, profile_id) VALUES ",
        );
        sql.value_rows(chunk.len(), 3)
            .push(" ON CONFLICT (tenant_id, alias) DO UPDATE SET profile_id = excluded.profile_id");
        let mut query = sqlx::query(sql.into_sql());
        for (alias, profile_id) in chunk {
            query = query
                .bind(tenant_id)
                .bind(alias.as_str())
                .bind(profile_id.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Loads the named profiles that exist, locked for update until the transaction ends.
pub async fn load_profiles(
    conn: &mut AnyConnection,
    tenant_id: &str,
    profile_ids: &[String],
) -> Result<HashMap<String, StoredProfile>, SegmentationError> {
    let backend = Backend::of(conn);
    let mut found = HashMap::with_capacity(profile_ids.len());
    for chunk in profile_ids.chunks(MAX_PARAMS) {
        let mut sql = SqlText::new(backend, PROFILE_SELECT);
        sql.push(" WHERE tenant_id = ")
            .param()
            .push(" AND profile_id");
        push_in(&mut sql, chunk.len());
        if backend == Backend::Postgres {
            // The sweep and the event consumer both read, change and write profiles: the row lock
            // makes the second wait instead of overwriting the first. Locking in id order keeps two
            // of them from deadlocking. SQLite has a single writer.
            sql.push(" ORDER BY profile_id FOR UPDATE");
        }
        let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let stored = decode_profile(&row)?;
            found.insert(stored.state.profile.user_id.clone(), stored);
        }
    }
    Ok(found)
}

/// Inserts or replaces the profiles.
pub async fn save_profiles(
    conn: &mut AnyConnection,
    profiles: &[&StoredProfile],
    now_us: i64,
) -> Result<(), SegmentationError> {
    let backend = Backend::of(conn);
    for chunk in profiles.chunks(MAX_PARAMS / PROFILE_COLUMNS) {
        let mut sql = SqlText::new(
            backend,
            "INSERT INTO profiles (tenant_id, profile_id, stage, tier, rfm_r, rfm_f, rfm_m, following, \
             orders_count, orders_total_cents, refunded_cents, first_seen_at_us, last_seen_at_us, \
             last_interaction_at_us, first_order_at_us, last_order_at_us, next_check_at_us, \
             updated_at_us, doc) VALUES ",
        );
        sql.value_rows(chunk.len(), PROFILE_COLUMNS).push(
            " ON CONFLICT (tenant_id, profile_id) DO UPDATE SET stage = excluded.stage, \
             tier = excluded.tier, rfm_r = excluded.rfm_r, rfm_f = excluded.rfm_f, \
             rfm_m = excluded.rfm_m, following = excluded.following, \
             orders_count = excluded.orders_count, orders_total_cents = excluded.orders_total_cents, \
             refunded_cents = excluded.refunded_cents, first_seen_at_us = excluded.first_seen_at_us, \
             last_seen_at_us = excluded.last_seen_at_us, \
             last_interaction_at_us = excluded.last_interaction_at_us, \
             first_order_at_us = excluded.first_order_at_us, \
             last_order_at_us = excluded.last_order_at_us, \
             next_check_at_us = excluded.next_check_at_us, updated_at_us = excluded.updated_at_us, \
             doc = excluded.doc",
        );
        let mut query = sqlx::query(sql.into_sql());
        for stored in chunk {
            let p = &stored.state.profile;
            let score = |f: fn(&RfmScore) -> u8| p.rfm.as_ref().map(|s| i64::from(f(s)));
            query = query
                .bind(p.tenant_id.as_str())
                .bind(p.user_id.as_str())
                .bind(stage_code(p.stage))
                .bind(tier_code(p.tier))
                .bind(score(|s| s.recency))
                .bind(score(|s| s.frequency))
                .bind(score(|s| s.monetary))
                .bind(i64::from(p.following))
                .bind(p.orders_count as i64)
                .bind(p.orders_total_cents)
                .bind(p.refunded_cents)
                .bind(p.first_seen_at_us)
                .bind(p.last_seen_at_us)
                .bind(p.last_interaction_at_us)
                .bind(p.first_order_at_us)
                .bind(p.last_order_at_us)
                .bind(stored.next_check_at_us)
                .bind(now_us)
                .bind(encode_doc(&stored.state));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes a profile and everything keyed by it: aliases, tags, memberships (returned, so the caller
/// can announce or count them), activity days and its transition log.
pub async fn delete_profile(
    conn: &mut AnyConnection,
    tenant_id: &str,
    profile_id: &str,
    keep_aliases: bool,
) -> Result<Vec<String>, SegmentationError> {
    let memberships: Vec<String> = sqlx::query(
        "DELETE FROM segment_members WHERE tenant_id = $1 AND profile_id = $2 RETURNING segment_id",
    )
    .bind(tenant_id)
    .bind(profile_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| row.try_get(0))
    .collect::<Result<_, _>>()?;
    for segment_id in &memberships {
        sqlx::query("UPDATE segments SET size = size - 1 WHERE tenant_id = $1 AND segment_id = $2")
            .bind(tenant_id)
            .bind(segment_id.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let mut statements = vec![
        "DELETE FROM profiles WHERE tenant_id = $1 AND profile_id = $2",
        "DELETE FROM profile_tags WHERE tenant_id = $1 AND profile_id = $2",
        "DELETE FROM active_days WHERE tenant_id = $1 AND profile_id = $2",
        "DELETE FROM stage_transitions WHERE tenant_id = $1 AND profile_id = $2",
    ];
    if !keep_aliases {
        statements.push("DELETE FROM aliases WHERE tenant_id = $1 AND profile_id = $2");
    }
    for statement in statements {
        sqlx::query(statement)
            .bind(tenant_id)
            .bind(profile_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(memberships)
}

/// Moves what is keyed by `from` to `into` when two profiles merge: aliases, the transition log and
/// activity days.
pub async fn repoint(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from: &str,
    into: &str,
) -> Result<(), SegmentationError> {
    sqlx::query("UPDATE aliases SET profile_id = $1 WHERE tenant_id = $2 AND profile_id = $3")
        .bind(into)
        .bind(tenant_id)
        .bind(from)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE stage_transitions SET profile_id = $1 WHERE tenant_id = $2 AND profile_id = $3",
    )
    .bind(into)
    .bind(tenant_id)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO active_days (tenant_id, day, profile_id) \
         SELECT tenant_id, day, $1 FROM active_days WHERE tenant_id = $2 AND profile_id = $3 \
         ON CONFLICT (tenant_id, day, profile_id) DO NOTHING",
    )
    .bind(into)
    .bind(tenant_id)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Up to `limit` profiles whose next clock-driven change is due at `now_us`, as (tenant, profile).
pub async fn due_profiles(
    conn: &mut AnyConnection,
    now_us: i64,
    limit: usize,
) -> Result<Vec<(String, String)>, SegmentationError> {
    let rows = sqlx::query(
        "SELECT tenant_id, profile_id FROM profiles WHERE next_check_at_us <= $1 \
         ORDER BY next_check_at_us LIMIT $2",
    )
    .bind(now_us)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}
