//! Profiles, their orders and aliases, the processed-event keys and erasure tombstones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use socialops_storage::rows::{ColumnType, Rows};
use socialops_storage::{Backend, Row, SqlText};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::domain::state::ProfileState;
use crate::domain::{EVENT_TYPES, Order, PLATFORMS, RfmScore, Stage, ValueTier};
use crate::error::SegmentationError;

/// SQLite allows 32,766 bound parameters per statement, PostgreSQL 65,535.
pub(crate) const MAX_PARAMS: usize = 30_000;

/// The scalar columns, in the order [`decode_profile`] reads them; then one `count_<type>` column per
/// event type, then `doc`.
const SCALAR_COLUMNS: [&str; 18] = [
    "tenant_id",
    "profile_id",
    "stage",
    "tier",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "following",
    "platforms",
    "orders_count",
    "orders_total_cents",
    "refunded_cents",
    "first_seen_at_us",
    "last_seen_at_us",
    "last_interaction_at_us",
    "first_order_at_us",
    "last_order_at_us",
    "next_check_at_us",
];
const DOC_INDEX: usize = SCALAR_COLUMNS.len() + EVENT_TYPES.len();

/// The column counting events of `event_type`, which must be one of [`EVENT_TYPES`].
pub(crate) fn count_column(event_type: &str) -> Option<String> {
    EVENT_TYPES
        .contains(&event_type)
        .then(|| format!("count_{event_type}"))
}

fn read_columns() -> Vec<String> {
    SCALAR_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(EVENT_TYPES.iter().map(|t| format!("count_{t}")))
        .chain(["doc".to_owned()])
        .collect()
}

pub(crate) static PROFILE_SELECT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM profiles", read_columns().join(", ")));

/// What [`save_profiles`] writes: the columns read plus `updated_at_us`, as column types, the
/// insert's head and its `ON CONFLICT` tail.
static PROFILE_UPSERT: LazyLock<(Vec<ColumnType>, String, String)> = LazyLock::new(|| {
    let mut columns = read_columns();
    columns.push("updated_at_us".to_owned());
    let types = columns
        .iter()
        .map(|c| match c.as_str() {
            "tenant_id" | "profile_id" | "doc" => ColumnType::Text,
            _ => ColumnType::Int,
        })
        .collect();
    let head = format!("INSERT INTO profiles ({}) ", columns.join(", "));
    let updates: Vec<String> = columns[2..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let tail = format!(
        " ON CONFLICT (tenant_id, profile_id) DO UPDATE SET {}",
        updates.join(", ")
    );
    (types, head, tail)
});

/// The bit of `platform` (one of [`PLATFORMS`]) in the `platforms` column.
pub(crate) fn platform_bit(platform: &str) -> Option<i64> {
    PLATFORMS
        .iter()
        .position(|p| *p == platform)
        .map(|i| 1_i64 << i)
}

fn platforms_mask(platforms: &BTreeSet<String>) -> i64 {
    platforms
        .iter()
        .filter_map(|p| platform_bit(p))
        .fold(0, |mask, bit| mask | bit)
}

/// What `doc` holds: the parts of a profile nothing queries by.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Doc {
    #[serde(default)]
    tags: BTreeSet<String>,
    #[serde(default)]
    bought: BTreeSet<String>,
    #[serde(default)]
    clicked: BTreeSet<String>,
    #[serde(default)]
    hours: Vec<u64>,
    #[serde(default)]
    merged: Vec<String>,
}

/// A profile as stored: its state, when the clock next changes its stage, and its orders as last
/// written (id → refunded cents), so that saving writes only new and changed orders.
#[derive(Debug, Clone)]
pub struct StoredProfile {
    pub state: ProfileState,
    pub next_check_at_us: Option<i64>,
    pub saved_orders: HashMap<String, i64>,
}

