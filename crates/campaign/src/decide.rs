//! Deciding sends: each waiting send is checked against its campaign's state, the tenant's crisis
//! pause and pressure rules, with the user's record locked so that concurrent deciders never exceed
//! a cap together. A send decided to go out is published through the outbox in the same transaction,
//! exactly once: the decision only applies to a send still waiting.

use std::collections::BTreeMap;

use socialops_bus::OutgoingMessage;
use socialops_proto::campaigns::v1 as wire;
use sqlx::AnyConnection;

use crate::coupons::IssueRequest;
use crate::domain::campaign::Status;
use crate::domain::coupon::Refusal;
use crate::domain::pressure::{self, Candidate, Decision, PastSend, UserContext};
use crate::engine::{Batch, Engine, decision, time_zone};
use crate::error::CampaignError;
use crate::store::sends::{self, SendRecord, SendState};
use crate::store::{UserKey, campaigns};
use crate::time::{from_micros, micros};

/// What was decided for one send, before it is written.
struct Verdict {
    state: SendState,
    rule: Option<String>,
    detail: Option<String>,
    until_us: Option<i64>,
}

impl Verdict {
    fn held(rule: &str, detail: String) -> Self {
        Self {
            state: SendState::Held,
            rule: Some(rule.into()),
            detail: Some(detail),
            until_us: None,
        }
    }

    fn dropped(rule: &str, detail: String) -> Self {
        Self {
            state: SendState::Dropped,
            rule: Some(rule.into()),
            detail: Some(detail),
            until_us: None,
        }
    }

    fn delayed(rule: &str, detail: String, until_us: i64) -> Self {
        Self {
            state: SendState::Delayed,
            rule: Some(rule.into()),
            detail: Some(detail),
            until_us: Some(until_us),
        }
    }
}

impl Engine {
    /// Issues the code of a send whose step has a coupon action (the action's template is the
    /// pool), under the send's key, and puts it in the message; or says why none can be issued.
    async fn issue_for_send(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        send: &SendRecord,
        body: &mut wire::Send,
    ) -> Result<Option<Refusal>, CampaignError> {
        let Some(wire::action::Action::IssueCoupon(action)) =
            body.action.as_ref().and_then(|a| a.action.as_ref())
        else {
            return Ok(None);
        };
        let request = IssueRequest {
            tenant_id: &send.tenant_id,
            pool_id: &action.template,
            user_id: &send.user_id,
            issue_key: send.send_key.clone(),
            campaign_id: &send.campaign_id,
            now_us: batch.now_us,
        };
        let mut outgoing = Vec::new();
        let issued = self.issue_in(conn, &request, &mut outgoing).await?;
        let announces = batch
            .is_unstored(&send.send_key)
            .then(|| send.send_key.clone());
        batch
            .outgoing
            .extend(outgoing.into_iter().map(|m| (announces.clone(), m)));
        Ok(match issued {
            Ok(issued) => {
                body.coupon_code = issued.coupon.code;
                None
            }
            Err(refusal) => Some(refusal),
        })
    }

    /// Decides every send waiting in the batch, user by user in a fixed order (so that two
    /// transactions lock users in the same order), and queues what goes out.
    pub(crate) async fn decide_pending(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
    ) -> Result<(), CampaignError> {
        let mut by_user: BTreeMap<UserKey, Vec<SendRecord>> = BTreeMap::new();
        for send in std::mem::take(&mut batch.pending) {
            by_user
                .entry((send.tenant_id.clone(), send.user_id.clone()))
                .or_default()
                .push(send);
        }
        batch.load_users(conn, by_user.keys().cloned()).await?;
        for (key, user_sends) in by_user {
            let user = batch.user(&key)?.clone();
            let settings = batch.settings(conn, &key.0).await?;
            let peak = batch.peak_hour(conn, &key.0).await?;
            let context = UserContext {
                time_zone: time_zone(&user, &settings),
                hours: Some(&user.hours),
                tenant_peak_hour: peak,
            };
            let mut history = std::mem::take(batch.history_mut(&key));
            for send in user_sends {
                let verdict = self.verdict(conn, batch, &send, &history, &context).await?;
                self.record(conn, batch, send, verdict, &mut history)
                    .await?;
            }
            *batch.history_mut(&key) = history;
        }
        Ok(())
    }

