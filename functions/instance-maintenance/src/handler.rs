//! `instance-maintenance`: a Health scheduled change → find each instance → decide → a
//! one-time schedule before the window (or out of service now) → one message per event and
//! instance. The schedule's payload comes back here when due; an instance stopping is taken out
//! of service at once.

use crate::config::MaintenanceConfig;
use crate::decide::{
    CLOSED, HEALTH_ORDER_TTL, HealthPlan, health_order_key, plan_health, stale_health,
};
use fleetguard::config::CommonConfig;
use fleetguard::events::health::MaintenanceStep;
use fleetguard::events::{MAINTENANCE_SOURCE, MaintenanceDue, SCHEDULED_MAINTENANCE};
use fleetguard::ids::InstanceId;
use fleetguard::notify::{Deadline, Notification};
use fleetguard::observe::{Action, Metrics, Outcome};
use fleetguard::out_of_service::{DrainOutcome, Findings, Fleet, OnSight, find};
use fleetguard::ports::{
    AutoScalingGroups, AwsError, ContainerInstances, Notify, Schedules, TargetGroups,
};
use fleetguard::serve::{Error, Function, Summary};
use fleetguard::{Detail, Event, EventKind};

#[derive(Debug)]
pub struct Handler<E, T, A, S, N> {
    pub common: CommonConfig,
    pub config: MaintenanceConfig,
    pub fleet: Fleet<E, T, A>,
    pub schedules: S,
    pub notifier: N,
    pub clock: std::sync::Arc<dyn fleetguard::ports::Clock>,
}

/// One instance's part of an invocation: summary lines, its message, and what failed.
#[derive(Debug, Default)]
pub(crate) struct Part {
    pub(crate) actions: Vec<String>,
    pub(crate) messages: Vec<Notification>,
    pub(crate) errors: Vec<String>,
    pub(crate) outcome: Option<String>,
}

/// What taking an instance out of service did.
#[derive(Debug, Default)]
pub(crate) struct Removed {
    pub(crate) drained: DrainOutcome,
    /// `Some(true)` when terminated for a replacement, `Some(false)` when it was already going.
    pub(crate) replaced: Option<bool>,
    /// The schedule that puts a rebooted instance back.
    pub(crate) return_at: Option<i64>,
}

impl<E, T, A, S, N> Handler<E, T, A, S, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
{
    /// Everything about `instance` in this function's scope. Maintenance and stops leave time
    /// to decide first: nothing is drained on sight.
    pub(crate) async fn find(&self, instance: &InstanceId) -> Result<Findings, AwsError> {
        let (findings, _) = find(
            &self.fleet,
            &self.config.scope,
            instance,
            OnSight::Wait,
            None,
        )
        .await?;
        Ok(findings)
    }
}

/// The payload a schedule invokes the function with: an event of our own source, so it parses
/// like any other and can be replayed by hand.
pub fn schedule_input(due: &MaintenanceDue, name: &str, at: i64, event: &Event) -> String {
    serde_json::json!({
        "version": "0",
        "id": name,
        "detail-type": SCHEDULED_MAINTENANCE,
        "source": MAINTENANCE_SOURCE,
        "account": event.envelope.account,
        "time": chrono::DateTime::from_timestamp(at, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": event.envelope.region,
        "resources": [],
        "detail": due,
    })
    .to_string()
}

impl<E, T, A, S, N> Function for Handler<E, T, A, S, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    S: Schedules,
    N: Notify,
{
    const NAME: &'static str = "instance-maintenance";

    fn accepts(kind: EventKind) -> bool {
        matches!(
            kind,
            EventKind::HealthEvent | EventKind::InstanceStateChange | EventKind::MaintenanceDue
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
        let parts = match &event.detail {
            Detail::HealthEvent(h) => {
                // One time read for every instance of the event.
                let now = self.clock.now();
                let plan = plan_health(h, now, &self.config);
                if let HealthPlan::Ignore(why) = &plan {
                    tracing::info!(reason = %why, "Health event acknowledged");
                    summary.outcome = format!("ignored: {why}");
                    return Ok(summary);
                }
                if h.instances.is_empty() {
                    tracing::warn!(event_arn = %h.event_arn, "EC2 scheduled change without an instance");
                    summary.outcome = "ignored: no EC2 instance among the affected entities".into();
                    return Ok(summary);
                }
                // Applied in order, per event: a stale or late update never acts, and nothing
                // acts after the close. Versions: the update's lastUpdatedTime, else the event's
                // time.
                let closing = matches!(plan, HealthPlan::Closed);
                let version = h
                    .last_updated
                    .or_else(|| event.envelope.time.at())
                    .map(|t| t.timestamp());
                let order_key = health_order_key(&h.event_arn);
                if let Some(v) = version
                    && let Some((seen, label)) = self.notifier.version(&order_key).await
                    && let Some(why) = stale_health(v, closing, seen, &label)
                {
                    tracing::info!(event_arn = %h.event_arn, reason = %why, "Health update acknowledged, not acted on");
                    summary.outcome = format!("ignored: {why}");
                    return Ok(summary);
                }
                let mut parts = Vec::new();
                for instance in &h.instances {
                    parts.push(
                        self.on_health(event, h, &plan, now, instance, metrics)
                            .await?,
                    );
                }
                if let Some(v) = version
                    && parts.iter().all(|p| p.errors.is_empty())
                {
                    let label = if closing { CLOSED } else { "open" };
                    self.notifier
                        .keep_version(&order_key, v, label, HEALTH_ORDER_TTL)
                        .await;
                }
                parts
            }
            Detail::InstanceStateChange(c) => vec![self.on_state_change(event, c, metrics).await?],
            Detail::MaintenanceDue(d) => match d.step {
                MaintenanceStep::OutOfService => vec![self.on_due(event, d, metrics).await?],
                MaintenanceStep::Return => vec![self.on_return(event, d, metrics).await?],
            },
            _ => return Ok(summary),
        };
        let mut outcomes = Vec::new();
        let mut errors = Vec::new();
        let mut delivery = Vec::new();
        for p in parts {
            summary.actions.extend(p.actions);
            errors.extend(p.errors);
            outcomes.extend(p.outcome);
            // Taking out of service came first; a message that fails fails only itself.
            for n in p.messages {
                match self
                    .notifier
                    .send(n.from_event(Self::NAME, event), deadline)
                    .await
                {
                    Ok(r) => {
                        metrics.action(Action::Notify, Outcome::Done);
                        summary.actions.extend(r.actions());
                    }
                    Err(e) => {
                        metrics.action(Action::Notify, Outcome::Failed);
                        delivery.push(e.to_string());
                    }
                }
            }
        }
        summary.outcome = outcomes.join("; ");
        match Error::after("DrainFailed", &errors, &delivery) {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }
}

/// How long an opened maintenance incident is remembered for its `closed` event: AWS announces
/// scheduled changes up to weeks ahead.
pub(crate) const OPEN_FACT_TTL: std::time::Duration = std::time::Duration::from_secs(60 * 86_400);

/// The incident of one instance's scheduled change: announced, taken out, back (or closed).
pub(crate) fn maintenance_incident(event_arn: &str, instance: &str, dry_run: bool) -> String {
    format!(
        "maintenance|{event_arn}|{instance}{}",
        if dry_run { "|dry-run" } else { "" }
    )
}
