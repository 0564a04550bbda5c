//! A Health scheduled change, for each of its instances: a schedule before the window, out of
//! service now, told only, or withdrawn when the event closes.

use crate::decide::{
    HealthPlan, MIN_SCHEDULE_AHEAD_SECS, nothing_to_take_out, plan_for_instance, schedule_name,
    window_end,
};
use crate::handler::{Handler, OPEN_FACT_TTL, Part, maintenance_incident, schedule_input};
use crate::render::{InstanceMessage, render, when};
use crate::take_out::removed_fields;
use fleetguard::Event;
use fleetguard::events::health::MaintenanceStep;
use fleetguard::events::{HealthEvent, MaintenanceDue};
use fleetguard::ids::InstanceId;
use fleetguard::notify::{NotificationKind, Phase, Severity};
use fleetguard::observe::{Action, FleetMetric, Metrics, Outcome};
use fleetguard::ports::{
    AutoScalingGroups, ContainerInstances, Notify, OneTimeSchedule, ScheduleWrite, Schedules,
    TargetGroups,
};
use fleetguard::serve::Error;

impl<E, T, A, S, N> Handler<E, T, A, S, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    S: Schedules,
    N: Notify,
{
    /// A scheduled change, for one of its instances: `plan` is the event's (`plan_health`).
    pub(crate) async fn on_health(
        &self,
        event: &Event,
        h: &HealthEvent,
        plan: &HealthPlan,
        now: i64,
        instance: &InstanceId,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let dry_run = self.common.dry_run;
        let findings = self.find(instance).await?;
        let mut part = Part::default();
        let incident = maintenance_incident(&h.event_arn, instance.as_str(), dry_run);
        // An incident opened for it is resolved when the event closes, whatever became of the
        // instance since (replaced, out of its group, its schedule run or never needed).
        let open_fact = format!("open|{incident}");
        let was_open =
            matches!(plan, HealthPlan::Closed) && self.notifier.remembered(&open_fact).await;
        if !findings.managed(&self.config.scope) && !was_open {
            part.outcome = Some(format!("{instance}: ignored, not in a managed group"));
            return Ok(part);
        }
        let plan = plan_for_instance(plan, &findings);
        let kind = h.kind();
        let start = h.start.map(|t| t.timestamp()).unwrap_or(now);
        let end = window_end(start, h.end.map(|t| t.timestamp()));
        let due = MaintenanceDue {
            step: MaintenanceStep::OutOfService,
            instance_id: instance.clone(),
            event_arn: h.event_arn.clone(),
            event_type_code: h.event_type_code.clone(),
            window_start: h.start.unwrap_or_default(),
            window_end: h.end,
            targets: Vec::new(),
        };
        let out_name = schedule_name(&h.event_arn, instance, MaintenanceStep::OutOfService);
        let retry_name = format!("{out_name}-r");
        let back_name = schedule_name(&h.event_arn, instance, MaintenanceStep::Return);
        let region = h
            .event_region
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| event.envelope.region.clone());
        let what = kind.describe();
        let mut fields = vec![
            (
                "Window".to_owned(),
                format!("{} – {}", when(start), when(end)),
            ),
            ("Event type".to_owned(), h.event_type_code.clone()),
        ];
        let (title, summary, severity) = match &plan {
            HealthPlan::Ignore(why) => {
                part.outcome = Some(format!("{instance}: ignored, {why}"));
                return Ok(part);
            }
            HealthPlan::Closed => {
                // The window is over or cancelled: its schedule goes; a reboot's drain is put
                // back now rather than at the end of a window that will not happen.
                let mut changed = Vec::new();
                if !dry_run {
                    for name in [&out_name, &retry_name] {
                        if self.schedules.delete(name).await.map_err(Error::from)? {
                            changed.push(format!("schedule {name} deleted"));
                        }
                    }
                    if let Some(mut back) = self.schedules.schedule(&back_name).await? {
                        back.at = now + MIN_SCHEDULE_AHEAD_SECS;
                        self.schedules.put(&back).await?;
                        changed.push(format!("schedule {back_name} moved to now"));
                    }
                }
                part.actions.extend(changed.iter().cloned());
                if changed.is_empty() && !was_open {
                    part.outcome = Some(format!("{instance}: closed, nothing pending"));
                    return Ok(part);
                }
                part.outcome = Some(format!("{instance}: closed"));
                (
                    format!("Scheduled {what} of {instance} closed"),
                    format!(
                        "AWS Health closed the scheduled {what} of {instance}: what fleetguard had planned for it is withdrawn."
                    ),
                    Severity::Info,
                )
            }
            HealthPlan::NotifyOnly => {
                metrics.fleet(FleetMetric::ScheduledMaintenance, &findings.pool());
                part.outcome = Some(format!("{instance}: notified"));
                let why = if kind.takes_instance_away() && nothing_to_take_out(&findings) {
                    "It is in no Auto Scaling group, searched ECS cluster or target group: nothing to take out of service.".to_owned()
                } else if kind.takes_instance_away() {
                    "MAINTENANCE_ACTION=notify: nothing is changed.".to_owned()
                } else {
                    "The instance stays; it may be briefly affected.".to_owned()
                };
                (
                    format!("Scheduled {what}: {instance} on {}", when(start)),
                    format!("AWS scheduled {what} for {instance}. {why}"),
                    Severity::Medium,
                )
            }
            HealthPlan::Schedule { at } => {
                metrics.fleet(FleetMetric::ScheduledMaintenance, &findings.pool());
                let how = self.how(kind, &findings);
                fields.push(("Out of service at".to_owned(), when(*at)));
                if dry_run {
                    metrics.action(Action::DrainInstance, Outcome::DryRun);
                    part.actions
                        .push(format!("dry run: no schedule {out_name} at {}", when(*at)));
                    part.outcome = Some(format!("{instance}: dry run"));
                } else {
                    let s = OneTimeSchedule {
                        name: out_name.clone(),
                        at: *at,
                        input: schedule_input(&due, &out_name, *at, event),
                        description: format!("fleetguard: {how} {instance} before {what}"),
                    };
                    let w = self.schedules.put(&s).await?;
                    // A retry of a failed due step for an earlier window is not needed any more.
                    if self.schedules.delete(&retry_name).await? {
                        part.actions.push(format!("schedule {retry_name} deleted"));
                    }
                    let verb = match w {
                        ScheduleWrite::Created => "created",
                        ScheduleWrite::Updated => "moved",
                        ScheduleWrite::Unchanged => "already there",
                    };
                    part.actions
                        .push(format!("schedule {out_name} at {} {verb}", when(*at)));
                    part.outcome = Some(format!("{instance}: scheduled"));
                }
                (
                    format!("Scheduled {what}: {instance} on {}", when(start)),
                    format!(
                        "AWS scheduled {what} for {instance} at {}. fleetguard will {how} it at {}, {} before the window{}.",
                        when(start),
                        when(*at),
                        fleetguard::time::human_duration(self.config.lead_secs),
                        if dry_run {
                            " (DRY_RUN: no schedule was made)"
                        } else {
                            ""
                        }
                    ),
                    Severity::High,
                )
            }
            HealthPlan::Now => {
                metrics.fleet(FleetMetric::ScheduledMaintenance, &findings.pool());
                let how = self.how(kind, &findings);
                if !dry_run {
                    // A window moved closer: its schedules are not needed any more.
                    for name in [&out_name, &retry_name] {
                        if self.schedules.delete(name).await? {
                            part.actions.push(format!("schedule {name} deleted"));
                        }
                    }
                }
                let r = self
                    .take_out(instance, &due, kind, &findings, event, metrics, &mut part)
                    .await;
                fields.extend(removed_fields(&findings, r.as_ref(), dry_run));
                part.outcome = Some(format!(
                    "{instance}: {}",
                    if dry_run { "dry run" } else { "out of service" }
                ));
                (
                    format!("Scheduled {what}: {instance} taken out of service"),
                    format!(
                        "AWS scheduled {what} for {instance} at {}, closer than the lead time of {}: {}.",
                        when(start),
                        fleetguard::time::human_duration(self.config.lead_secs),
                        if dry_run {
                            format!("DRY_RUN is set, it would {how} it now")
                        } else {
                            format!("fleetguard will not wait, and is to {how} it now")
                        }
                    ),
                    Severity::High,
                )
            }
        };
        let status = h.status.as_str().to_owned();
        part.messages.push(
            render(InstanceMessage {
                kind: NotificationKind::ScheduledMaintenance,
                severity,
                title,
                summary,
                dedupe_key: format!("maintenance|{}|{instance}|{start}|{status}", h.event_arn),
                instance: instance.as_str(),
                findings: &findings,
                fields,
                region: &region,
                health_event_arn: Some(&h.event_arn),
            })
            .incident(
                incident,
                if status == "closed" {
                    Phase::Resolved
                } else {
                    Phase::Opened
                },
            ),
        );
        if status == "closed" {
            self.notifier.forget(&open_fact).await;
        } else {
            self.notifier.remember(&open_fact, OPEN_FACT_TTL).await;
        }
        Ok(part)
    }
}
