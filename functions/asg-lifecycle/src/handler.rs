//! `asg-lifecycle`: lifecycle actions, ECS state changes as wake-ups, and the minute sweep.
//!
//! Stateless and event-driven: AWS holds the state (the instance's lifecycle state, its container
//! instance's status and tasks, its target health, the scaling activity's start time). The
//! lifecycle action event starts a drain; ECS state changes on a draining instance complete it the
//! moment the instance is empty; the sweep (`sweep.rs`) completes what events missed, records
//! heartbeats and enforces `MAX_DRAIN_SECONDS`. Nothing waits inside an invocation.

use crate::config::ECS_MANAGED_DRAINING_HOOK;
use crate::decide::{
    CompleteReason, EcsEvidence, Step, Undo, When, decide_launch, decide_terminate, decide_undo,
    expected_cluster, joined,
};
use crate::drain::{FleetSample, Handled, Lifecycle, is_pending, is_terminating, is_warm_pending};
use crate::render::{Render, launch_reason, render_drain_completed, render_drain_started};
use fleetguard::config::CommonConfig;
use fleetguard::events::LifecycleAction;
use fleetguard::events::autoscaling::LifecycleTransition;
use fleetguard::notify::Deadline;
use fleetguard::observe::FleetMetric;
use fleetguard::observe::Metrics;
use fleetguard::out_of_service::{find_in_clusters, search_clusters};
use fleetguard::ports::{
    AutoScalingGroups, AwsError, ContainerInstance, ContainerInstances, DRAIN_MARK_ATTRIBUTE,
    DrainMark, DrainReason, LifecycleHook, Notify, TargetGroups,
};
use fleetguard::reasons::launch_mark;
use fleetguard::serve::{Error, Function, Summary};
use fleetguard::{Detail, Event, EventKind};