impl StoredProfile {
    pub fn new(tenant_id: &str, user_id: &str) -> Self {
        Self {
            state: ProfileState::new(tenant_id, user_id),
            next_check_at_us: None,
            saved_orders: HashMap::new(),
        }
    }
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

/// A profile row as selected with [`PROFILE_SELECT`]; its orders are not part of the row (see
/// [`load_profiles`]).
pub(crate) fn decode_profile(row: &AnyRow) -> Result<StoredProfile, SegmentationError> {
    let doc: String = row.try_get(DOC_INDEX)?;
    let doc: Doc =
        serde_json::from_str(&doc).map_err(|e| SegmentationError::Corrupt(e.to_string()))?;
    let rfm = match (
        row.try_get::<Option<i64>, _>(4)?,
        row.try_get::<Option<i64>, _>(5)?,
        row.try_get::<Option<i64>, _>(6)?,
    ) {
        (Some(r), Some(f), Some(m)) => Some(RfmScore {
            recency: r as u8,
            frequency: f as u8,
            monetary: m as u8,
        }),
        _ => None,
    };
    let mut state = ProfileState::new(&row.try_get::<String, _>(0)?, &row.try_get::<String, _>(1)?);
    let p = &mut state.profile;
    p.stage = stage_from_code(row.try_get(2)?);
    p.tier = tier_from_code(row.try_get(3)?);
    p.rfm = rfm;
    p.following = row.try_get::<i64, _>(7)? != 0;
    let mask: i64 = row.try_get(8)?;
    p.platforms = PLATFORMS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, p)| (*p).to_owned())
        .collect();
    p.orders_count = row.try_get::<i64, _>(9)?.max(0) as u64;
    p.orders_total_cents = row.try_get(10)?;
    p.refunded_cents = row.try_get(11)?;
    p.first_seen_at_us = row.try_get(12)?;
    p.last_seen_at_us = row.try_get(13)?;
    p.last_interaction_at_us = row.try_get(14)?;
    p.first_order_at_us = row.try_get(15)?;
    p.last_order_at_us = row.try_get(16)?;
    let next_check_at_us = row.try_get(17)?;
    for (i, event_type) in EVENT_TYPES.iter().enumerate() {
        let n: i64 = row.try_get(SCALAR_COLUMNS.len() + i)?;
        if n > 0 {
            p.counts.insert((*event_type).to_owned(), n as u64);
        }
    }
    p.tags = doc.tags;
    state.categories_bought = doc.bought;
    state.categories_clicked = doc.clicked;
    for (hour, n) in doc.hours.into_iter().take(24).enumerate() {
        state.active_hours[hour] = n;
    }
    state.merged_user_ids = doc.merged;
    Ok(StoredProfile {
        state,
        next_check_at_us,
        saved_orders: HashMap::new(),
    })
}

