//! Watchlist CRUD.

use socialops_proto::sentiment::v1 as wire;

use super::{SentimentApi, convert};
use crate::domain::watch::Terms;
use crate::error::SentimentError;
use crate::store::watchlists::{self, Watchlist};

const MAX_NAME_CHARS: usize = 100;

fn checked_name(name: &str) -> Result<String, SentimentError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(SentimentError::InvalidArgument("name: required".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(SentimentError::InvalidArgument(format!(
            "name: longer than {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

fn checked_terms(
    brands: Vec<String>,
    products: Vec<String>,
    risk_words: Vec<String>,
) -> Result<Terms, SentimentError> {
    Terms {
        brands,
        products,
        risk_words,
    }
    .cleaned()
    .map_err(SentimentError::InvalidArgument)
}

fn not_found(watchlist_id: &str) -> SentimentError {
    SentimentError::NotFound(format!("watchlist `{watchlist_id}` not found"))
}

impl SentimentApi {
    pub(super) async fn create(
        &self,
        tenant_id: String,
        request: wire::CreateWatchlistRequest,
    ) -> Result<wire::Watchlist, SentimentError> {
        let name = checked_name(&request.name)?;
        let terms = checked_terms(request.brands, request.products, request.risk_words)?;
        let now_us = self.monitor.now_us();
        let watchlist = Watchlist {
            tenant_id,
            watchlist_id: uuid::Uuid::now_v7().to_string(),
            name,
            terms,
            created_at_us: now_us,
            updated_at_us: now_us,
        };
        let mut conn = self.monitor.store().conn().await?;
        watchlists::insert(&mut conn, &watchlist).await?;
        self.monitor.watchlists_changed(&watchlist.tenant_id);
        tracing::info!(tenant = %watchlist.tenant_id, watchlist = %watchlist.watchlist_id, "watchlist created");
        Ok(convert::watchlist(&watchlist))
    }

    pub(super) async fn get(
        &self,
        tenant_id: &str,
        watchlist_id: &str,
    ) -> Result<wire::Watchlist, SentimentError> {
        let mut conn = self.monitor.store().conn().await?;
        let watchlist = watchlists::get(&mut conn, tenant_id, watchlist_id)
            .await?
            .ok_or_else(|| not_found(watchlist_id))?;
        Ok(convert::watchlist(&watchlist))
    }

    pub(super) async fn list(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<wire::Watchlist>, SentimentError> {
        let mut conn = self.monitor.store().conn().await?;
        Ok(watchlists::list(&mut conn, tenant_id)
            .await?
            .iter()
            .map(convert::watchlist)
            .collect())
    }

    pub(super) async fn update(
        &self,
        tenant_id: String,
        request: wire::UpdateWatchlistRequest,
    ) -> Result<wire::Watchlist, SentimentError> {
        let name = checked_name(&request.name)?;
        let terms = checked_terms(request.brands, request.products, request.risk_words)?;
        let mut conn = self.monitor.store().conn().await?;
        let current = watchlists::get(&mut conn, &tenant_id, &request.watchlist_id)
            .await?
            .ok_or_else(|| not_found(&request.watchlist_id))?;
        let watchlist = Watchlist {
            name,
            terms,
            // Strictly later, so every replica notices the change even on a coarse clock.
            updated_at_us: self.monitor.now_us().max(current.updated_at_us + 1),
            ..current
        };
        if !watchlists::update(&mut conn, &watchlist).await? {
            return Err(not_found(&request.watchlist_id));
        }
        self.monitor.watchlists_changed(&tenant_id);
        Ok(convert::watchlist(&watchlist))
    }

    pub(super) async fn delete(
        &self,
        tenant_id: &str,
        watchlist_id: &str,
    ) -> Result<(), SentimentError> {
        let mut tx = self.monitor.store().db().begin().await?;
        if !watchlists::delete(&mut tx, tenant_id, watchlist_id).await? {
            return Err(not_found(watchlist_id));
        }
        tx.commit().await?;
        self.monitor.watchlists_changed(tenant_id);
        Ok(())
    }
}
