//! Campaigns as operators manage them: create and update from a definition document, review the
//! content, accept findings, and move through the lifecycle, each change recorded with who, when and
//! why. Also the tenant's settings and FAQ entries.

use sha2::{Digest, Sha256};

use crate::domain::campaign::Status;
use crate::domain::definition::{self, Action, CampaignSpec, Entry, Format, Step};
use crate::domain::faq::{self, FaqEntry};
use crate::domain::review::{ProductCategory, Reviewer};
use crate::domain::tenant::TenantSettings;
use crate::engine::{Batch, Engine};
use crate::error::CampaignError;
use crate::store::campaigns::{self, Acceptance, CampaignRecord, Pause};
use crate::store::{sends, tenants};
use crate::time::micros;

/// One content review finding on one variant's message of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewedFinding {
    /// Stable over re-reviews of the same text: a hash of variant, step, term and position.
    pub finding_id: String,
    pub variant_id: String,
    pub step_id: String,
    pub finding: crate::domain::review::Finding,
    pub accepted: Option<Acceptance>,
}

/// A lifecycle change asked for by a person.
pub struct Change<'a> {
    pub tenant_id: &'a str,
    pub campaign_id: &'a str,
    pub actor: &'a str,
    pub reason: &'a str,
}

impl Engine {
    pub fn parse_definition(
        &self,
        document: &str,
        format: Format,
    ) -> Result<CampaignSpec, CampaignError> {
        Ok(definition::parse(document, format)?)
    }

    pub async fn create_campaign(
        &self,
        tenant_id: &str,
        campaign_id: String,
        spec: CampaignSpec,
    ) -> Result<CampaignRecord, CampaignError> {
        let now_us = micros(self.now());
        let record = CampaignRecord {
            tenant_id: tenant_id.to_owned(),
            campaign_id,
            status: Status::Draft,
            spec,
            created_at_us: now_us,
            updated_at_us: now_us,
            paused_by: None,
            pause_reason: None,
            crisis_id: None,
            num_sent: 0,
            next_entry_at_us: None,
            winner: None,
            rolled_out_at_us: None,
        };
        let mut conn = self.store.db().pool().acquire().await?;
        campaigns::insert(&mut conn, &record).await?;
        Ok(record)
    }

