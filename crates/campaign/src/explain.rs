//! What was sent, held or dropped and why: sends by campaign or user, the decisions about one user
//! in one campaign with a summary a person can read, journey states and campaign counts. Also
//! erasure of a user.

use crate::engine::Engine;
use crate::error::CampaignError;
use crate::store::journeys::{self, JourneyCounts, JourneyRecord};
use crate::store::sends::{self, DecisionRecord, SendRecord, SendState};
use crate::store::users;

/// Sends and decisions counted for one campaign.
#[derive(Debug, Clone, Default)]
pub struct CampaignCounts {
    pub journeys: JourneyCounts,
    pub num_sent: u64,
    pub num_held: u64,
    pub delayed: Vec<(String, u64)>,
    pub dropped: Vec<(String, u64)>,
}

impl Engine {
    pub async fn list_sends(
        &self,
        tenant_id: &str,
        campaign_id: Option<&str>,
        user_id: Option<&str>,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<SendRecord>, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        sends::list(&mut conn, tenant_id, campaign_id, user_id, after, limit).await
    }

    /// The decisions about the user in the campaign, oldest first, and one line saying where things
    /// stand.
    pub async fn explain(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        user_id: &str,
    ) -> Result<(Vec<DecisionRecord>, String), CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        let decisions = sends::decisions(&mut conn, tenant_id, campaign_id, user_id).await?;
        let summary = match decisions.iter().rev().find(|d| d.send_key.is_some()) {
            Some(last) => describe(last),
            None => match decisions.last() {
                Some(last) => describe(last),
                None => format!(
                    "{user_id} has not entered campaign {campaign_id}: no entry event for them was \
                     seen while it ran, or the campaign does not exist"
                ),
            },
        };
        Ok((decisions, summary))
    }

    pub async fn journeys_of(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        user_id: &str,
    ) -> Result<Vec<JourneyRecord>, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        journeys::of_user(&mut conn, tenant_id, campaign_id, user_id).await
    }

    pub async fn counts(
        &self,
        tenant_id: &str,
        campaign_id: &str,
    ) -> Result<CampaignCounts, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        let mut counts = CampaignCounts {
            journeys: journeys::counts(&mut conn, tenant_id, campaign_id).await?,
            ..CampaignCounts::default()
        };
        for (state, rule, n) in sends::counts(&mut conn, tenant_id, campaign_id).await? {
            let rule = rule.unwrap_or_default();
            match state {
                SendState::Sent => counts.num_sent += n,
                SendState::Held => counts.num_held += n,
                SendState::Delayed => counts.delayed.push((rule, n)),
                SendState::Dropped => counts.dropped.push((rule, n)),
            }
        }
        Ok(counts)
    }

    /// Removes what the service holds of the user; their orders stay in the totals under an
    /// unlinkable id.
    pub async fn erase(&self, tenant_id: &str, user_id: &str) -> Result<u64, CampaignError> {
        let mut tx = self.store.db().begin_write().await?;
        let removed = users::erase(&mut tx, tenant_id, user_id).await?
            + crate::store::attribution::anonymise(&mut tx, tenant_id, user_id).await?
            + crate::store::referrals::erase(&mut tx, tenant_id, user_id).await?;
        tx.commit().await?;
        Ok(removed)
    }
}

fn describe(decision: &DecisionRecord) -> String {
    let step = decision
        .step_id
        .as_deref()
        .map(|s| format!("step {s}: "))
        .unwrap_or_default();
    let detail = decision.detail.as_deref().unwrap_or("");
    let rule = decision.rule.as_deref().unwrap_or("");
    match decision.outcome.as_str() {
        "sent" => format!("{step}sent"),
        "delayed" => format!(
            "{step}delayed by {rule} until {}: {detail}",
            decision
                .until_us
                .map(|us| crate::time::from_micros(us).to_rfc3339())
                .unwrap_or_default()
        ),
        "dropped" => format!("{step}dropped by {rule}: {detail}"),
        "held" => format!("{step}held by {rule}: {detail}"),
        "not_entered" => format!("did not enter ({rule}): {detail}"),
        "entered" => "entered the journey; nothing sent yet".to_owned(),
        "exited" => format!("left the journey: {detail}"),
        other => other.to_owned(),
    }
}
