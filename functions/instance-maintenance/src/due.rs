//! The schedules' payloads when due: out of service before the window (tried again until it
//! opens; too late, told), and back in service after a reboot's window.

use crate::decide::{
    CLOSED, DUE_RETRY_SECS, health_order_key, nothing_to_take_out, retry_schedule_name,
    schedule_name, window_end,
};
use crate::handler::{Handler, Part, maintenance_incident, schedule_input};
use crate::render::{InstanceMessage, render, target_list, when};
use crate::take_out::removed_fields;
use fleetguard::Event;
use fleetguard::events::MaintenanceDue;
use fleetguard::events::health::MaintenanceStep;
use fleetguard::notify::{NotificationKind, Phase, Severity};
use fleetguard::observe::{Action, Metrics, Outcome};
use fleetguard::out_of_service::Findings;
use fleetguard::ports::{
    AutoScalingGroups, ContainerInstances, DrainReason, Notify, OneTimeSchedule, Registration,
    Schedules, TargetGroups,
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
    /// The one-time schedule came due: take the instance out of service now.
    /// A schedule came due: unless the event closed since or the window is over (then it is
    /// only told), take the instance out of service. Scheduler invokes asynchronously, so a
    /// failure gets Lambda's two retries and no more: the schedule is put again a few minutes
    /// later, while the window has not started, so a failure at the due time is never dropped.
    pub(crate) async fn on_due(
        &self,
        event: &Event,
        due: &MaintenanceDue,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let instance = &due.instance_id;
        let now = self.clock.now();
        let closed = self
            .notifier
            .version(&health_order_key(&due.event_arn))
            .await
            .is_some_and(|(_, label)| label == CLOSED);
        if closed {
            return Ok(Part {
                outcome: Some(format!(
                    "{instance}: ignored, AWS Health closed the event since"
                )),
                ..Part::default()
            });
        }
        let start = due.window_start.timestamp();
        let end = window_end(start, due.window_end.map(|t| t.timestamp()));
        if now >= end {
            return Ok(self.too_late(event, due, end));
        }
        let mut result = self.take_out_when_due(event, due, metrics).await;
        let failed = result.as_ref().map_or(true, |p| !p.errors.is_empty());
        if failed && !self.common.dry_run && now + DUE_RETRY_SECS < start {
            let out_name = schedule_name(&due.event_arn, instance, MaintenanceStep::OutOfService);
            let name = retry_schedule_name(&out_name, &event.envelope.id);
            let at = now + DUE_RETRY_SECS;
            let s = OneTimeSchedule {
                name: name.clone(),
                at,
                input: schedule_input(due, &name, at, event),
                description: format!(
                    "fleetguard: {instance} before {}, again",
                    due.kind().describe()
                ),
            };
            match self.schedules.put(&s).await {
                Ok(_) => {
                    tracing::warn!(schedule = %name, at, "taking out of service failed; tried again by the schedule");
                    if let Ok(p) = &mut result {
                        p.actions
                            .push(format!("schedule {name} tries again at {}", when(at)));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, schedule = %name, "the retry could not be scheduled")
                }
            }
        }
        result
    }

    /// The window is over: nothing is changed; people are told the step came too late.
    pub(crate) fn too_late(&self, event: &Event, due: &MaintenanceDue, end: i64) -> Part {
        let instance = &due.instance_id;
        let kind = due.kind();
        let mut part = Part {
            outcome: Some(format!(
                "{instance}: too late, the window ended at {}",
                when(end)
            )),
            ..Part::default()
        };
        part.messages.push(render(InstanceMessage {
            kind: NotificationKind::ScheduledMaintenance,
            severity: Severity::Medium,
            title: format!("Too late to take {instance} out before its {}", kind.describe()),
            summary: format!(
                "The step due before AWS's {} of {instance} ran after the window ended ({}): nothing was changed. Check the instance and what ran on it.",
                kind.describe(),
                when(end)
            ),
            dedupe_key: format!("maintenance-late|{}|{instance}", due.event_arn),
            instance: instance.as_str(),
            findings: &Findings::default(),
            fields: vec![("Event type".to_owned(), due.event_type_code.clone())],
            region: &event.envelope.region,
            health_event_arn: Some(&due.event_arn),
        }));
        part
    }

    pub(crate) async fn take_out_when_due(
        &self,
        event: &Event,
        due: &MaintenanceDue,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let instance = &due.instance_id;
        let kind = due.kind();
        let findings = self.find(instance).await?;
        let mut part = Part::default();
        if !findings.managed(&self.config.scope) {
            part.outcome = Some(format!("{instance}: ignored, not in a managed group"));
            return Ok(part);
        }
        if nothing_to_take_out(&findings) {
            // Gone since (replaced, terminated), or never in anything fleetguard manages.
            part.outcome = Some(format!(
                "{instance}: nothing to take out of service (in no group, searched cluster or target group)"
            ));
            return Ok(part);
        }
        let how = self.how(kind, &findings);
        let r = self
            .take_out(instance, due, kind, &findings, event, metrics, &mut part)
            .await;
        let dry_run = self.common.dry_run;
        let mut fields = vec![(
            "Window".to_owned(),
            format!(
                "{} – {}",
                when(due.window_start.timestamp()),
                when(window_end(
                    due.window_start.timestamp(),
                    due.window_end.map(|t| t.timestamp())
                ))
            ),
        )];
        fields.push(("Event type".to_owned(), due.event_type_code.clone()));
        fields.extend(removed_fields(&findings, r.as_ref(), dry_run));
        part.outcome = Some(format!(
            "{instance}: {}",
            if dry_run { "dry run" } else { "out of service" }
        ));
        part.messages.push(
            render(InstanceMessage {
            kind: NotificationKind::ScheduledMaintenance,
            severity: Severity::High,
            title: format!(
                "Before {}: {instance} {}",
                kind.describe(),
                if dry_run {
                    "would be taken out of service (dry run)"
                } else {
                    "taken out of service"
                }
            ),
            summary: format!(
                "AWS's {} of {instance} starts at {}. fleetguard {}.",
                kind.describe(),
                when(due.window_start.timestamp()),
                match &r {
                    None => format!("would {how} it"),
                    Some(r) if r.replaced == Some(true) =>
                        "drained it, and terminated it in its group so that a replacement launches now"
                            .to_owned(),
                    Some(_) => "drained it".to_owned(),
                }
            ),
            dedupe_key: format!("maintenance-due|{}|{instance}", due.event_arn),
            instance: instance.as_str(),
            findings: &findings,
            fields,
            region: &event.envelope.region,
            health_event_arn: Some(&due.event_arn),
        })
            .incident(maintenance_incident(&due.event_arn, instance.as_str(), dry_run), Phase::Updated),
        );
        Ok(part)
    }

    /// After a reboot's window: register the targets again and set the container instance
    /// ACTIVE (only when the drain is ours).
    pub(crate) async fn on_return(
        &self,
        event: &Event,
        due: &MaintenanceDue,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let instance = &due.instance_id;
        let mut part = Part::default();
        let findings = self.find(instance).await?;
        if !findings.managed(&self.config.scope) {
            part.outcome = Some(format!("{instance}: ignored, not in a managed group"));
            return Ok(part);
        }
        if self.common.dry_run {
            part.outcome = Some(format!("{instance}: dry run, nothing put back"));
            return Ok(part);
        }
        let regs: Vec<Registration> = due
            .targets
            .iter()
            .map(|t| Registration {
                target_group_arn: t.target_group_arn.clone(),
                port: t.port,
                state: String::new(),
            })
            .collect();
        let mut done = Vec::new();
        if !regs.is_empty() {
            match self.fleet.elbv2.register(instance.as_str(), &regs).await {
                Ok(()) => {
                    metrics.action(Action::RegisterTargets, Outcome::Done);
                    done.push(format!("registered in {}", target_list(&regs)));
                }
                // Terminated or stopped since, or the target group deleted: there is nothing to
                // put back, and retrying for a day would not change it.
                Err(e)
                    if matches!(
                        e.code.as_deref(),
                        Some("InvalidTarget" | "TargetGroupNotFound")
                    ) =>
                {
                    tracing::warn!(error = %e, "targets not registered again");
                    part.outcome = Some(format!(
                        "{instance}: not registered again ({})",
                        e.code.as_deref().unwrap_or_default()
                    ));
                    return Ok(part);
                }
                Err(e) => part.errors.push(e.to_string()),
            }
        }
        // Ours to put back: marked for maintenance, or DRAINING without a mark (this return
        // schedule exists only because we drained it, and its mark could not be written: found
        // by the fleet simulator with PutAttributes down across both tries).
        if let Some(ci) = &findings.container_instance
            && match ci.drain_mark {
                Some(m) => m.reason == DrainReason::Maintenance,
                None => ci.status == "DRAINING",
            }
        {
            match self.fleet.ecs.activate(ci).await {
                Ok(()) => {
                    metrics.action(Action::ActivateContainerInstance, Outcome::Done);
                    done.push(format!("container instance {} ACTIVE", ci.arn));
                }
                Err(e) => part.errors.push(e.to_string()),
            }
        }
        part.actions.extend(done.iter().cloned());
        part.outcome = Some(format!("{instance}: back in service"));
        if done.is_empty() {
            return Ok(part);
        }
        part.messages.push(
            render(InstanceMessage {
                kind: NotificationKind::ScheduledMaintenance,
                severity: Severity::Info,
                title: format!(
                    "After {}: {instance} back in service",
                    due.kind().describe()
                ),
                summary: format!(
                    "The maintenance window of {instance} is over: {}.",
                    done.join(", ")
                ),
                dedupe_key: format!("maintenance-back|{}|{instance}", due.event_arn),
                instance: instance.as_str(),
                findings: &findings,
                fields: Vec::new(),
                region: &event.envelope.region,
                health_event_arn: Some(&due.event_arn),
            })
            .incident(
                maintenance_incident(&due.event_arn, instance.as_str(), self.common.dry_run),
                Phase::Resolved,
            ),
        );
        Ok(part)
    }
}
