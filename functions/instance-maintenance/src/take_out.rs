//! Taking an instance out of service as the kind of maintenance and `MAINTENANCE_ACTION` say:
//! drained and marked, or replaced through its group; and what was done, as message fields.

use crate::config::MaintenanceAction;
use crate::decide::{
    MIN_SCHEDULE_AHEAD_SECS, RETURN_DELAY_SECS, Removal, maintenance_mark, removal, schedule_name,
    window_end,
};
use crate::handler::{Handler, Part, Removed, schedule_input};
use crate::render::{target_list, when};
use fleetguard::Event;
use fleetguard::events::health::{MaintenanceStep, TargetRef};
use fleetguard::events::{MaintenanceDue, MaintenanceKind};
use fleetguard::ids::InstanceId;
use fleetguard::observe::{Action, Metrics, Outcome};
use fleetguard::out_of_service::{DrainOutcome, Findings, take_out_of_service};
use fleetguard::ports::{
    AutoScalingGroups, AwsError, ContainerInstances, DrainResult, Notify, OneTimeSchedule,
    Schedules, TargetGroups,
};

impl<E, T, A, S, N> Handler<E, T, A, S, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    S: Schedules,
    N: Notify,
{
    /// `drain`, `replace` or `notify`, in words, for this instance.
    pub(crate) fn how(&self, kind: MaintenanceKind, f: &Findings) -> &'static str {
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
    pub(crate) async fn take_out(
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

    pub(crate) fn count(&self, o: &DrainOutcome, metrics: &mut Metrics, part: &mut Part) {
        if let Some(r) = o.container_instance {
            let text = metrics.container_instance_drain(r);
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
pub(crate) fn removed_fields(
    f: &Findings,
    r: Option<&Removed>,
    dry_run: bool,
) -> Vec<(String, String)> {
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
