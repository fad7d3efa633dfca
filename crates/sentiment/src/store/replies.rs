//! Users' messages waiting for the brand's answer, and the brand's messages that answer them. Matching
//! works whichever arrives first: a user message looks for an answer already stored, and a brand
//! message answers what is stored. The earliest answer wins, so the order of processing does not
//! change the outcome.

use std::collections::BTreeMap;

use socialops_storage::{Backend, Row, SqlText};
use sqlx::AnyConnection;

use super::{ROWS_PER_INSERT, count, label_code, label_from_code};
use crate::domain::Label;
use crate::domain::reply::{answers_in_conversation, reply_seconds};
use crate::error::SentimentError;

#[derive(Debug, Clone, PartialEq)]
pub struct UserMessage {
    pub tenant_id: String,
    pub platform: i32,
    pub message_id: String,
    pub event_id: String,
    pub user_id: String,
    pub is_dm: bool,
    pub conversation_id: String,
    pub text: String,
    pub polarity: f32,
    pub label: Label,
    pub reach: u64,
    pub occurred_at_us: i64,
    pub answered_at_us: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandMessage {
    pub tenant_id: String,
    pub platform: i32,
    pub message_id: String,
    pub is_dm: bool,
    pub reply_to_id: String,
    pub conversation_id: String,
    pub occurred_at_us: i64,
}

impl BrandMessage {
    /// When this brand message answers `user`, if it does.
    fn answers(&self, user: &UserMessage) -> bool {
        self.platform == user.platform
            && ((!self.reply_to_id.is_empty() && self.reply_to_id == user.message_id)
                || (self.is_dm
                    && user.is_dm
                    && !self.conversation_id.is_empty()
                    && self.conversation_id == user.conversation_id
                    && answers_in_conversation(user.occurred_at_us, self.occurred_at_us)))
    }
}

/// Stores new user messages, each answered already if a stored brand message answers it.
pub async fn insert_user_messages(
    conn: &mut AnyConnection,
    messages: &mut [UserMessage],
) -> Result<(), SentimentError> {
    let mut by_tenant: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in messages.iter().enumerate() {
        by_tenant.entry(m.tenant_id.as_str()).or_default().push(i);
    }
    let mut answers: Vec<Option<i64>> = vec![None; messages.len()];
    for (tenant, indexes) in &by_tenant {
        let ids: Vec<&str> = indexes
            .iter()
            .map(|&i| messages[i].message_id.as_str())
            .collect();
        let conversations: Vec<&str> = indexes
            .iter()
            .filter(|&&i| messages[i].is_dm && !messages[i].conversation_id.is_empty())
            .map(|&i| messages[i].conversation_id.as_str())
            .collect();
        for brand in candidates(conn, tenant, &ids, &conversations).await? {
            for &i in indexes {
                if brand.answers(&messages[i]) {
                    let at = brand.occurred_at_us;
                    answers[i] = Some(answers[i].map_or(at, |a: i64| a.min(at)));
                }
            }
        }
    }
    for (m, answer) in messages.iter_mut().zip(answers) {
        m.answered_at_us = answer;
    }
    for chunk in messages.chunks(ROWS_PER_INSERT) {
        let mut sql = SqlText::new(
            Backend::of(conn),
            "INSERT INTO user_messages (tenant_id, platform, message_id, event_id, user_id, is_dm, \
             conversation_id, body, polarity, label, reach, occurred_at_us, answered_at_us, reply_seconds) VALUES ",
        );
        sql.value_rows(chunk.len(), 14)
            .push(" ON CONFLICT (tenant_id, platform, message_id) DO NOTHING");
        let mut query = sqlx::query(sql.into_sql());
        for m in chunk {
            query = query
                .bind(m.tenant_id.as_str())
                .bind(i64::from(m.platform))
                .bind(m.message_id.as_str())
                .bind(m.event_id.as_str())
                .bind(m.user_id.as_str())
                .bind(i64::from(m.is_dm))
                .bind(m.conversation_id.as_str())
                .bind(m.text.as_str())
                .bind(f64::from(m.polarity))
                .bind(label_code(m.label))
                .bind(count(m.reach))
                .bind(m.occurred_at_us)
                .bind(m.answered_at_us)
                .bind(
                    m.answered_at_us
                        .map(|at| reply_seconds(m.occurred_at_us, at)),
                );
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stored brand messages that name one of `message_ids` or write in one of `conversations`.
async fn candidates(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_ids: &[&str],
    conversations: &[&str],
) -> Result<Vec<BrandMessage>, SentimentError> {
    let mut found = Vec::new();
    for (column, values) in [
        ("reply_to_id", message_ids),
        ("conversation_id", conversations),
    ] {
        for chunk in values.chunks(ROWS_PER_INSERT) {
            let mut sql = SqlText::new(
                Backend::of(conn),
                "SELECT platform, message_id, is_dm, reply_to_id, conversation_id, occurred_at_us \
                 FROM brand_messages WHERE tenant_id = ",
            );
            sql.param()
                .push(&format!(" AND {column} <> '' AND {column} IN "))
                .value_rows(1, chunk.len());
            let mut query = sqlx::query(sql.into_sql()).bind(tenant_id);
            for value in chunk {
                query = query.bind(*value);
            }
            for row in query.fetch_all(&mut *conn).await? {
                found.push(BrandMessage {
                    tenant_id: tenant_id.to_owned(),
                    platform: i32::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0),
                    message_id: row.try_get(1)?,
                    is_dm: row.try_get::<i64, _>(2)? != 0,
                    reply_to_id: row.try_get(3)?,
                    conversation_id: row.try_get(4)?,
                    occurred_at_us: row.try_get(5)?,
                });
            }
        }
    }
    Ok(found)
}

/// Stores a brand message and answers the stored user messages it answers (unless an earlier answer
/// already did). Returns how many user messages it answered first.
pub async fn apply_brand_message(
    conn: &mut AnyConnection,
    brand: &BrandMessage,
) -> Result<u64, SentimentError> {
    let inserted = sqlx::query(
        "INSERT INTO brand_messages (tenant_id, platform, message_id, is_dm, reply_to_id, \
         conversation_id, occurred_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, platform, message_id) DO NOTHING",
    )
    .bind(brand.tenant_id.as_str())
    .bind(i64::from(brand.platform))
    .bind(brand.message_id.as_str())
    .bind(i64::from(brand.is_dm))
    .bind(brand.reply_to_id.as_str())
    .bind(brand.conversation_id.as_str())
    .bind(brand.occurred_at_us)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(0);
    }
    // The reply time is computed in SQL from each row's own time; a reply stamped earlier than the
    // message counts as immediate.
    let set = "SET answered_at_us = $1, reply_seconds = CASE WHEN $2 > occurred_at_us \
               THEN ($3 - occurred_at_us) / 1000000.0 ELSE 0.0 END";
    let answer_condition = "(answered_at_us IS NULL OR answered_at_us > $6)";
    let mut answered = 0;
    if !brand.reply_to_id.is_empty() {
        answered += sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE user_messages {set} WHERE tenant_id = $4 AND platform = $5 AND {answer_condition} \
             AND message_id = $7"
        )))
        .bind(brand.occurred_at_us)
        .bind(brand.occurred_at_us)
        .bind(brand.occurred_at_us)
        .bind(brand.tenant_id.as_str())
        .bind(i64::from(brand.platform))
        .bind(brand.occurred_at_us)
        .bind(brand.reply_to_id.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    if brand.is_dm && !brand.conversation_id.is_empty() {
        answered += sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE user_messages {set} WHERE tenant_id = $4 AND platform = $5 AND {answer_condition} \
             AND is_dm = 1 AND conversation_id = $7 AND occurred_at_us <= $8"
        )))
        .bind(brand.occurred_at_us)
        .bind(brand.occurred_at_us)
        .bind(brand.occurred_at_us)
        .bind(brand.tenant_id.as_str())
        .bind(i64::from(brand.platform))
        .bind(brand.occurred_at_us)
        .bind(brand.conversation_id.as_str())
        .bind(brand.occurred_at_us)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(answered)
}

