//! FAQ auto-replies: a user's direct message that matches one of the tenant's questions gets the
//! answer as a `service` send, once per conversation and question within the cooldown. A message
//! matching nothing is left for a person (the sentiment service keeps it in its unanswered queue).

use std::collections::HashMap;
use std::sync::Arc;

use socialops_proto::campaigns::v1 as wire;
use sqlx::AnyConnection;

use crate::domain::campaign::{Channel, Kind};
use crate::domain::faq::{FaqEntry, FaqMatcher};
use crate::domain::tenant::send_key;
use crate::engine::{Batch, Engine, FAQ_REFRESH_US};
use crate::error::CampaignError;
use crate::react::DirectMessage;
use crate::store::sends::{SendRecord, SendState};
use crate::store::tenants;

/// The campaign id FAQ answers are recorded under.
pub const FAQ_CAMPAIGN: &str = "faq";

impl Engine {
    pub(crate) async fn reply(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        tenant_id: &str,
        user_id: &str,
        message: &DirectMessage,
    ) -> Result<(), CampaignError> {
        let faqs = self.faq_matcher(conn, tenant_id, batch.now_us).await?;
        let Some(faq_id) = faqs.matcher.find(&message.text) else {
            return Ok(());
        };
        let Some(answer) = faqs.answers.get(faq_id).cloned() else {
            return Ok(());
        };
        let settings = batch.settings(conn, tenant_id).await?;
        let cooldown_us = i64::try_from(settings.faq_cooldown.as_micros()).unwrap_or(i64::MAX);
        let claimed = tenants::claim_faq_reply(
            conn,
            tenant_id,
            &message.conversation_id,
            faq_id,
            user_id,
            batch.now_us,
            batch.now_us.saturating_sub(cooldown_us),
        )
        .await?;
        if !claimed {
            return Ok(());
        }
        let step_id = format!("faq:{faq_id}");
        let key = send_key(
            tenant_id,
            FAQ_CAMPAIGN,
            &step_id,
            user_id,
            &message.message_id,
        );
        let body = wire::Send {
            send_key: key.clone(),
            campaign_id: FAQ_CAMPAIGN.into(),
            campaign_name: "FAQ".into(),
            step_id: step_id.clone(),
            channel: wire::Channel::DirectMessage as i32,
            kind: wire::Kind::Service as i32,
            text: answer,
            conversation_id: message.conversation_id.clone(),
            reply_to_message_id: message.message_id.clone(),
            ..Default::default()
        };
        let send = SendRecord {
            send_key: key,
            tenant_id: tenant_id.to_owned(),
            campaign_id: FAQ_CAMPAIGN.into(),
            user_id: user_id.to_owned(),
            step_id,
            occurrence: 0,
            variant_id: String::new(),
            channel: Channel::DirectMessage,
            kind: Kind::Service,
            body: serde_json::to_string(&body)
                .map_err(|e| CampaignError::Runtime(format!("send body: {e}")))?,
            state: SendState::Delayed,
            rule: None,
            first_ready_at_us: batch.now_us,
            due_at_us: Some(batch.now_us),
            decided_at_us: None,
            created_at_us: batch.now_us,
        };
        batch.propose(send);
        Ok(())
    }

    /// The tenant's matcher, rebuilt when older than the refresh interval.
    async fn faq_matcher(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        now_us: i64,
    ) -> Result<Arc<TenantFaqs>, CampaignError> {
        if let Some((_, faqs)) = self
            .faqs
            .lock()
            .expect("faq cache lock")
            .get(tenant_id)
            .filter(|(built_at, _)| now_us.saturating_sub(*built_at) < FAQ_REFRESH_US)
        {
            return Ok(faqs.clone());
        }
        let entries: Vec<FaqEntry> = tenants::faqs(conn, tenant_id)
            .await?
            .into_iter()
            .map(|(entry, _)| entry)
            .collect();
        let faqs = Arc::new(TenantFaqs {
            matcher: FaqMatcher::new(&entries),
            answers: entries.into_iter().map(|e| (e.id, e.answer)).collect(),
        });
        self.faqs
            .lock()
            .expect("faq cache lock")
            .insert(tenant_id.to_owned(), (now_us, faqs.clone()));
        Ok(faqs)
    }

    /// Forgets the tenant's matcher so the next message rebuilds it.
    pub(crate) fn faqs_changed(&self, tenant_id: &str) {
        self.faqs.lock().expect("faq cache lock").remove(tenant_id);
    }
}

/// A tenant's FAQ entries compiled for matching, with their answers.
pub(crate) struct TenantFaqs {
    pub matcher: FaqMatcher,
    pub answers: HashMap<String, String>,
}
