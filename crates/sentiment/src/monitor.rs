//! Where monitoring happens. A batch of canonical events ([`Monitor::handle_events`]) is scored,
//! counted on the timeline, matched against the tenants' watchlists, stored as mentions and user
//! messages, answers brand replies, and opens or grows crises; a person's step on a crisis
//! ([`act`]) and the response clock ([`remind`]) change crises too. Each call is one
//! transaction that also enqueues every resulting alert for `socialops.alerts.v1` in the outbox.

mod alert;
mod crises;
mod matching;

use std::collections::BTreeMap;
use std::sync::Arc;

use socialops_bus::Outbox;
use socialops_proto::events::v1::SocialEvent;
use socialops_scorer::Scorer;
use tokio::sync::Notify;

use crate::config::Rules;
use crate::domain::Score;
use crate::domain::text::{EventType, Kind, TextItem};
use crate::error::SentimentError;
use crate::store::replies::{self, BrandMessage, UserMessage};
use crate::store::{self, HOUR_US, LabelCounts, SentimentStore};
pub use alert::alert_message;
pub use crises::{ActionRequest, act, remind};
use matching::MatcherCache;
use socialops_storage::clock::Clock;
use socialops_storage::processed;

/// What one batch changed, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub new_events: usize,
    pub scored: usize,
    pub mentions: usize,
    pub alerts: usize,
}

pub struct Monitor {
    store: SentimentStore,
    scorer: Arc<Scorer>,
    rules: Rules,
    clock: Arc<dyn Clock>,
    alerts_topic: String,
    relay: Arc<Notify>,
    matchers: MatcherCache,
}