#[derive(Debug)]
pub struct Handler<E, T, A, N> {
    pub common: CommonConfig,
    /// The lifecycle logic, with the notification pipeline.
    pub lifecycle: Lifecycle<E, T, A, N>,
}

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// A lifecycle action event.
    pub async fn on_action(&self, a: &LifecycleAction, region: &str) -> Result<Handled, AwsError> {
        let group_name = a.auto_scaling_group_name.as_str();
        let Some(group) = self.fleet.autoscaling.group(group_name).await? else {
            return Ok(Handled::new(format!(
                "ignored: group {group_name} no longer exists"
            )));
        };
        if !self.config.manages(&group) {
            return Ok(Handled::new(format!(
                "ignored: group {group_name} is not managed"
            )));
        }
        if !self.config.owns_hook(&a.lifecycle_hook_name) {
            return Ok(Handled::new(format!(
                "ignored: hook {} is not ours",
                a.lifecycle_hook_name
            )));
        }
        let hook = LifecycleHook {
            name: a.lifecycle_hook_name.clone(),
            transition: a.transition.to_string(),
            heartbeat_timeout_secs: 3600,
            default_result: String::new(),
            notification_metadata: a.notification_metadata.raw.clone(),
        };
        let instance = a.instance_id.as_str();
        // A replayed or late event: the action is no longer pending, nothing to do or say.
        let state = self
            .fleet
            .autoscaling
            .instance(instance)
            .await?
            .map(|gi| gi.lifecycle_state);
        let pending = match a.transition {
            LifecycleTransition::Launching => state
                .as_deref()
                .is_some_and(|s| is_pending(s) || is_warm_pending(s)),
            // A scale-in back to the warm pool waits in `Warmed:Pending:Wait`.
            _ => state
                .as_deref()
                .is_some_and(|s| is_terminating(s) || is_warm_pending(s)),
        };
        if !pending {
            let mut out = Handled::new(format!(
                "ignored: {instance} has no pending lifecycle action ({})",
                state.as_deref().unwrap_or("not in a group")
            ));
            // A retry of an invocation whose message failed after the completion: send it now.
            if a.transition == LifecycleTransition::Terminating {
                self.resend_stashed(instance, &mut out).await;
            }
            return Ok(out);
        }
        let cluster = expected_cluster(a.notification_metadata.raw.as_deref());
        let token = Some(a.token.as_str());
        match a.transition {
            LifecycleTransition::Launching => {
                let mut out = Handled::new("");
                let joined_now = match (&cluster, a.is_into_warm_pool()) {
                    (Some(c), false) => {
                        match self
                            .fleet
                            .ecs
                            .find_container_instance(c, &a.instance_id)
                            .await?
                        {
                            // Back from the warm pool, drained when it went there: ACTIVE again.
                            // (Unmarked, but DRAINING and empty: drained on the way to the
                            // pool by a drain whose mark could not be written.)
                            Some(mut ci) if launch_mark(&ci).is_some() => {
                                let now = self.clock.now();
                                if launch_mark(&ci).is_some_and(|m| {
                                    decide_undo(
                                        m,
                                        &ci,
                                        state.as_deref(),
                                        now,
                                        self.config.rebalance_undo_secs,
                                    ) == Undo::Activate
                                }) && self.undo_drain(&ci, &mut out).await
                                {
                                    ci.status = "ACTIVE".into();
                                }
                                joined(&ci, c)
                            }
                            Some(ci) => joined(&ci, c),
                            None => false,
                        }
                    }
                    _ => false,
                };
                if !out.errors.is_empty() {
                    out.outcome =
                        "could not undo the drain of its return from the warm pool".into();
                    return Ok(out);
                }
                let step = decide_launch(
                    a.is_into_warm_pool(),
                    cluster.as_deref(),
                    joined_now,
                    When::Event,
                    &self.config,
                );
                match step {
                    Step::Complete { result, reason } => {
                        self.complete(
                            group_name,
                            &[&hook],
                            instance,
                            token,
                            result,
                            None,
                            &mut out,
                        )
                        .await;
                        out.outcome = format!(
                            "launch completed: {}",
                            launch_reason(reason, cluster.as_deref())
                        );
                    }
                    Step::Wait { .. } => {
                        out.outcome = format!(
                            "waiting for {instance} to join ECS cluster {}",
                            cluster.as_deref().unwrap_or_default()
                        );
                    }
                }
                Ok(out)
            }
            LifecycleTransition::Terminating => {
                let hooks = self.fleet.autoscaling.hooks(group_name).await?;
                let managed_draining = hooks.iter().any(|h| h.name == ECS_MANAGED_DRAINING_HOOK);
                let search = async {
                    match cluster.as_deref() {
                        // The hook's cluster first; an instance not there (a hook naming the
                        // wrong cluster) is searched for everywhere before "not in ECS".
                        Some(c) => {
                            match find_in_clusters(&self.fleet.ecs, &[c.to_owned()], &a.instance_id)
                                .await
                            {
                                Ok(None) => {
                                    search_clusters(
                                        &self.fleet.ecs,
                                        &self.config.scope.clusters,
                                        &a.instance_id,
                                    )
                                    .await
                                }
                                found => found,
                            }
                        }
                        // A cluster created since the list was cached is found too.
                        None => {
                            search_clusters(
                                &self.fleet.ecs,
                                &self.config.scope.clusters,
                                &a.instance_id,
                            )
                            .await
                        }
                    }
                };
                let (ci, regs) = tokio::join!(search, self.registrations(&group, instance));
                let (ci, regs) = (ci?, regs?);
                let had_work = ci.is_some() || !regs.is_empty();
                let mut out = Handled::new("");
                // Back to the warm pool: the drain is undone when it returns to service.
                let mark = a.is_into_warm_pool().then(|| DrainMark {
                    reason: DrainReason::WarmPool,
                    at: self.clock.now(),
                });
                self.start_drain(
                    ci.as_ref(),
                    managed_draining,
                    instance,
                    &regs,
                    mark,
                    &mut out,
                )
                .await;
                if !out.errors.is_empty() {
                    out.outcome = "drain failed".into();
                    return Ok(out);
                }
                // Read back: the targets after deregistration (gone, or draining for the delay).
                let regs = if had_work && !regs.is_empty() && !self.dry_run {
                    self.registrations(&group, instance).await?
                } else {
                    regs
                };
                let evidence = self.evidence_for(ci.as_ref(), regs).await?;
                let step = decide_terminate(&evidence, had_work, When::Event, &self.config);
                let ctx = Render {
                    group: &group,
                    instance,
                    region,
                    dry_run: self.dry_run,
                    ci: ci.as_ref(),
                    managed_draining,
                };
                match step {
                    Step::Complete { result, reason } => {
                        let announce =
                            had_work.then(|| render_drain_completed(&ctx, &evidence, Some(0)));
                        if had_work {
                            out.fleet.push(FleetSample::of(
                                FleetMetric::Drains,
                                group_name,
                                ci.as_ref(),
                                Some(0),
                            ));
                        }
                        self.complete(
                            group_name,
                            &[&hook],
                            instance,
                            token,
                            result,
                            announce,
                            &mut out,
                        )
                        .await;
                        out.outcome = match reason {
                            CompleteReason::NothingToDrain => "completed: nothing to drain".into(),
                            _ => "completed: already empty".into(),
                        };
                    }
                    Step::Wait { .. } => {
                        out.notifications
                            .push(render_drain_started(&ctx, &evidence, &self.config));
                        out.outcome = format!(
                            "draining: {} task(s) and {} target registration(s) left",
                            match &evidence.ecs {
                                EcsEvidence::Busy { running, pending } =>
                                    (running + pending) as usize,
                                _ => evidence.remaining_tasks().len(),
                            },
                            evidence.registrations.len()
                        );
                    }
                }
                Ok(out)
            }
            LifecycleTransition::Other(_) => {
                Ok(Handled::new("ignored: unknown lifecycle transition"))
            }
        }
    }
}