    pub async fn update_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        spec: CampaignSpec,
    ) -> Result<CampaignRecord, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        let updated = campaigns::update_definition(
            &mut conn,
            tenant_id,
            campaign_id,
            &spec,
            &[Status::Draft, Status::Scheduled, Status::Paused],
            micros(self.now()),
        )
        .await?;
        let campaign = self.campaign(tenant_id, campaign_id).await?;
        if !updated {
            return Err(CampaignError::Precondition(format!(
                "a {} campaign cannot change; pause it first",
                campaign.status
            )));
        }
        Ok(campaign)
    }

    pub async fn campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
    ) -> Result<CampaignRecord, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        campaigns::get(&mut conn, tenant_id, campaign_id)
            .await?
            .ok_or_else(|| CampaignError::NotFound(format!("campaign {campaign_id}")))
    }

    pub async fn campaigns(
        &self,
        tenant_id: &str,
        status: Option<Status>,
    ) -> Result<Vec<CampaignRecord>, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        campaigns::list(&mut conn, tenant_id, status).await
    }

    /// Reviews a definition's messages against the built-in list and the tenant's banned words.
    pub async fn review_spec(
        &self,
        tenant_id: &str,
        spec: &CampaignSpec,
    ) -> Result<Vec<ReviewedFinding>, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        let settings = tenants::settings(&mut conn, tenant_id).await?;
        Ok(review(spec, &settings))
    }

    /// The campaign's findings, with the acceptances recorded for them.
    pub async fn review_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
    ) -> Result<Vec<ReviewedFinding>, CampaignError> {
        let campaign = self.campaign(tenant_id, campaign_id).await?;
        let mut conn = self.store.db().pool().acquire().await?;
        let settings = tenants::settings(&mut conn, tenant_id).await?;
        let acceptances = campaigns::acceptances(&mut conn, tenant_id, campaign_id).await?;
        let mut findings = review(&campaign.spec, &settings);
        for finding in &mut findings {
            finding.accepted = acceptances
                .iter()
                .find(|a| a.finding_id == finding.finding_id)
                .cloned();
        }
        Ok(findings)
    }

    pub async fn accept_finding(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        finding_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Vec<ReviewedFinding>, CampaignError> {
        if reason.trim().is_empty() {
            return Err(CampaignError::InvalidArgument(
                "reason: accepting a finding needs a reason".into(),
            ));
        }
        let findings = self.review_campaign(tenant_id, campaign_id).await?;
        if !findings.iter().any(|f| f.finding_id == finding_id) {
            return Err(CampaignError::NotFound(format!("finding {finding_id}")));
        }
        let mut conn = self.store.db().pool().acquire().await?;
        campaigns::accept_finding(
            &mut conn,
            tenant_id,
            campaign_id,
            &Acceptance {
                finding_id: finding_id.to_owned(),
                actor: actor.to_owned(),
                reason: reason.to_owned(),
            },
            micros(self.now()),
        )
        .await?;
        drop(conn);
        self.review_campaign(tenant_id, campaign_id).await
    }

    /// Starts a draft (or scheduled) campaign: it must have no open review findings. A campaign
    /// whose window opens later is scheduled until then. `members` are a launch's audience fetched
    /// from segmentation, when it was asked.
    pub async fn start(
        &self,
        change: &Change<'_>,
        members: &[String],
    ) -> Result<CampaignRecord, CampaignError> {
        let campaign = self.campaign(change.tenant_id, change.campaign_id).await?;
        if !matches!(campaign.status, Status::Draft | Status::Scheduled) {
            return Err(CampaignError::Precondition(format!(
                "a {} campaign cannot start",
                campaign.status
            )));
        }
        let open: Vec<_> = self
            .review_campaign(change.tenant_id, change.campaign_id)
            .await?
            .into_iter()
            .filter(|f| f.accepted.is_none())
            .collect();
        if let Some(first) = open.first() {
            return Err(CampaignError::Precondition(format!(
                "{} content review finding(s) not accepted, first: {:?} ({}) in variant {} step {}",
                open.len(),
                first.finding.term,
                first.finding.rule.as_str(),
                first.variant_id,
                first.step_id
            )));
        }
        for step in &campaign.spec.steps {
            if let Step::Send {
                id,
                action: Some(Action::Coupon { template }),
                ..
            } = step
            {
                match self.pool(change.tenant_id, template).await {
                    Ok(_) => {}
                    Err(CampaignError::NotFound(_)) => {
                        return Err(CampaignError::Precondition(format!(
                            "step {id}: no coupon pool {template}; create it \
                             (CouponService.CreatePool) before starting"
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let now = self.now();
        let to = match campaign.spec.window.as_ref().and_then(|w| w.start) {
            Some(start) if start > now && campaign.status == Status::Draft => Status::Scheduled,
            _ => Status::Running,
        };
        let mut tx = self.store.db().begin_write().await?;
        let moved = campaigns::transition(
            &mut tx,
            change.tenant_id,
            change.campaign_id,
            campaign.status,
            to,
            &Pause::default(),
            change.actor,
            change.reason,
            micros(now),
        )
        .await?;
        if !moved {
            return Err(CampaignError::Conflict(
                "the campaign changed meanwhile; read it again".into(),
            ));
        }
        let next_entry = match (&campaign.spec.entry, to) {
            (_, Status::Scheduled) => campaign.spec.window.as_ref().and_then(|w| w.start),
            (Entry::Schedule { .. }, _) => {
                let settings = tenants::settings(&mut tx, change.tenant_id).await?;
                campaign
                    .spec
                    .entry
                    .next_schedule_after(now, settings.pressure.time_zone)
            }
            (Entry::Launch { segment_id }, _) => {
                campaigns::add_launch_members(
                    &mut tx,
                    change.tenant_id,
                    change.campaign_id,
                    members,
                )
                .await?;
                campaigns::queue_segment_members(
                    &mut tx,
                    change.tenant_id,
                    change.campaign_id,
                    segment_id,
                )
                .await?;
                None
            }
            _ => None,
        };
        campaigns::set_next_entry(
            &mut tx,
            change.tenant_id,
            change.campaign_id,
            next_entry.map(micros),
        )
        .await?;
        tx.commit().await?;
        self.campaign(change.tenant_id, change.campaign_id).await
    }

    /// Pauses by hand: a running campaign, or one a crisis paused (which then stays paused after the
    /// crisis).
    pub async fn pause(&self, change: &Change<'_>) -> Result<CampaignRecord, CampaignError> {
        let campaign = self.campaign(change.tenant_id, change.campaign_id).await?;
        if !matches!(
            campaign.status,
            Status::Running | Status::Paused | Status::Scheduled
        ) {
            return Err(CampaignError::Precondition(format!(
                "a {} campaign cannot pause",
                campaign.status
            )));
        }
        let pause = Pause {
            paused_by: Some("manual".into()),
            reason: Some(change.reason.to_owned()),
            crisis_id: None,
        };
        self.move_campaign(change, campaign.status, Status::Paused, &pause)
            .await
    }

    pub async fn resume(&self, change: &Change<'_>) -> Result<CampaignRecord, CampaignError> {
        let campaign = self.campaign(change.tenant_id, change.campaign_id).await?;
        if campaign.status != Status::Paused {
            return Err(CampaignError::Precondition(format!(
                "a {} campaign cannot resume",
                campaign.status
            )));
        }
        let mut conn = self.store.db().pool().acquire().await?;
        let settings = tenants::settings(&mut conn, change.tenant_id).await?;
        if let Some((crisis_id, severity)) = tenants::open_crises(&mut conn, change.tenant_id)
            .await?
            .into_iter()
            .find(|(_, severity)| settings.pauses(campaign.spec.kind, *severity))
        {
            return Err(CampaignError::Precondition(format!(
                "crisis {crisis_id} ({} severity) is open and pauses {} campaigns; it resumes when \
                 the crisis is resolved",
                severity.as_str(),
                campaign.spec.kind
            )));
        }
        drop(conn);
        let campaign = self
            .move_campaign(change, Status::Paused, Status::Running, &Pause::default())
            .await?;
        let mut conn = self.store.db().pool().acquire().await?;
        sends::release_held(
            &mut conn,
            change.tenant_id,
            change.campaign_id,
            micros(self.now()),
        )
        .await?;
        Ok(campaign)
    }

    /// Finishes the campaign: journeys under way end and sends not yet out are dropped.
    pub async fn finish(&self, change: &Change<'_>) -> Result<CampaignRecord, CampaignError> {
        let campaign = self.campaign(change.tenant_id, change.campaign_id).await?;
        if !matches!(
            campaign.status,
            Status::Running | Status::Paused | Status::Scheduled | Status::Draft
        ) {
            return Err(CampaignError::Precondition(format!(
                "a {} campaign cannot finish",
                campaign.status
            )));
        }
        let now_us = micros(self.now());
        let mut tx = self.store.db().begin_write().await?;
        let moved = campaigns::transition(
            &mut tx,
            change.tenant_id,
            change.campaign_id,
            campaign.status,
            Status::Finished,
            &Pause::default(),
            change.actor,
            change.reason,
            now_us,
        )
        .await?;
        if !moved {
            return Err(CampaignError::Conflict(
                "the campaign changed meanwhile; read it again".into(),
            ));
        }
        campaigns::exit_journeys(
            &mut tx,
            change.tenant_id,
            change.campaign_id,
            "campaign_finished",
            now_us,
        )
        .await?;
        campaigns::set_next_entry(&mut tx, change.tenant_id, change.campaign_id, None).await?;
        tx.commit().await?;
        // Sends still waiting are decided (dropped) by the sweep, each with its decision recorded.
        self.campaign(change.tenant_id, change.campaign_id).await
    }

    pub async fn archive(&self, change: &Change<'_>) -> Result<CampaignRecord, CampaignError> {
        let campaign = self.campaign(change.tenant_id, change.campaign_id).await?;
        if !matches!(campaign.status, Status::Finished | Status::Draft) {
            return Err(CampaignError::Precondition(format!(
                "a {} campaign cannot be archived; finish it first",
                campaign.status
            )));
        }
        self.move_campaign(change, campaign.status, Status::Archived, &Pause::default())
            .await
    }

    async fn move_campaign(
        &self,
        change: &Change<'_>,
        from: Status,
        to: Status,
        pause: &Pause,
    ) -> Result<CampaignRecord, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        let moved = campaigns::transition(
            &mut conn,
            change.tenant_id,
            change.campaign_id,
            from,
            to,
            pause,
            change.actor,
            change.reason,
            micros(self.now()),
        )
        .await?;
        if !moved {
            return Err(CampaignError::Conflict(
                "the campaign changed meanwhile; read it again".into(),
            ));
        }
        drop(conn);
        self.campaign(change.tenant_id, change.campaign_id).await
    }

    pub async fn settings(&self, tenant_id: &str) -> Result<TenantSettings, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        tenants::settings(&mut conn, tenant_id).await
    }

    /// Replaces the tenant's settings; a lowered crisis threshold pauses at once, a raised one
    /// resumes what it paused.
    pub async fn set_settings(
        &self,
        tenant_id: &str,
        settings: &TenantSettings,
    ) -> Result<(), CampaignError> {
        settings
            .validate()
            .map_err(CampaignError::InvalidArgument)?;
        let mut batch = Batch::new(self.now());
        let mut tx = self.store.db().begin_write().await?;
        tenants::set_settings(&mut tx, tenant_id, settings).await?;
        self.settle_pauses(&mut tx, &mut batch, tenant_id).await?;
        self.commit(tx, batch).await?;
        Ok(())
    }

    pub async fn put_faq(&self, tenant_id: &str, entry: &FaqEntry) -> Result<i64, CampaignError> {
        faq::validate(entry).map_err(CampaignError::InvalidArgument)?;
        let now_us = micros(self.now());
        let mut conn = self.store.db().pool().acquire().await?;
        tenants::put_faq(&mut conn, tenant_id, entry, now_us).await?;
        self.faqs_changed(tenant_id);
        Ok(now_us)
    }

    pub async fn faqs(&self, tenant_id: &str) -> Result<Vec<(FaqEntry, i64)>, CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        tenants::faqs(&mut conn, tenant_id).await
    }

    pub async fn delete_faq(&self, tenant_id: &str, faq_id: &str) -> Result<(), CampaignError> {
        let mut conn = self.store.db().pool().acquire().await?;
        if !tenants::delete_faq(&mut conn, tenant_id, faq_id).await? {
            return Err(CampaignError::NotFound(format!("faq {faq_id}")));
        }
        self.faqs_changed(tenant_id);
        Ok(())
    }
}

/// Every finding on every variant's message of every send step.
fn review(spec: &CampaignSpec, settings: &TenantSettings) -> Vec<ReviewedFinding> {
    let reviewer = Reviewer::new(&settings.banned_words);
    let category: ProductCategory = spec
        .product_category
        .as_deref()
        .and_then(|c| serde_json::from_value(serde_json::Value::String(c.to_owned())).ok())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (variant_id, step_id, text) in spec.messages() {
        for finding in reviewer.review(spec.kind, category, text) {
            let mut hash = Sha256::new();
            for part in [variant_id, step_id, finding.term.as_str()] {
                hash.update(part.as_bytes());
                hash.update([0]);
            }
            hash.update(finding.start.to_le_bytes());
            let finding_id = hex::encode(&hash.finalize()[..8]);
            out.push(ReviewedFinding {
                finding_id,
                variant_id: variant_id.to_owned(),
                step_id: step_id.to_owned(),
                finding,
                accepted: None,
            });
        }
    }
    out
}