impl Monitor {
    pub fn new(
        store: SentimentStore,
        scorer: Arc<Scorer>,
        rules: Rules,
        clock: Arc<dyn Clock>,
        alerts_topic: String,
        relay: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            scorer,
            rules,
            clock,
            alerts_topic,
            relay,
            matchers: MatcherCache::default(),
        }
    }

    pub fn store(&self) -> &SentimentStore {
        &self.store
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn scorer(&self) -> &Arc<Scorer> {
        &self.scorer
    }

    pub fn now_us(&self) -> i64 {
        self.clock.now_us()
    }

    /// Forgets compiled watchlists of `tenant_id`, after a change through the API. Other replicas see
    /// the change through the watchlist's `updated_at`.
    pub fn watchlists_changed(&self, tenant_id: &str) {
        self.matchers.forget_tenant(tenant_id);
    }

    /// Handles a batch of canonical events. An event already handled (same tenant and event id)
    /// changes nothing. An error means nothing was stored and the whole batch may be retried.
    pub async fn handle_events(
        &self,
        events: &[SocialEvent],
    ) -> Result<BatchOutcome, SentimentError> {
        let items: Vec<TextItem> = events.iter().filter_map(TextItem::from_event).collect();
        if items.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let scores = self.score_users(&items).await?;
        let now_us = self.clock.now_us();

        let mut tx = self.store.db().begin().await?;
        let keys: Vec<(&str, &str)> = items
            .iter()
            .map(|i| (i.tenant_id.as_str(), i.event_id.as_str()))
            .collect();
        let mut new = processed::mark_processed(&mut tx, &keys, now_us).await?;
        let fresh: Vec<(&TextItem, Option<Score>)> = items
            .iter()
            .zip(scores)
            .filter(|(item, _)| new.remove(&(item.tenant_id.clone(), item.event_id.clone())))
            .collect();
        let mut outcome = BatchOutcome {
            new_events: fresh.len(),
            ..BatchOutcome::default()
        };
        if fresh.is_empty() {
            return Ok(outcome);
        }

        let mut timeline: BTreeMap<(String, i64), LabelCounts> = BTreeMap::new();
        let mut waiting = Vec::new();
        let mut brand = Vec::new();
        for (item, score) in &fresh {
            match (score, &item.kind) {
                (Some(score), Kind::User { awaits_reply }) => {
                    outcome.scored += 1;
                    timeline
                        .entry((
                            item.tenant_id.clone(),
                            item.occurred_at_us.div_euclid(HOUR_US) * HOUR_US,
                        ))
                        .or_default()
                        .add(score.label);
                    if *awaits_reply {
                        waiting.push(user_message(item, score));
                    }
                }
                (_, Kind::Brand) => brand.push(brand_message(item)),
                (None, Kind::User { .. }) => {}
            }
        }
        store::add_to_timeline(&mut tx, &timeline).await?;
        replies::insert_user_messages(&mut tx, &mut waiting).await?;
        for message in &brand {
            replies::apply_brand_message(&mut tx, message).await?;
        }

        let scored: Vec<(&TextItem, Score)> = fresh
            .iter()
            .filter_map(|(item, score)| score.map(|s| (*item, s)))
            .collect();
        let mentions = matching::find_mentions(&self.matchers, &mut tx, &scored).await?;
        outcome.mentions = mentions.len();
        let mut alerts = Vec::new();
        if !mentions.is_empty() {
            alerts = crises::absorb(self, &mut tx, &mentions, now_us).await?;
        }
        outcome.alerts = alerts.len();
        Outbox::enqueue(&mut tx, &alerts).await?;
        tx.commit().await?;
        if !alerts.is_empty() {
            self.relay.notify_one();
        }
        metrics::counter!("socialops_sentiment_scored_total").increment(outcome.scored as u64);
        metrics::counter!("socialops_sentiment_mentions_total").increment(outcome.mentions as u64);
        Ok(outcome)
    }

    /// Scores the users' texts on the blocking pool: scoring is CPU work, a batch takes milliseconds.
    async fn score_users(&self, items: &[TextItem]) -> Result<Vec<Option<Score>>, SentimentError> {
        let texts: Vec<Option<String>> = items
            .iter()
            .map(|i| i.is_user().then(|| i.text.clone()))
            .collect();
        let scorer = self.scorer.clone();
        tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .map(|text| text.as_deref().map(|t| scorer.score(t)))
                .collect()
        })
        .await
        .map_err(|e| SentimentError::Runtime(format!("scoring task: {e}")))
    }

    /// Erases a user's mentions and messages.
    pub async fn erase(&self, tenant_id: &str, user_id: &str) -> Result<u64, SentimentError> {
        let mut conn = self.store.conn().await?;
        store::erase_user(&mut conn, tenant_id, user_id).await
    }

    pub(crate) fn alerts_topic(&self) -> &str {
        &self.alerts_topic
    }

    pub(crate) fn wake_relay(&self) {
        self.relay.notify_one();
    }
}

fn user_message(item: &TextItem, score: &Score) -> UserMessage {
    UserMessage {
        tenant_id: item.tenant_id.clone(),
        platform: item.platform,
        message_id: item.message_id.clone(),
        event_id: item.event_id.clone(),
        user_id: item.user_id.clone(),
        is_dm: is_direct_message(item),
        conversation_id: item.conversation_id.clone(),
        text: item.text.clone(),
        polarity: score.polarity,
        label: score.label,
        reach: item.reach,
        occurred_at_us: item.occurred_at_us,
        answered_at_us: None,
    }
}

fn brand_message(item: &TextItem) -> BrandMessage {
    BrandMessage {
        tenant_id: item.tenant_id.clone(),
        platform: item.platform,
        message_id: item.message_id.clone(),
        is_dm: is_direct_message(item),
        reply_to_id: item.reply_to_id.clone(),
        conversation_id: item.conversation_id.clone(),
        occurred_at_us: item.occurred_at_us,
    }
}

/// Direct messages answer by conversation; comments only by naming the comment they answer.
fn is_direct_message(item: &TextItem) -> bool {
    item.event_type == EventType::DirectMessage
}