    async fn verdict(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        send: &SendRecord,
        history: &[PastSend],
        context: &UserContext<'_>,
    ) -> Result<Verdict, CampaignError> {
        let settings = batch.settings(conn, &send.tenant_id).await?;
        let mut best_time = None;
        if send.campaign_id != crate::reply::FAQ_CAMPAIGN {
            let Some(campaign) = batch
                .campaign(conn, &send.tenant_id, &send.campaign_id)
                .await?
            else {
                return Ok(Verdict::dropped(
                    "campaign_gone",
                    "the campaign no longer exists".into(),
                ));
            };
            match campaign.status {
                Status::Running => {}
                Status::Paused => {
                    let rule = if campaign.paused_by.as_deref() == Some("crisis") {
                        "crisis_pause"
                    } else {
                        "campaign_paused"
                    };
                    return Ok(Verdict::held(
                        rule,
                        format!(
                            "held while the campaign is paused: {}",
                            campaign.pause_reason.as_deref().unwrap_or("paused")
                        ),
                    ));
                }
                Status::Draft | Status::Scheduled => {
                    return Ok(Verdict::held(
                        "campaign_not_started",
                        "held until the campaign starts".into(),
                    ));
                }
                Status::Finished | Status::Archived => {
                    return Ok(Verdict::dropped(
                        "campaign_finished",
                        format!("the campaign is {}", campaign.status),
                    ));
                }
            }
            if let Some(window) = &campaign.spec.window {
                if window.end.is_some_and(|end| batch.now >= end) {
                    return Ok(Verdict::dropped(
                        "window",
                        "the campaign's schedule window has ended".into(),
                    ));
                }
                if let Some(start) = window.start.filter(|start| batch.now < *start) {
                    return Ok(Verdict::delayed(
                        "window",
                        "waits for the campaign's schedule window".into(),
                        micros(start),
                    ));
                }
            }
            if let Some(budget) = campaign.spec.budget
                && campaign.num_sent >= budget
            {
                return Ok(Verdict::dropped(
                    "budget",
                    format!("the campaign's budget of {budget} sends is spent"),
                ));
            }
            best_time = campaign.spec.best_time;
        }
        if let Some((crisis_id, severity)) = batch.crisis(conn, &send.tenant_id).await?
            && settings.pauses(send.kind, severity)
        {
            return Ok(Verdict::held(
                "crisis_pause",
                format!(
                    "held during crisis {crisis_id} ({} severity)",
                    severity.as_str()
                ),
            ));
        }
        let candidate = Candidate {
            tenant: &send.tenant_id,
            user: &send.user_id,
            channel: send.channel,
            kind: send.kind,
            first_ready_at: from_micros(send.first_ready_at_us),
            best_time,
        };
        Ok(
            match pressure::decide(&settings.pressure, &candidate, history, context, batch.now) {
                Decision::Send => Verdict {
                    state: SendState::Sent,
                    rule: None,
                    detail: None,
                    until_us: None,
                },
                Decision::Delay { until, rule } => Verdict::delayed(
                    rule.as_str(),
                    rule.describe(&settings.pressure, send.channel),
                    // A delay always ends later than now, so a sweep never meets the send again
                    // in the same instant.
                    micros(until).max(batch.now_us + 1),
                ),
                Decision::Drop { rule } => Verdict::dropped(
                    rule.as_str(),
                    rule.describe(&settings.pressure, send.channel),
                ),
            },
        )
    }

    async fn record(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        mut send: SendRecord,
        mut verdict: Verdict,
        history: &mut Vec<PastSend>,
    ) -> Result<(), CampaignError> {
        let mut body: Option<wire::Send> = None;
        if verdict.state == SendState::Sent {
            body = Some(
                serde_json::from_str(&send.body)
                    .map_err(|e| CampaignError::Corrupt(format!("send {}: {e}", send.send_key)))?,
            );
        }
        let mut spent = false;
        if verdict.state == SendState::Sent && send.campaign_id != crate::reply::FAQ_CAMPAIGN {
            let budget = match batch
                .campaign(conn, &send.tenant_id, &send.campaign_id)
                .await?
            {
                Some(campaign) => campaign.spec.budget,
                None => None,
            };
            if budget.is_some() {
                spent = campaigns::spend_budget(conn, &send.tenant_id, &send.campaign_id, budget)
                    .await?;
                if !spent {
                    verdict = Verdict::dropped("budget", "the campaign's budget is spent".into());
                }
            }
        }
        if verdict.state == SendState::Sent
            && let Some(body) = body.as_mut()
            && let Some(refusal) = self.issue_for_send(conn, batch, &send, body).await?
        {
            if spent {
                campaigns::unspend_budget(conn, &send.tenant_id, &send.campaign_id).await?;
            }
            verdict = Verdict::dropped("coupon", refusal.to_string());
        }
        let unstored = batch.is_unstored(&send.send_key);
        if !unstored
            && !sends::decide(
                conn,
                &send.send_key,
                verdict.state,
                verdict.rule.as_deref(),
                verdict.until_us,
                batch.now_us,
            )
            .await?
        {
            // Another transaction decided it first.
            return Ok(());
        }
        let announces = unstored.then(|| send.send_key.clone());
        if verdict.state == SendState::Sent
            && let Some(mut body) = body
        {
            body.decided_at = Some(socialops_proto::timestamp(batch.now_us));
            let outcome = wire::CampaignOutcome {
                tenant_id: send.tenant_id.clone(),
                user_id: send.user_id.clone(),
                outcome: Some(wire::campaign_outcome::Outcome::Send(body)),
            };
            batch.outgoing.push((
                announces.clone(),
                OutgoingMessage::encode(
                    self.campaigns_topic.clone(),
                    Some(format!("{}:{}", send.tenant_id, send.user_id)),
                    &outcome,
                ),
            ));
            history.push(PastSend {
                at: batch.now,
                channel: send.channel,
                kind: send.kind,
            });
        }
        let outcome = match verdict.state {
            SendState::Sent => {
                batch.outcome.sent += 1;
                "sent"
            }
            SendState::Delayed => {
                batch.outcome.delayed += 1;
                "delayed"
            }
            SendState::Dropped => {
                batch.outcome.dropped += 1;
                "dropped"
            }
            SendState::Held => {
                batch.outcome.held += 1;
                "held"
            }
        };
        batch.decided(
            &send.tenant_id,
            &send.campaign_id,
            &send.user_id,
            sends::DecisionRecord {
                send_key: Some(send.send_key.clone()),
                step_id: Some(send.step_id.clone()),
                outcome: outcome.into(),
                rule: verdict.rule.clone(),
                detail: verdict.detail,
                until_us: verdict.until_us,
                ..decision(batch.now_us)
            },
        );
        if unstored {
            send.state = verdict.state;
            send.rule = verdict.rule;
            send.due_at_us = verdict.until_us;
            send.decided_at_us = Some(batch.now_us);
            batch.new_sends.push(send);
        }
        Ok(())
    }
}
