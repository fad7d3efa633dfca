//! Watchlists: a name and three term lists per tenant.

use socialops_storage::Row;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::domain::watch::Terms;
use crate::error::SentimentError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watchlist {
    pub tenant_id: String,
    pub watchlist_id: String,
    pub name: String,
    pub terms: Terms,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

/// What matching needs to know to reuse a compiled matcher: it changes whenever the terms do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistVersion {
    pub tenant_id: String,
    pub watchlist_id: String,
    pub name: String,
    pub updated_at_us: i64,
}

const COLUMNS: &str =
    "tenant_id, watchlist_id, name, brands, products, risk_words, created_at_us, updated_at_us";

fn decode(row: &AnyRow) -> Result<Watchlist, SentimentError> {
    let list = |column: &str| -> Result<Vec<String>, SentimentError> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text)
            .map_err(|e| SentimentError::Corrupt(format!("watchlist {column}: {e}")))
    };
    Ok(Watchlist {
        tenant_id: row.try_get("tenant_id")?,
        watchlist_id: row.try_get("watchlist_id")?,
        name: row.try_get("name")?,
        terms: Terms {
            brands: list("brands")?,
            products: list("products")?,
            risk_words: list("risk_words")?,
        },
        created_at_us: row.try_get("created_at_us")?,
        updated_at_us: row.try_get("updated_at_us")?,
    })
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn name_taken(name: &str) -> impl FnOnce() -> String + '_ {
    move || format!("a watchlist named `{name}` already exists")
}

pub async fn insert(conn: &mut AnyConnection, w: &Watchlist) -> Result<(), SentimentError> {
    sqlx::query(
        "INSERT INTO watchlists (tenant_id, watchlist_id, name, brands, products, risk_words, \
         created_at_us, updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(w.tenant_id.as_str())
    .bind(w.watchlist_id.as_str())
    .bind(w.name.as_str())
    .bind(json(&w.terms.brands))
    .bind(json(&w.terms.products))
    .bind(json(&w.terms.risk_words))
    .bind(w.created_at_us)
    .bind(w.updated_at_us)
    .execute(conn)
    .await
    .map_err(|e| SentimentError::on_unique(e, name_taken(&w.name)))?;
    Ok(())
}

/// Replaces name and terms; false when there is no such watchlist.
pub async fn update(conn: &mut AnyConnection, w: &Watchlist) -> Result<bool, SentimentError> {
    let updated = sqlx::query(
        "UPDATE watchlists SET name = $1, brands = $2, products = $3, risk_words = $4, \
         updated_at_us = $5 WHERE tenant_id = $6 AND watchlist_id = $7",
    )
    .bind(w.name.as_str())
    .bind(json(&w.terms.brands))
    .bind(json(&w.terms.products))
    .bind(json(&w.terms.risk_words))
    .bind(w.updated_at_us)
    .bind(w.tenant_id.as_str())
    .bind(w.watchlist_id.as_str())
    .execute(conn)
    .await
    .map_err(|e| SentimentError::on_unique(e, name_taken(&w.name)))?;
    Ok(updated.rows_affected() == 1)
}

/// Deletes the watchlist and its counting state; its mentions and crises stay as history. False when
/// there is no such watchlist.
pub async fn delete(
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
) -> Result<bool, SentimentError> {
    let deleted = sqlx::query("DELETE FROM watchlists WHERE tenant_id = $1 AND watchlist_id = $2")
        .bind(tenant_id)
        .bind(watchlist_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    for table in ["mention_buckets", "watch_state"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant_id = $1 AND watchlist_id = $2"
        )))
        .bind(tenant_id)
        .bind(watchlist_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(deleted == 1)
}

pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    watchlist_id: &str,
) -> Result<Option<Watchlist>, SentimentError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM watchlists WHERE tenant_id = $1 AND watchlist_id = $2"
    )))
    .bind(tenant_id)
    .bind(watchlist_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode).transpose()
}

/// The tenant's watchlists by name.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<Watchlist>, SentimentError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM watchlists WHERE tenant_id = $1 ORDER BY name, watchlist_id"
    )))
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode).collect()
}

/// The current version of every watchlist of the tenant, without the terms.
pub async fn versions(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<WatchlistVersion>, SentimentError> {
    let rows = sqlx::query(
        "SELECT tenant_id, watchlist_id, name, updated_at_us FROM watchlists WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(WatchlistVersion {
                tenant_id: row.try_get(0)?,
                watchlist_id: row.try_get(1)?,
                name: row.try_get(2)?,
                updated_at_us: row.try_get(3)?,
            })
        })
        .collect()
}
