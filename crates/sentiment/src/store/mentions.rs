//! Mentions (texts that matched a watchlist), their per-bucket counts and each watchlist's counting
//! state.

use std::collections::{BTreeMap, HashMap};

use socialops_storage::{Backend, Row, SqlText};
use sqlx::AnyConnection;

use super::{LabelCounts, ROWS_PER_INSERT, count, label_code, label_from_code};
use crate::domain::Label;
use crate::domain::spike::Counts;
use crate::error::SentimentError;

#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    pub tenant_id: String,
    pub watchlist_id: String,
    pub event_id: String,
    pub user_id: String,
    pub platform: i32,
    pub author: String,
    pub text: String,
    pub polarity: f32,
    pub label: Label,
    pub confidence: f32,
    pub reach: u64,
    pub risk: bool,
    pub occurred_at_us: i64,
}

/// Stores new mentions; a mention already stored (same watchlist and event) is left as it is.
pub async fn insert(conn: &mut AnyConnection, mentions: &[Mention]) -> Result<(), SentimentError> {
    for chunk in mentions.chunks(ROWS_PER_INSERT) {
        let mut sql = SqlText::new(
            Backend::of(conn),
            "INSERT INTO mentions (tenant_id, watchlist_id, event_id, user_id, platform, author, body, \
             polarity, label, confidence, reach, risk, occurred_at_us) VALUES ",
        );
        sql.value_rows(chunk.len(), 13)
            .push(" ON CONFLICT (tenant_id, watchlist_id, event_id) DO NOTHING");
        let mut query = sqlx::query(sql.into_sql());
        for m in chunk {
            query = query
                .bind(m.tenant_id.as_str())
                .bind(m.watchlist_id.as_str())
                .bind(m.event_id.as_str())
                .bind(m.user_id.as_str())
                .bind(i64::from(m.platform))
                .bind(m.author.as_str())
                .bind(m.text.as_str())
                .bind(f64::from(m.polarity))
                .bind(label_code(m.label))
                .bind(f64::from(m.confidence))
                .bind(count(m.reach))
                .bind(i64::from(m.risk))
                .bind(m.occurred_at_us);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Adds mentions to their buckets (`(tenant, watchlist, bucket start)`), and records each watchlist's
/// first bucket.
pub async fn add_to_buckets(
    conn: &mut AnyConnection,
    buckets: &BTreeMap<(String, String, i64), LabelCounts>,
) -> Result<(), SentimentError> {
    let rows: Vec<_> = buckets.iter().collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = SqlText::new(
            Backend::of(conn),
            "INSERT INTO mention_buckets (tenant_id, watchlist_id, bucket_us, negative, neutral, positive) VALUES ",
        );
        sql.value_rows(chunk.len(), 6).push(
            " ON CONFLICT (tenant_id, watchlist_id, bucket_us) DO UPDATE SET \
             negative = mention_buckets.negative + excluded.negative, \
             neutral = mention_buckets.neutral + excluded.neutral, \
             positive = mention_buckets.positive + excluded.positive",
        );
        let mut query = sqlx::query(sql.into_sql());
        for ((tenant, watchlist, bucket), c) in chunk {
            query = query
                .bind(tenant.as_str())
                .bind(watchlist.as_str())
                .bind(*bucket)
                .bind(count(c.negative))
                .bind(count(c.neutral))
                .bind(count(c.positive));
        }
        query.execute(&mut *conn).await?;
    }
    let mut first: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (tenant, watchlist, bucket) in buckets.keys() {
        let entry = first.entry((tenant, watchlist)).or_insert(*bucket);
        *entry = (*entry).min(*bucket);
    }
    let rows: Vec<_> = first.into_iter().collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = SqlText::new(
            Backend::of(conn),
            "INSERT INTO watch_state (tenant_id, watchlist_id, first_bucket_us) VALUES ",
        );
        sql.value_rows(chunk.len(), 3).push(
            " ON CONFLICT (tenant_id, watchlist_id) DO UPDATE SET first_bucket_us = \
             CASE WHEN excluded.first_bucket_us < watch_state.first_bucket_us \
             THEN excluded.first_bucket_us ELSE watch_state.first_bucket_us END",
        );
        let mut query = sqlx::query(sql.into_sql());
        for ((tenant, watchlist), bucket) in chunk {
            query = query.bind(*tenant).bind(*watchlist).bind(*bucket);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The watchlist's first counted bucket and its last spike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchState {
    pub first_bucket_us: Option<i64>,
    pub last_spike_at_us: Option<i64>,
}

pub async fn watch_state(
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
) -> Result<WatchState, SentimentError> {
    let row = sqlx::query(
        "SELECT first_bucket_us, last_spike_at_us FROM watch_state \
         WHERE tenant_id = $1 AND watchlist_id = $2",
    )
    .bind(tenant_id)
    .bind(watchlist_id)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(row) => WatchState {
            first_bucket_us: Some(row.try_get(0)?),
            last_spike_at_us: row.try_get(1)?,
        },
        None => WatchState::default(),
    })
}

pub async fn record_spike(
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
    at_us: i64,
) -> Result<(), SentimentError> {
    sqlx::query(
        "UPDATE watch_state SET last_spike_at_us = $1 WHERE tenant_id = $2 AND watchlist_id = $3",
    )
    .bind(at_us)
    .bind(tenant_id)
    .bind(watchlist_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts of the given buckets; buckets without mentions are absent.
pub async fn bucket_counts(
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
    bucket_starts: &[i64],
) -> Result<HashMap<i64, Counts>, SentimentError> {
    let mut sql = SqlText::new(
        Backend::of(conn),
        "SELECT bucket_us, negative, neutral, positive FROM mention_buckets WHERE tenant_id = ",
    );
    sql.param().push(" AND watchlist_id = ").param();
    sql.push(" AND bucket_us IN ")
        .value_rows(1, bucket_starts.len());
    let mut query = sqlx::query(sql.into_sql())
        .bind(tenant_id)
        .bind(watchlist_id);
    for start in bucket_starts {
        query = query.bind(*start);
    }
    let mut counts = HashMap::with_capacity(bucket_starts.len());
    for row in query.fetch_all(&mut *conn).await? {
        let labels = LabelCounts::from_row(&row, 1)?;
        counts.insert(
            row.try_get(0)?,
            Counts {
                total: labels.total(),
                negative: labels.negative,
            },
        );
    }
    Ok(counts)
}

/// What a set of mentions adds up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub mentions: u64,
    pub negative: u64,
    pub reach: u64,
}

/// Hands the watchlist's mentions at or after `since_us` that no crisis holds yet to `crisis_id`, and
/// returns what they add up to.
pub async fn attach_to_crisis(
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
    since_us: i64,
    crisis_id: &str,
) -> Result<Totals, SentimentError> {
    let totals_row = sqlx::query(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN label = 1 THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(reach), 0) AS BIGINT) FROM mentions \
         WHERE tenant_id = $1 AND watchlist_id = $2 AND occurred_at_us >= $3 AND crisis_id IS NULL",
    )
    .bind(tenant_id)
    .bind(watchlist_id)
    .bind(since_us)
    .fetch_one(&mut *conn)
    .await?;
    let get = |i: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(totals_row.try_get::<i64, _>(i)?).unwrap_or(0))
    };
    let totals = Totals {
        mentions: get(0)?,
        negative: get(1)?,
        reach: get(2)?,
    };
    sqlx::query(
        "UPDATE mentions SET crisis_id = $1 \
         WHERE tenant_id = $2 AND watchlist_id = $3 AND occurred_at_us >= $4 AND crisis_id IS NULL",
    )
    .bind(crisis_id)
    .bind(tenant_id)
    .bind(watchlist_id)
    .bind(since_us)
    .execute(&mut *conn)
    .await?;
    Ok(totals)
}

