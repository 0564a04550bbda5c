//! `instance-maintenance`: a Health scheduled change → find each instance → decide → a
//! one-time schedule before the window (or out of service now) → one message per event and
//! instance. The schedule's payload comes back here when due; an instance stopping is taken out
//! of service at once.

use crate::config::{MaintenanceAction, MaintenanceConfig};
use crate::decide::{
    CLOSED, DUE_RETRY_SECS, HEALTH_ORDER_TTL, HealthPlan, MIN_SCHEDULE_AHEAD_SECS,
    RETURN_DELAY_SECS, Removal, health_order_key, maintenance_mark, nothing_to_take_out,
    plan_for_instance, plan_health, removal, schedule_name, stale_health, window_end,
};
use crate::render::{InstanceMessage, render, target_list, when};
use fleetguard::config::CommonConfig;
use fleetguard::events::health::{MaintenanceStep, TargetRef};
use fleetguard::events::{
    HealthEvent, InstanceState, InstanceStateChange, MAINTENANCE_SOURCE, MaintenanceDue,
    MaintenanceKind, SCHEDULED_MAINTENANCE,
};
use fleetguard::ids::InstanceId;
use fleetguard::notify::{Deadline, Notification, NotificationKind, Phase, Severity};
use fleetguard::observe::{Action, FleetMetric, Metrics, Outcome};
use fleetguard::out_of_service::{DrainOutcome, Findings, Fleet, find, take_out_of_service};
use fleetguard::ports::{
    AutoScalingGroups, AwsError, ContainerInstances, DrainMark, DrainReason, DrainResult, Notify,
    OneTimeSchedule, Registration, ScheduleWrite, Schedules, TargetGroups,
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
struct Part {
    actions: Vec<String>,
    messages: Vec<Notification>,
    errors: Vec<String>,
    outcome: Option<String>,
}

/// What taking an instance out of service did.
#[derive(Debug, Default)]
struct Removed {
    drained: DrainOutcome,
    /// `Some(true)` when terminated for a replacement, `Some(false)` when it was already going.
    replaced: Option<bool>,
    /// The schedule that puts a rebooted instance back.
    return_at: Option<i64>,
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

impl<E, T, A, S, N> Handler<E, T, A, S, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    S: Schedules,
    N: Notify,
{
    /// A scheduled change, for one of its instances: `plan` is the event's (`plan_health`).
    async fn on_health(
        &self,
        event: &Event,
        h: &HealthEvent,
        plan: &HealthPlan,
        now: i64,
        instance: &InstanceId,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let dry_run = self.common.dry_run;
        let (findings, _) = find(&self.fleet, &self.config.scope, instance, false, None).await?;
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
                    if self
                        .schedules
                        .delete(&out_name)
                        .await
                        .map_err(Error::from)?
                    {
                        changed.push(format!("schedule {out_name} deleted"));
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
                    // A window moved closer: its schedule is not needed any more.
                    if self.schedules.delete(&out_name).await? {
                        part.actions.push(format!("schedule {out_name} deleted"));
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

    /// The one-time schedule came due: take the instance out of service now.
    /// A schedule came due: unless the event closed since or the window is over (then it is
    /// only told), take the instance out of service. Scheduler invokes asynchronously, so a
    /// failure gets Lambda's two retries and no more: the schedule is put again a few minutes
    /// later, while the window has not started, so a failure at the due time is never dropped.
    async fn on_due(
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
            let name = schedule_name(&due.event_arn, instance, MaintenanceStep::OutOfService);
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
    fn too_late(&self, event: &Event, due: &MaintenanceDue, end: i64) -> Part {
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

    async fn take_out_when_due(
        &self,
        event: &Event,
        due: &MaintenanceDue,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let instance = &due.instance_id;
        let kind = due.kind();
        let (findings, _) = find(&self.fleet, &self.config.scope, instance, false, None).await?;
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
    async fn on_return(
        &self,
        event: &Event,
        due: &MaintenanceDue,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let instance = &due.instance_id;
        let mut part = Part::default();
        let (findings, _) = find(&self.fleet, &self.config.scope, instance, false, None).await?;
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
                    metrics.action(Action::DeregisterTargets, Outcome::Done);
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
        if let Some(ci) = &findings.container_instance
            && ci
                .drain_mark
                .is_some_and(|m| m.reason == DrainReason::Maintenance)
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

    /// An instance stopping or shutting down outside any hook.
    async fn on_state_change(
        &self,
        event: &Event,
        c: &InstanceStateChange,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let instance = &c.instance_id;
        let mut part = Part::default();
        if !c.is_going_away() {
            part.outcome = Some(format!("ignored: {instance} is {}", c.state));
            return Ok(part);
        }
        let (mut findings, _) =
            find(&self.fleet, &self.config.scope, instance, false, None).await?;
        if !findings.managed(&self.config.scope) {
            part.outcome = Some(format!("ignored: {instance} is not in a managed group"));
            return Ok(part);
        }
        // Already on its way out of a target group (a scale-in's deregistration): not ours.
        findings.registrations.retain(|r| r.state != "draining");
        let draining = findings
            .container_instance
            .as_ref()
            .is_none_or(|ci| ci.status != "ACTIVE");
        if draining && findings.registrations.is_empty() {
            part.outcome = Some(format!(
                "ignored: {instance} is already out of service, or in no searched cluster or target group"
            ));
            return Ok(part);
        }
        let mark = (c.state == InstanceState::Stopping).then(|| DrainMark {
            reason: DrainReason::Stopped,
            at: self.clock.now(),
        });
        let dry_run = self.common.dry_run;
        let o = if dry_run {
            metrics.action(Action::DrainInstance, Outcome::DryRun);
            None
        } else {
            let o = take_out_of_service(&self.fleet, instance, &findings, None, mark).await;
            metrics.latency(Action::DrainInstance, event);
            self.count(&o, metrics, &mut part);
            Some(o)
        };
        let r = o.map(|drained| Removed {
            drained,
            ..Removed::default()
        });
        let fields = removed_fields(&findings, r.as_ref(), dry_run);
        part.outcome = Some(if dry_run {
            "dry run".into()
        } else {
            "out of service".into()
        });
        let verb = if c.state == InstanceState::Stopping {
            "stopping"
        } else {
            "shutting down"
        };
        part.messages.push(
            render(InstanceMessage {
            kind: NotificationKind::InstanceStopping,
            severity: Severity::Medium,
            title: format!(
                "{instance} {verb}: {}",
                if dry_run { "would be taken out of service (dry run)" } else { "taken out of service" }
            ),
            summary: format!(
                "EC2 reports {instance} {verb}, outside any Auto Scaling hook. {}",
                if dry_run {
                    "DRY_RUN is set: nothing was changed."
                } else {
                    "It was deregistered and drained at once, so no request goes to it while it stops."
                }
            ),
            dedupe_key: format!("stopping|{instance}|{}", event.envelope.id),
            instance: instance.as_str(),
            findings: &findings,
            fields,
            region: &event.envelope.region,
            health_event_arn: None,
        })
            .incident(fleetguard::notify::incident::drain_key(instance.as_str(), dry_run), Phase::Opened),
        );
        Ok(part)
    }

    /// `drain`, `replace` or `notify`, in words, for this instance.
    fn how(&self, kind: MaintenanceKind, f: &Findings) -> &'static str {
        match (
            self.config.action,
            removal(kind, self.config.action, f.group.as_ref(), 0),
        ) {
            (MaintenanceAction::Notify, _) => "tell you about",
            (_, Removal::Replace) => "drain and replace",
            _ => "drain",
        }
    }

    /// Take the instance out of service as `kind` and the setting say; for a reboot, leave a
    /// schedule that puts it back after the window. Failures go to `part.errors`.
    #[allow(clippy::too_many_arguments)]
    async fn take_out(
        &self,
        instance: &InstanceId,
        due: &MaintenanceDue,
        kind: MaintenanceKind,
        findings: &Findings,
        event: &Event,
        metrics: &mut Metrics,
        part: &mut Part,
    ) -> Option<Removed> {
        if self.common.dry_run {
            metrics.action(Action::DrainInstance, Outcome::DryRun);
            part.actions.push("dry run: nothing changed".into());
            return None;
        }
        let now = self.clock.now();
        let start = due.window_start.timestamp();
        let end = window_end(start, due.window_end.map(|t| t.timestamp()));
        let mut how = removal(kind, self.config.action, findings.group.as_ref(), end);
        if let (Removal::Replace, Some(g)) = (how, findings.group.as_ref()) {
            // Terminating at once is safe only when asg-lifecycle's terminate hook holds the
            // instance until it is drained; another tool's hook drains nothing, and without one
            // its tasks would be cut short before the window.
            match self
                .fleet
                .autoscaling
                .hooks(&g.auto_scaling_group_name)
                .await
            {
                Ok(hooks)
                    if hooks
                        .iter()
                        .any(|h| h.is_terminating() && self.config.hooks.contains(&h.name)) => {}
                Ok(_) => {
                    part.actions.push(format!(
                        "{} has no terminate hook of asg-lifecycle (LIFECYCLE_HOOKS): drained, not replaced",
                        g.auto_scaling_group_name
                    ));
                    how = Removal::Drain {
                        mark: Some(maintenance_mark(end)),
                    };
                }
                Err(e) => {
                    part.errors.push(e.to_string());
                    return None;
                }
            }
        }
        let mark = match how {
            Removal::Drain { mark } => mark,
            Removal::Replace => None,
        };
        let drained = take_out_of_service(&self.fleet, instance, findings, None, mark).await;
        metrics.latency(Action::DrainInstance, event);
        self.count(&drained, metrics, part);
        let mut removed = Removed {
            drained,
            ..Removed::default()
        };
        if how == Removal::Replace {
            match self
                .fleet
                .autoscaling
                .terminate_and_replace(instance.as_str())
                .await
            {
                Ok(t) => {
                    part.actions.push(if t {
                        format!("{instance} terminated in its group, desired capacity kept: a replacement launches")
                    } else {
                        format!("{instance} already terminating")
                    });
                    removed.replaced = Some(t);
                }
                Err(e) => part.errors.push(e.to_string()),
            }
        }
        let took_something = matches!(
            removed.drained.container_instance,
            Some(DrainResult::Drained | DrainResult::DrainedUnmarked)
        ) || !removed.drained.deregistered.is_empty();
        if kind.comes_back() && took_something {
            // Never in the past: a window already over is put back soon.
            let at = (end + RETURN_DELAY_SECS).max(now + MIN_SCHEDULE_AHEAD_SECS);
            let back = MaintenanceDue {
                step: MaintenanceStep::Return,
                targets: removed
                    .drained
                    .deregistered
                    .iter()
                    .map(|r| TargetRef {
                        target_group_arn: r.target_group_arn.clone(),
                        port: r.port,
                    })
                    .collect(),
                ..due.clone()
            };
            let name = schedule_name(&due.event_arn, instance, MaintenanceStep::Return);
            let s = OneTimeSchedule {
                name: name.clone(),
                at,
                input: schedule_input(&back, &name, at, event),
                description: format!("fleetguard: put {instance} back after {}", kind.describe()),
            };
            match self.schedules.put(&s).await {
                Ok(_) => {
                    part.actions
                        .push(format!("schedule {name} puts it back at {}", when(at)));
                    removed.return_at = Some(at);
                }
                Err(e) => part.errors.push(e.to_string()),
            }
        }
        Some(removed)
    }

    fn count(&self, o: &DrainOutcome, metrics: &mut Metrics, part: &mut Part) {
        if let Some(r) = o.container_instance {
            let (text, m) = match r {
                DrainResult::Drained => ("DRAINING", Outcome::Done),
                DrainResult::DrainedUnmarked => {
                    metrics.action(Action::MarkDrain, Outcome::Failed);
                    ("DRAINING, unmarked", Outcome::Done)
                }
                DrainResult::AlreadyDraining => ("already DRAINING", Outcome::AlreadyDone),
            };
            metrics.action(Action::DrainContainerInstance, m);
            part.actions.push(format!("container instance {text}"));
        }
        for r in &o.deregistered {
            metrics.action(Action::DeregisterTargets, Outcome::Done);
            part.actions.push(format!(
                "deregistered from {} port {}",
                r.target_group_arn,
                r.port.map(|p| p.to_string()).unwrap_or("-".into())
            ));
        }
        for e in &o.errors {
            metrics.action(Action::DrainInstance, Outcome::Failed);
            part.errors.push(e.to_string());
        }
    }
}

/// What was done, as message fields.
/// How long an opened maintenance incident is remembered for its `closed` event: AWS announces
/// scheduled changes up to weeks ahead.
const OPEN_FACT_TTL: std::time::Duration = std::time::Duration::from_secs(60 * 86_400);

/// The incident of one instance's scheduled change: announced, taken out, back (or closed).
fn maintenance_incident(event_arn: &str, instance: &str, dry_run: bool) -> String {
    format!(
        "maintenance|{event_arn}|{instance}{}",
        if dry_run { "|dry-run" } else { "" }
    )
}

fn removed_fields(f: &Findings, r: Option<&Removed>, dry_run: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(r) = r else {
        if dry_run {
            out.push(("Done".to_owned(), "nothing (DRY_RUN)".to_owned()));
        }
        return out;
    };
    if let (Some(res), Some(_)) = (r.drained.container_instance, &f.container_instance) {
        out.push((
            "Drain".to_owned(),
            match res {
                DrainResult::Drained => "ACTIVE → DRAINING",
                DrainResult::DrainedUnmarked => fleetguard::text::UNMARKED_DRAIN,
                DrainResult::AlreadyDraining => "already DRAINING",
            }
            .to_owned(),
        ));
    }
    if !r.drained.deregistered.is_empty() {
        out.push((
            "Deregistered from".to_owned(),
            target_list(&r.drained.deregistered),
        ));
    }
    if let Some(t) = r.replaced {
        out.push((
            "Replacement".to_owned(),
            if t {
                "terminated in its group with the desired capacity kept: the group launches a replacement"
                    .to_owned()
            } else {
                "already terminating".to_owned()
            },
        ));
    }
    if let Some(at) = r.return_at {
        out.push(("Back in service".to_owned(), when(at)));
    }
    if !r.drained.errors.is_empty() {
        let e: Vec<String> = r.drained.errors.iter().map(AwsError::to_string).collect();
        out.push(("Failed".to_owned(), e.join("; ")));
    }
    out
}
