//! Which scored texts are mentions of which watchlists. Compiled matchers are kept per watchlist and
//! reused while the watchlist's `updated_at` stays the same.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use socialops_scorer::fold;
use sqlx::AnyConnection;

use crate::domain::Score;
use crate::domain::text::TextItem;
use crate::domain::watch::Matcher;
use crate::error::SentimentError;
use crate::store::mentions::Mention;
use crate::store::watchlists::{self, WatchlistVersion};

type Key = (String, String);

#[derive(Default)]
pub struct MatcherCache {
    compiled: Mutex<HashMap<Key, (i64, Arc<Matcher>)>>,
}

/// A watchlist ready to match: its current name and compiled terms.
pub struct Live {
    pub version: WatchlistVersion,
    pub matcher: Arc<Matcher>,
}

impl MatcherCache {
    pub fn forget_tenant(&self, tenant_id: &str) {
        self.lock().retain(|(tenant, _), _| tenant != tenant_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (i64, Arc<Matcher>)>> {
        self.compiled.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tenant's watchlists, compiling those that are new or changed.
    pub async fn live(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
    ) -> Result<Vec<Live>, SentimentError> {
        let versions = watchlists::versions(conn, tenant_id).await?;
        let mut live = Vec::with_capacity(versions.len());
        for version in versions {
            let key = (version.tenant_id.clone(), version.watchlist_id.clone());
            let cached = self
                .lock()
                .get(&key)
                .filter(|(at, _)| *at == version.updated_at_us)
                .map(|(_, m)| m.clone());
            let matcher = match cached {
                Some(matcher) => matcher,
                None => {
                    let Some(watchlist) =
                        watchlists::get(conn, tenant_id, &version.watchlist_id).await?
                    else {
                        continue;
                    };
                    let matcher = Arc::new(Matcher::new(&watchlist.terms));
                    self.lock()
                        .insert(key, (watchlist.updated_at_us, matcher.clone()));
                    matcher
                }
            };
            live.push(Live { version, matcher });
        }
        Ok(live)
    }
}

/// Matches every scored user text against its tenant's watchlists; one mention per text and
/// watchlist it matches.
pub async fn find_mentions(
    cache: &MatcherCache,
    conn: &mut AnyConnection,
    scored: &[(&TextItem, Score)],
) -> Result<Vec<Mention>, SentimentError> {
    let mut by_tenant: BTreeMap<&str, Vec<&(&TextItem, Score)>> = BTreeMap::new();
    for entry in scored {
        by_tenant
            .entry(entry.0.tenant_id.as_str())
            .or_default()
            .push(entry);
    }
    let mut mentions = Vec::new();
    for (tenant_id, entries) in by_tenant {
        let live = cache.live(conn, tenant_id).await?;
        if live.is_empty() {
            continue;
        }
        for (item, score) in entries {
            let folded = fold(&item.text);
            for watchlist in &live {
                if let Some(hit) = watchlist.matcher.find(&folded) {
                    mentions.push(Mention {
                        tenant_id: item.tenant_id.clone(),
                        watchlist_id: watchlist.version.watchlist_id.clone(),
                        event_id: item.event_id.clone(),
                        user_id: item.user_id.clone(),
                        platform: item.platform,
                        author: item.author.clone(),
                        text: item.text.clone(),
                        polarity: score.polarity,
                        label: score.label,
                        confidence: score.confidence,
                        reach: item.reach,
                        risk: hit.risk,
                        occurred_at_us: item.occurred_at_us,
                    });
                }
            }
        }
    }
    Ok(mentions)
}