/// A crisis's mentions counted per window of `window_us`, by label, oldest first.
pub async fn crisis_windows(
    conn: &mut AnyConnection,
    tenant_id: &str,
    crisis_id: &str,
    window_us: i64,
) -> Result<Vec<(i64, LabelCounts)>, SentimentError> {
    let rows = sqlx::query(
        "SELECT occurred_at_us, label FROM mentions WHERE tenant_id = $1 AND crisis_id = $2",
    )
    .bind(tenant_id)
    .bind(crisis_id)
    .fetch_all(conn)
    .await?;
    let mut windows: BTreeMap<i64, LabelCounts> = BTreeMap::new();
    for row in rows {
        let at: i64 = row.try_get(0)?;
        let label = label_from_code(row.try_get(1)?)?;
        windows
            .entry(at.div_euclid(window_us) * window_us)
            .or_default()
            .add(label);
    }
    Ok(windows.into_iter().collect())
}

/// A crisis's mentions with the widest reach, widest first.
pub async fn top_mentions(
    conn: &mut AnyConnection,
    tenant_id: &str,
    crisis_id: &str,
    limit: usize,
) -> Result<Vec<Mention>, SentimentError> {
    let rows = sqlx::query(
        "SELECT tenant_id, watchlist_id, event_id, user_id, platform, author, body, polarity, label, \
         confidence, reach, risk, occurred_at_us FROM mentions WHERE tenant_id = $1 AND crisis_id = $2 \
         ORDER BY reach DESC, occurred_at_us, event_id LIMIT $3",
    )
    .bind(tenant_id)
    .bind(crisis_id)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Mention {
                tenant_id: row.try_get(0)?,
                watchlist_id: row.try_get(1)?,
                event_id: row.try_get(2)?,
                user_id: row.try_get(3)?,
                platform: i32::try_from(row.try_get::<i64, _>(4)?).unwrap_or(0),
                author: row.try_get(5)?,
                text: row.try_get(6)?,
                polarity: row.try_get::<f64, _>(7)? as f32,
                label: label_from_code(row.try_get(8)?)?,
                confidence: row.try_get::<f64, _>(9)? as f32,
                reach: u64::try_from(row.try_get::<i64, _>(10)?).unwrap_or(0),
                risk: row.try_get::<i64, _>(11)? != 0,
                occurred_at_us: row.try_get(12)?,
            })
        })
        .collect()
}

/// Mentions per hour and label of one watchlist in `[from_us, to_us)`, from the buckets.
pub async fn watchlist_hours(
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, LabelCounts)>, SentimentError> {
    let rows = sqlx::query(
        "SELECT bucket_us, negative, neutral, positive FROM mention_buckets \
         WHERE tenant_id = $1 AND watchlist_id = $2 AND bucket_us >= $3 AND bucket_us < $4",
    )
    .bind(tenant_id)
    .bind(watchlist_id)
    .bind(from_us)
    .bind(to_us)
    .fetch_all(conn)
    .await?;
    let mut hours: BTreeMap<i64, LabelCounts> = BTreeMap::new();
    for row in rows {
        let bucket: i64 = row.try_get(0)?;
        let counts = LabelCounts::from_row(&row, 1)?;
        let hour = hours
            .entry(bucket.div_euclid(super::HOUR_US) * super::HOUR_US)
            .or_default();
        hour.negative += counts.negative;
        hour.neutral += counts.neutral;
        hour.positive += counts.positive;
    }
    Ok(hours.into_iter().collect())
}

pub async fn count_for_tenant(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<u64, SentimentError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mentions WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
