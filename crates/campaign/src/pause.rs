//! Crisis pauses. An alert on `socialops.alerts.v1` for a crisis at or above the tenant's pausing
//! severity pauses its `ad` campaigns (and `content` ones at the content threshold) with the crisis
//! as the reason; when no open crisis calls for the pause any more, the campaigns it paused resume,
//! unless someone paused them by hand meanwhile. Sends decided for a paused campaign are held, not
//! lost, and go out on resume.

use socialops_proto::alerts::v1::{AlertKind, CrisisAlert, CrisisState};
use sqlx::AnyConnection;

use crate::domain::campaign::{Kind, Status};
use crate::domain::tenant::{Severity, TenantSettings};
use crate::engine::{Batch, BatchOutcome, Engine, first_seen};
use crate::error::CampaignError;
use crate::store::campaigns::{self, Pause};
use crate::store::{sends, tenants};

/// Who the service records as the actor of the changes it makes itself.
pub const SYSTEM_ACTOR: &str = "system";

impl Engine {
    /// Applies a batch of crisis alerts.
    pub async fn handle_alerts(
        &self,
        alerts: &[CrisisAlert],
    ) -> Result<BatchOutcome, CampaignError> {
        let now = self.now();
        let mut batch = Batch::new(now);
        let mut tx = self.store.db().begin_write().await?;
        let ids = alerts
            .iter()
            .map(|a| (a.tenant_id.as_str(), format!("alert:{}", a.alert_id)));
        let fresh = first_seen(&mut tx, ids, batch.now_us).await?;
        let mut touched = std::collections::BTreeSet::new();
        for (alert, fresh) in alerts.iter().zip(fresh) {
            if !fresh {
                continue;
            }
            let Some(severity) = Severity::from_code(i64::from(alert.severity)) else {
                continue;
            };
            let open = !matches!(
                CrisisState::try_from(alert.state),
                Ok(CrisisState::Resolved | CrisisState::Reviewed)
            ) && !matches!(
                AlertKind::try_from(alert.kind),
                Ok(AlertKind::Resolved | AlertKind::Reviewed)
            );
            tenants::set_crisis(
                &mut tx,
                &alert.tenant_id,
                &alert.crisis_id,
                severity,
                open,
                batch.now_us,
            )
            .await?;
            touched.insert(alert.tenant_id.clone());
        }
        for tenant_id in touched {
            self.settle_pauses(&mut tx, &mut batch, &tenant_id).await?;
        }
        self.commit(tx, batch).await
    }

    /// Brings the tenant's campaigns in line with its open crises: pauses what they call for,
    /// resumes what the service paused and no crisis calls for any more.
    pub(crate) async fn settle_pauses(
        &self,
        conn: &mut AnyConnection,
        batch: &mut Batch,
        tenant_id: &str,
    ) -> Result<(), CampaignError> {
        let settings = tenants::settings(conn, tenant_id).await?;
        let open = tenants::open_crises(conn, tenant_id).await?;
        for kind in [Kind::Ad, Kind::Content] {
            let cause = pausing_crisis(&settings, kind, &open);
            match cause {
                Some((crisis_id, severity)) => {
                    for campaign in
                        campaigns::by_kind(conn, tenant_id, kind.as_str(), Status::Running).await?
                    {
                        let pause = Pause {
                            paused_by: Some("crisis".into()),
                            reason: Some(format!(
                                "crisis {crisis_id} ({} severity)",
                                severity.as_str()
                            )),
                            crisis_id: Some(crisis_id.clone()),
                        };
                        let reason = pause.reason.clone().unwrap_or_default();
                        campaigns::transition(
                            conn,
                            tenant_id,
                            &campaign.campaign_id,
                            Status::Running,
                            Status::Paused,
                            &pause,
                            SYSTEM_ACTOR,
                            &reason,
                            batch.now_us,
                        )
                        .await?;
                        tracing::info!(tenant = tenant_id, campaign = %campaign.campaign_id, crisis = %crisis_id, "campaign paused for a crisis");
                    }
                }
                None => {
                    for campaign in
                        campaigns::by_kind(conn, tenant_id, kind.as_str(), Status::Paused).await?
                    {
                        if campaign.paused_by.as_deref() != Some("crisis") {
                            continue;
                        }
                        let resumed = campaigns::transition(
                            conn,
                            tenant_id,
                            &campaign.campaign_id,
                            Status::Paused,
                            Status::Running,
                            &Pause::default(),
                            SYSTEM_ACTOR,
                            "the crisis that paused it is over",
                            batch.now_us,
                        )
                        .await?;
                        if resumed {
                            sends::release_held(
                                conn,
                                tenant_id,
                                &campaign.campaign_id,
                                batch.now_us,
                            )
                            .await?;
                            tracing::info!(tenant = tenant_id, campaign = %campaign.campaign_id, "campaign resumed after a crisis");
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The most severe open crisis that pauses campaigns of `kind`.
fn pausing_crisis(
    settings: &TenantSettings,
    kind: Kind,
    open: &[(String, Severity)],
) -> Option<(String, Severity)> {
    open.iter()
        .find(|(_, severity)| settings.pauses(kind, *severity))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_severe_pausing_crisis_is_the_cause() {
        let settings = TenantSettings::default();
        let open = vec![
            ("c2".to_owned(), Severity::Critical),
            ("c1".to_owned(), Severity::High),
        ];
        assert_eq!(pausing_crisis(&settings, Kind::Ad, &open).unwrap().0, "c2");
        assert_eq!(pausing_crisis(&settings, Kind::Content, &open[1..]), None);
        assert_eq!(pausing_crisis(&settings, Kind::Service, &open), None);
    }
}
