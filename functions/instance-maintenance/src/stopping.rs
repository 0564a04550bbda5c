//! An instance stopping or shutting down outside any hook: out of service at once. Running
//! again: a plain EC2 instance's deregistration of ours is put back.

use crate::handler::{Handler, Part, Removed};
use crate::render::{InstanceMessage, render, target_list};
use crate::take_out::removed_fields;
use fleetguard::Event;
use fleetguard::events::{InstanceState, InstanceStateChange};
use fleetguard::notify::{NotificationKind, Phase, Severity};
use fleetguard::observe::{Action, Metrics, Outcome};
use fleetguard::out_of_service::plain_back_in_service;
use fleetguard::out_of_service::take_out_of_service;
use fleetguard::ports::{
    AutoScalingGroups, ContainerInstances, DrainMark, DrainReason, Notify, Schedules, TargetGroups,
};
use fleetguard::reasons::plain_undo_due;
use fleetguard::serve::Error;

impl<E, T, A, S, N> Handler<E, T, A, S, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    S: Schedules,
    N: Notify,
{
    /// An instance stopping or shutting down outside any hook.
    pub(crate) async fn on_state_change(
        &self,
        event: &Event,
        c: &InstanceStateChange,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let instance = &c.instance_id;
        let mut part = Part::default();
        if c.state == InstanceState::Running {
            return self.on_running(event, c, metrics).await;
        }
        if !c.is_going_away() {
            part.outcome = Some(format!("ignored: {instance} is {}", c.state));
            return Ok(part);
        }
        let mut findings = self.find(instance).await?;
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
            // Dated by EC2's `stopping` (a retry handles it later), never later than now.
            at: event
                .envelope
                .time
                .at()
                .map_or(self.clock.now(), |t| t.timestamp().min(self.clock.now())),
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

    /// Running again: a plain EC2 instance (no container instance) whose deregistration we made
    /// for a stop or maintenance is registered again where it was, once that reason is over
    /// (`plain_undo_due`). Container instances are asg-lifecycle's to set ACTIVE.
    async fn on_running(
        &self,
        event: &Event,
        c: &InstanceStateChange,
        metrics: &mut Metrics,
    ) -> Result<Part, Error> {
        let instance = c.instance_id.as_str();
        let mut part = Part::default();
        let Some((mark, regs)) = self.fleet.ecs.kept_plain_mark(instance).await else {
            part.outcome = Some(format!(
                "ignored: {instance} is running; nothing of ours to put back"
            ));
            return Ok(part);
        };
        let at = event
            .envelope
            .time
            .at()
            .map_or(self.clock.now(), |t| t.timestamp());
        if !plain_undo_due(mark, at) {
            part.outcome = Some(format!(
                "{instance} is running; its {} drain is not over",
                mark.reason.as_str()
            ));
            return Ok(part);
        }
        if self.common.dry_run {
            metrics.action(Action::RegisterTargets, Outcome::DryRun);
            part.outcome = Some("dry run".into());
            return Ok(part);
        }
        match self.fleet.elbv2.register(instance, &regs).await {
            Ok(()) => {}
            // The target group deleted since: nothing to put back there.
            Err(e) if e.code.as_deref() == Some("TargetGroupNotFound") => {
                tracing::warn!(error = %e, "targets not registered again");
            }
            Err(e) => {
                metrics.action(Action::RegisterTargets, Outcome::Failed);
                return Err(e.into());
            }
        }
        metrics.action(Action::RegisterTargets, Outcome::Done);
        self.fleet.ecs.drop_plain_mark(instance).await;
        part.actions
            .push(format!("registered again in {}", target_list(&regs)));
        // The drain's incident ends here.
        part.messages
            .push(plain_back_in_service(instance, mark, &regs, false));
        part.outcome = Some(format!(
            "{instance} is back: its {} drain is undone",
            mark.reason.as_str()
        ));
        Ok(part)
    }
}