impl<E, T, A, N> Function for Handler<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    const NAME: &'static str = "asg-lifecycle";

    fn accepts(kind: EventKind) -> bool {
        matches!(
            kind,
            EventKind::LaunchLifecycleAction
                | EventKind::TerminateLifecycleAction
                | EventKind::OtherLifecycleAction
                | EventKind::AutoScalingTestNotification
                | EventKind::ContainerInstanceStateChange
                | EventKind::TaskStateChange
                | EventKind::Scheduled
                | EventKind::LaunchUnsuccessful
                | EventKind::InstanceRefresh
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
        let lc = &self.lifecycle;
        let region = event.envelope.region.as_str();
        let out = match &event.detail {
            Detail::LifecycleAction(a) => lc.on_action(a, region).await?,
            Detail::AutoScalingTestNotification(_) => {
                summary.outcome = "ignored: autoscaling:TEST_NOTIFICATION".into();
                return Ok(summary);
            }
            Detail::ContainerInstanceStateChange(c) => {
                let Some(ec2) = &c.ec2_instance_id else {
                    summary.outcome = "ignored: not an EC2 container instance".into();
                    return Ok(summary);
                };
                let ci = ContainerInstance {
                    cluster_arn: c.cluster_arn.to_string(),
                    arn: c.container_instance_arn.to_string(),
                    ec2_instance_id: ec2.to_string(),
                    status: c.status.to_string(),
                    agent_connected: c.agent_connected.unwrap_or(false),
                    running_tasks_count: c.running_tasks_count.unwrap_or(0) as i32,
                    pending_tasks_count: c.pending_tasks_count.unwrap_or(0) as i32,
                    instance_type: None,
                    availability_zone: None,
                    drain_mark: c.attribute(DRAIN_MARK_ATTRIBUTE).and_then(DrainMark::parse),
                };
                let registered_at = c.registered_at.at().map(|t| t.timestamp());
                lc.on_container_instance(ci, registered_at, region).await?
            }
            Detail::TaskStateChange(t) => {
                let Some(ci_arn) = t.container_instance_arn.as_ref() else {
                    summary.outcome = "ignored: task not on a container instance (Fargate)".into();
                    return Ok(summary);
                };
                if t.last_status.to_string() != "STOPPED" {
                    summary.outcome = format!("ignored: task is {}", t.last_status);
                    return Ok(summary);
                }
                // The event has no EC2 instance id and the counters may be older than the event:
                // read the container instance as it is now.
                let found = match lc
                    .fleet
                    .ecs
                    .describe(t.cluster_arn.as_str(), vec![ci_arn.to_string()])
                    .await
                {
                    Ok(f) => f,
                    // A cluster deleted since (or never in this account and region): nothing to drain.
                    Err(e) if e.code.as_deref() == Some("ClusterNotFoundException") => {
                        summary.outcome = "ignored: the task's cluster does not exist".into();
                        return Ok(summary);
                    }
                    Err(e) => return Err(e.into()),
                };
                match found.into_iter().next() {
                    // A task stopping matters only on a draining instance (launches are completed
                    // by the container-instance events).
                    Some(ci) if ci.status != "DRAINING" => {
                        summary.outcome = format!("ignored: container instance is {}", ci.status);
                        return Ok(summary);
                    }
                    Some(ci) => lc.on_container_instance(ci, None, region).await?,
                    None => {
                        summary.outcome = "ignored: container instance no longer exists".into();
                        return Ok(summary);
                    }
                }
            }
            Detail::Scheduled { .. } => lc.sweep(region, deadline).await?,
            Detail::LaunchUnsuccessful(l) => lc.on_launch_unsuccessful(l, region).await?,
            Detail::InstanceRefresh(r) => lc.on_instance_refresh(r, region).await?,
            _ => return Ok(summary),
        };
        for f in &out.fleet {
            match f.metric {
                FleetMetric::Drains => metrics.drain_completed(&f.pool, f.seconds),
                m => metrics.fleet(m, &f.pool),
            }
        }
        summary.outcome = out.outcome.clone();
        for (action, outcome, line) in &out.actions {
            metrics.action(*action, *outcome);
            summary.actions.push(line.clone());
        }
        // Tell people what was done, even when part of it failed; then fail loudly.
        let mut delivery_errors = Vec::new();
        for n in out.notifications {
            let stash = out
                .stashed
                .iter()
                .find(|(key, _)| *key == n.dedupe_key)
                .map(|(_, stash)| stash.clone());
            match lc
                .notifier
                .send(n.from_event(Self::NAME, event), deadline)
                .await
            {
                Ok(report) => {
                    summary.actions.extend(report.actions());
                    if let Some(stash) = stash {
                        lc.notifier.unstash(&stash).await;
                    }
                }
                Err(e) => {
                    // Given up everywhere it failed: kept, it would fail every later sweep
                    // until the stash expires. Failed once, here, it is the on-failure
                    // destination's, with this error.
                    if let (Some(stash), true) = (stash, e.is_final()) {
                        tracing::error!(error = %e, "a stashed completion message cannot be delivered: unstashed");
                        lc.notifier.unstash(&stash).await;
                    }
                    delivery_errors.push(e.to_string())
                }
            }
        }
        let calls: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
        match Error::after("AwsCallFailed", &calls, &delivery_errors) {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }
}