fn encode_doc(state: &ProfileState) -> String {
    let doc = Doc {
        tags: state.profile.tags.clone(),
        bought: state.categories_bought.clone(),
        clicked: state.categories_clicked.clone(),
        hours: state.active_hours.to_vec(),
        merged: state.merged_user_ids.clone(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

/// Appends ` IN (VALUES (…), …)` with `n` placeholders. A plain `IN (…)` list of parameters becomes
/// an array that PostgreSQL rebuilds for every row it filters when the planner prefers scanning the
/// tenant to probing the key once per value (as it does on stale statistics), which makes the lookup
/// quadratic; a VALUES list is joined instead.
pub(crate) fn push_in(sql: &mut SqlText, n: usize) {
    sql.push(" IN (VALUES ").value_rows(n, 1).push(")");
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

/// Records aliases that were unknown when this transaction looked them up, each pointing at its
/// profile. When another transaction has linked one of them since (another replica or consumer lane
/// handling another user with the same phone, say), this fails with `Conflict` instead of taking
/// the alias over: the batch is retried, sees the alias, and merges the two profiles.
pub async fn insert_new_aliases(
    conn: &mut AnyConnection,
    tenant_id: &str,
    aliases: &[(String, String)],
) -> Result<(), SegmentationError> {
    let mut rows = Rows::new(&[ColumnType::Text; 3]);
    for (alias, profile_id) in aliases {
        rows.push(tenant_id)
            .push(alias.as_str())
            .push(profile_id.as_str());
    }
    let inserted = rows
        .insert(
            conn,
            "INSERT INTO aliases (tenant_id, alias, profile_id) ",
            " ON CONFLICT (tenant_id, alias) DO NOTHING",
        )
        .await?;
    if inserted < rows.len() as u64 {
        return Err(SegmentationError::Conflict(format!(
            "{} of {} new aliases were linked by a concurrent transaction",
            rows.len() as u64 - inserted,
            rows.len()
        )));
    }
    Ok(())
}

/// Loads the named profiles that exist, with their orders, locked for update until the transaction
/// ends.
pub async fn load_profiles(
    conn: &mut AnyConnection,
    tenant_id: &str,
    profile_ids: &[String],
) -> Result<HashMap<String, StoredProfile>, SegmentationError> {
    let backend = Backend::of(conn);
    let mut found = HashMap::with_capacity(profile_ids.len());
    for chunk in profile_ids.chunks(MAX_PARAMS) {
        let mut sql = SqlText::new(backend, &PROFILE_SELECT);
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
    let buyers: Vec<String> = found
        .values()
        .filter(|s| s.state.profile.orders_count > 0)
        .map(|s| s.state.profile.user_id.clone())
        .collect();
    for chunk in buyers.chunks(MAX_PARAMS) {
        let mut sql = SqlText::new(
            backend,
            "SELECT profile_id, order_id, at_us, amount_cents, refunded_cents FROM orders \
             WHERE tenant_id = ",
        );
        sql.param().push(" AND profile_id");
        push_in(&mut sql, chunk.len());
        sql.push(" ORDER BY profile_id, at_us, order_id");
        let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let profile_id: String = row.try_get(0)?;
            let Some(stored) = found.get_mut(&profile_id) else {
                continue;
            };
            let order_id: String = row.try_get(1)?;
            let order = Order {
                at_us: row.try_get(2)?,
                amount_cents: row.try_get(3)?,
                refunded_cents: row.try_get(4)?,
            };
            stored
                .saved_orders
                .insert(order_id.clone(), order.refunded_cents);
            stored.state.order_ids.push(order_id);
            stored.state.profile.orders.push(order);
        }
    }
    Ok(found)
}

/// Inserts or replaces the profiles, and writes their new and changed orders.
pub async fn save_profiles(
    conn: &mut AnyConnection,
    profiles: &[&StoredProfile],
    now_us: i64,
) -> Result<(), SegmentationError> {
    let (types, head, tail) = &*PROFILE_UPSERT;
    let mut rows = Rows::new(types);
    for stored in profiles {
        let p = &stored.state.profile;
        let score = |f: fn(&RfmScore) -> u8| p.rfm.as_ref().map(|s| i64::from(f(s)));
        rows.push(p.tenant_id.as_str())
            .push(p.user_id.as_str())
            .push(stage_code(p.stage))
            .push(tier_code(p.tier))
            .push(score(|s| s.recency))
            .push(score(|s| s.frequency))
            .push(score(|s| s.monetary))
            .push(i64::from(p.following))
            .push(platforms_mask(&p.platforms))
            .push(p.orders_count as i64)
            .push(p.orders_total_cents)
            .push(p.refunded_cents)
            .push(p.first_seen_at_us)
            .push(p.last_seen_at_us)
            .push(p.last_interaction_at_us)
            .push(p.first_order_at_us)
            .push(p.last_order_at_us)
            .push(stored.next_check_at_us);
        for event_type in EVENT_TYPES {
            rows.push(i64::try_from(p.count(event_type)).unwrap_or(i64::MAX));
        }
        rows.push(encode_doc(&stored.state)).push(now_us);
    }
    rows.insert(conn, head, tail).await?;
    save_orders(conn, profiles).await
}

async fn save_orders(
    conn: &mut AnyConnection,
    profiles: &[&StoredProfile],
) -> Result<(), SegmentationError> {
    let mut rows = Rows::new(&[
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Text,
        ColumnType::Int,
        ColumnType::Int,
        ColumnType::Int,
    ]);
    for stored in profiles {
        let p = &stored.state.profile;
        for (id, order) in stored.state.order_ids.iter().zip(&p.orders) {
            if stored.saved_orders.get(id.as_str()) != Some(&order.refunded_cents) {
                rows.push(p.tenant_id.as_str())
                    .push(p.user_id.as_str())
                    .push(id.as_str())
                    .push(order.at_us)
                    .push(order.amount_cents)
                    .push(order.refunded_cents);
            }
        }
    }
    rows.insert(
        conn,
        "INSERT INTO orders (tenant_id, profile_id, order_id, at_us, amount_cents, refunded_cents) ",
        " ON CONFLICT (tenant_id, profile_id, order_id) \
         DO UPDATE SET refunded_cents = excluded.refunded_cents",
    )
    .await?;
    Ok(())
}

/// Removes a profile and everything keyed by it: orders, tags, memberships (keeping segment sizes
/// in step), activity days, its transition log and, unless `keep_aliases`, its aliases.
pub async fn delete_profile(
    conn: &mut AnyConnection,
    tenant_id: &str,
    profile_id: &str,
    keep_aliases: bool,
) -> Result<(), SegmentationError> {
    sqlx::query(
        "UPDATE segments SET size = size - 1 WHERE tenant_id = $1 AND segment_id IN \
         (SELECT segment_id FROM segment_members WHERE tenant_id = $2 AND profile_id = $3)",
    )
    .bind(tenant_id)
    .bind(tenant_id)
    .bind(profile_id)
    .execute(&mut *conn)
    .await?;
    let mut statements = vec![
        "DELETE FROM segment_members WHERE tenant_id = $1 AND profile_id = $2",
        "DELETE FROM profiles WHERE tenant_id = $1 AND profile_id = $2",
        "DELETE FROM orders WHERE tenant_id = $1 AND profile_id = $2",
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
    Ok(())
}

/// Moves what is keyed by `from` to `into` when two profiles merge: aliases, the transition log and
/// activity days. Orders and tags move with the merged state.
pub async fn repoint(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from: &str,
    into: &str,
) -> Result<(), SegmentationError> {
    for statement in [
        "UPDATE aliases SET profile_id = $1 WHERE tenant_id = $2 AND profile_id = $3",
        "UPDATE stage_transitions SET profile_id = $1 WHERE tenant_id = $2 AND profile_id = $3",
        "INSERT INTO active_days (tenant_id, day, profile_id) \
         SELECT tenant_id, day, $1 FROM active_days WHERE tenant_id = $2 AND profile_id = $3 \
         ON CONFLICT (tenant_id, day, profile_id) DO NOTHING",
    ] {
        sqlx::query(statement)
            .bind(into)
            .bind(tenant_id)
            .bind(from)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Up to `limit` profiles whose stage the clock changes at or before `now_us`, as (tenant, profile).
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

/// Records an erasure, so that the user's older events still on the topic are ignored.
pub async fn put_erasure(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    erased_at_us: i64,
) -> Result<(), SegmentationError> {
    sqlx::query(
        "INSERT INTO erasures (tenant_id, user_id, erased_at_us) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET erased_at_us = \
         CASE WHEN excluded.erased_at_us > erasures.erased_at_us \
         THEN excluded.erased_at_us ELSE erasures.erased_at_us END",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(erased_at_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// When each of the users was erased, for those that were.
pub async fn erasures(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_ids: &[&str],
) -> Result<BTreeMap<String, i64>, SegmentationError> {
    let backend = Backend::of(conn);
    let mut found = BTreeMap::new();
    for chunk in user_ids.chunks(MAX_PARAMS) {
        let mut sql = SqlText::new(
            backend,
            "SELECT user_id, erased_at_us FROM erasures WHERE tenant_id = ",
        );
        sql.param().push(" AND user_id");
        push_in(&mut sql, chunk.len());
        let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(found)
}
