//! `ecs-deployment`: deployment, service-action and task events → classify → gather evidence →
//! render → the notification pipeline. Evidence never blocks the message.

use crate::config::DeploymentConfig;
use crate::decide::{DeploymentVerdict, classify, service_rolled_back_to};
use crate::evidence::{FailedDeployment, gather_failed};
use crate::render;
use fleetguard::config::CommonConfig;
use fleetguard::events::ecs::EcsEventType;
use fleetguard::notify::{Deadline, NotificationKind};
use fleetguard::observe::{Action, Metrics, Outcome};
use fleetguard::ports::{Notify, Service, Services};
use fleetguard::serve::{Error, Function, Summary};
use fleetguard::{Detail, Event, EventKind};
use std::time::Duration;

#[derive(Debug)]
pub struct Handler<S, N> {
    pub common: CommonConfig,
    pub config: DeploymentConfig,
    pub ecs: S,
    pub notifier: N,
}

impl<S: Services, N: Notify> Handler<S, N> {
    /// The service as it is now; a failure is named in the message, never blocks it.
    async fn service_now(
        &self,
        cluster: Option<&str>,
        service: &str,
    ) -> (Option<Service>, Option<String>) {
        let Some(cluster) = cluster else {
            return (
                None,
                Some("service details (the event's ARN does not name the cluster)".to_owned()),
            );
        };
        match self.ecs.service(cluster, service).await {
            Ok(Some(s)) => (Some(s), None),
            Ok(None) => (None, Some("service details (service not found)".to_owned())),
            Err(e) => {
                tracing::warn!(error = %e, "could not describe the service");
                (None, Some(format!("service details ({e})")))
            }
        }
    }
}

impl<S: Services, N: Notify> Function for Handler<S, N> {
    const NAME: &'static str = "ecs-deployment";

    fn accepts(kind: EventKind) -> bool {
        matches!(
            kind,
            EventKind::DeploymentStateChange
                | EventKind::ServiceAction
                | EventKind::TaskStateChange
        )
    }

    fn metrics_namespace(&self) -> &str {
        &self.common.metrics_namespace
    }

    async fn handle(
        &self,
        event: &Event,
        mut summary: Summary,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, Error> {
        let region = event.envelope.region.as_str();
        let mut remember = None;
        let mut resolves = None;
        let n = match &event.detail {
            Detail::DeploymentStateChange(d) => match classify(d) {
                DeploymentVerdict::Failed => {
                    let f = match &d.service.cluster {
                        Some(c) => {
                            gather_failed(&self.ecs, c, &d.service.service, &d.detail.deployment_id)
                                .await
                        }
                        None => FailedDeployment {
                            missing: vec![
                                "everything (the event's ARN does not name the cluster)".into(),
                            ],
                            ..Default::default()
                        },
                    };
                    if !f.missing.is_empty() {
                        metrics.action(Action::Enrich, Outcome::Failed);
                    }
                    render::render_failed(d, &f, region)
                }
                DeploymentVerdict::RollbackStarted { to } => {
                    let (svc, _) = self
                        .service_now(d.service.cluster.as_deref(), &d.service.service)
                        .await;
                    let to = to.unwrap_or_else(|| d.detail.deployment_id.clone());
                    remember = Some(format!("rollback|{}|{to}", d.service.arn));
                    render::render_rollback_started(d, svc.as_ref(), region)
                }
                DeploymentVerdict::Completed => {
                    let (svc, _) = self
                        .service_now(d.service.cluster.as_deref(), &d.service.service)
                        .await;
                    let rollback = self
                        .notifier
                        .remembered(&format!(
                            "rollback|{}|{}",
                            d.service.arn, d.detail.deployment_id
                        ))
                        .await
                        || svc
                            .as_ref()
                            .is_some_and(|s| service_rolled_back_to(s, &d.detail.deployment_id));
                    // A completion resolves the service's open deployment incident (a failure
                    // without rollback, fixed by a later deployment), whatever REPORT_SUCCESS says:
                    // a PagerDuty alert must not stay open.
                    let open = open_fact(&d.service.arn);
                    resolves = self.notifier.remembered(&open).await.then_some(open);
                    if !rollback && !self.config.report_success && resolves.is_none() {
                        summary.outcome =
                            "ignored: successful deployments are not reported (REPORT_SUCCESS)"
                                .into();
                        return Ok(summary);
                    }
                    render::render_completed(d, rollback, svc.as_ref(), region)
                }
                DeploymentVerdict::Ignore(why) => {
                    summary.outcome = format!("ignored: {why}");
                    return Ok(summary);
                }
            },
            Detail::ServiceAction(a) => {
                if a.detail.event_type == EcsEventType::Info {
                    summary.outcome = format!("ignored: {} is informational", a.detail.event_name);
                    return Ok(summary);
                }
                let (svc, missing) = self
                    .service_now(a.service.cluster.as_deref(), &a.service.service)
                    .await;
                match render::render_service_action(
                    a,
                    svc.as_ref(),
                    missing,
                    Duration::from_secs(self.config.service_alert_window_secs),
                    region,
                ) {
                    Some(n) => n,
                    None => {
                        summary.outcome = "ignored: not a warning".into();
                        return Ok(summary);
                    }
                }
            }
            Detail::TaskStateChange(t) => match render::render_task(t, &self.config, region) {
                Some(n) => n,
                None => {
                    summary.outcome = "ignored: not a reported task stop".into();
                    return Ok(summary);
                }
            },
            _ => return Ok(summary),
        };
        let kind = n.kind;
        if matches!(
            kind,
            NotificationKind::DeploymentFailed | NotificationKind::RollbackStarted
        ) && let Detail::DeploymentStateChange(d) = &event.detail
        {
            // Before sending: the deployment failed whether or not the message gets out.
            self.notifier
                .remember(&open_fact(&d.service.arn), Duration::from_secs(7 * 86_400))
                .await;
        }
        let report = match self
            .notifier
            .send(n.from_event(Self::NAME, event), deadline)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                metrics.action(Action::Notify, Outcome::Failed);
                return Err(e.into());
            }
        };
        metrics.action(Action::Notify, Outcome::Done);
        if let Some(fact) = resolves {
            self.notifier.forget(&fact).await;
        }
        if let Some(fact) = remember {
            self.notifier
                .remember(&fact, Duration::from_secs(2 * 86_400))
                .await;
        }
        summary.outcome = if report.route.dropped {
            format!("dropped by rule {}", report.route.rules.join(", "))
        } else if report.delivered.is_empty() && !report.already_delivered.is_empty() {
            format!("{}: already delivered", kind.as_str())
        } else {
            format!("notified: {}", kind.as_str())
        };
        summary.actions = report.actions().collect();
        Ok(summary)
    }
}

/// The fact that a service's deployment incident is open (a failure or rollback was announced).
fn open_fact(service_arn: &impl std::fmt::Display) -> String {
    format!("open|{}", render::deployment_incident(service_arn))
}