/// User messages written at or before `cutoff_us` and still unanswered: negative first, then the widest
/// reach, then the longest waiting.
pub async fn unanswered(
    conn: &mut AnyConnection,
    tenant_id: &str,
    cutoff_us: i64,
    limit: usize,
) -> Result<Vec<UserMessage>, SentimentError> {
    let rows = sqlx::query(
        "SELECT tenant_id, platform, message_id, event_id, user_id, is_dm, conversation_id, body, \
         polarity, label, reach, occurred_at_us FROM user_messages \
         WHERE tenant_id = $1 AND answered_at_us IS NULL AND occurred_at_us <= $2 \
         ORDER BY CASE WHEN label = 1 THEN 0 ELSE 1 END, reach DESC, occurred_at_us, message_id \
         LIMIT $3",
    )
    .bind(tenant_id)
    .bind(cutoff_us)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(UserMessage {
                tenant_id: row.try_get(0)?,
                platform: i32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
                message_id: row.try_get(2)?,
                event_id: row.try_get(3)?,
                user_id: row.try_get(4)?,
                is_dm: row.try_get::<i64, _>(5)? != 0,
                conversation_id: row.try_get(6)?,
                text: row.try_get(7)?,
                polarity: row.try_get::<f64, _>(8)? as f32,
                label: label_from_code(row.try_get(9)?)?,
                reach: u64::try_from(row.try_get::<i64, _>(10)?).unwrap_or(0),
                occurred_at_us: row.try_get(11)?,
                answered_at_us: None,
            })
        })
        .collect()
}

/// Reply times in seconds per platform, for user messages written in `[from_us, to_us)`.
pub async fn reply_times(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<BTreeMap<i32, Vec<f64>>, SentimentError> {
    let rows = sqlx::query(
        "SELECT platform, reply_seconds FROM user_messages WHERE tenant_id = $1 \
         AND answered_at_us IS NOT NULL AND occurred_at_us >= $2 AND occurred_at_us < $3",
    )
    .bind(tenant_id)
    .bind(from_us)
    .bind(to_us)
    .fetch_all(conn)
    .await?;
    let mut times: BTreeMap<i32, Vec<f64>> = BTreeMap::new();
    for row in rows {
        let platform = i32::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0);
        times
            .entry(platform)
            .or_default()
            .push(row.try_get::<f64, _>(1)?);
    }
    Ok(times)
}
