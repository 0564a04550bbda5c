//! The drain steps every path shares: find the target registrations, set DRAINING and
//! deregister, gather the evidence that an instance is empty, complete or heartbeat our hooks.
//! Every step is idempotent; failures are collected, never stop the other steps.

use crate::config::LifecycleConfig;
use crate::decide::{EcsEvidence, Evidence};
use fleetguard::notify::Notification;
use fleetguard::observe::{Action, FleetMetric, Outcome, Pool};
use fleetguard::out_of_service::{Fleet, all_tasks_on, unmarked_drain_notice};
use fleetguard::ports::{
    AutoScalingGroups, AwsError, Completion, ContainerInstance, ContainerInstances, DrainMark,
    DrainResult, Group, LifecycleActionResult, LifecycleHook, Notify, Registration, TargetGroups,
    Task, count_by_service, drain_needs,
};

/// What an invocation did.
#[derive(Debug, Clone, Default)]
pub struct Handled {
    pub outcome: String,
    /// Each action: what it was (for metrics) and a line for the summary.
    pub actions: Vec<(Action, Outcome, String)>,
    pub notifications: Vec<Notification>,
    /// Calls that failed; the invocation fails after everything else was tried.
    pub errors: Vec<AwsError>,
    /// Notifications stashed before the completion they announce: (dedupe key, stash key).
    /// Unstashed once delivered.
    pub stashed: Vec<(String, String)>,
    /// The fleet's picture: drains completed (with their duration), forced completions,
    /// launch failures.
    pub fleet: Vec<FleetSample>,
}

/// One fleet metric to emit: what, where, and a drain's duration in seconds.
#[derive(Debug, Clone)]
pub struct FleetSample {
    pub metric: FleetMetric,
    pub pool: Pool,
    pub seconds: Option<i64>,
}

impl FleetSample {
    /// The pool of an instance of `group`, as its container instance describes it.
    pub fn of(
        metric: FleetMetric,
        group: &str,
        ci: Option<&ContainerInstance>,
        seconds: Option<i64>,
    ) -> Self {
        Self {
            metric,
            pool: Pool {
                instance_type: ci.and_then(|c| c.instance_type.clone()),
                availability_zone: ci.and_then(|c| c.availability_zone.clone()),
                group: Some(group.to_owned()),
            },
            seconds,
        }
    }
}

impl Handled {
    pub(crate) fn did(&mut self, action: Action, outcome: Outcome, line: String) {
        self.actions.push((action, outcome, line));
    }

    /// A call that failed: counted, and kept so the invocation fails once the rest was tried.
    pub(crate) fn failed(&mut self, action: Action, e: AwsError) {
        self.actions.push((action, Outcome::Failed, e.to_string()));
        self.errors.push(e);
    }

    pub(crate) fn new(outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            ..Self::default()
        }
    }
}

/// The `asg-lifecycle` logic over its ports.
#[derive(Debug, Clone)]
pub struct Lifecycle<E, T, A, N> {
    pub fleet: Fleet<E, T, A>,
    /// The notification pipeline: messages go out through the handler, but the one that
    /// announces a completion is stashed here first.
    pub notifier: N,
    pub config: LifecycleConfig,
    pub dry_run: bool,
    /// The time elapsed drains and launches are measured in.
    pub clock: std::sync::Arc<dyn fleetguard::ports::Clock>,
    /// When each waiting instance's termination or launch started, as read.
    pub starts: StartTimes,
}

pub use crate::memory::StartTimes;

/// Where the message announcing an instance's completion is stashed: this prefix and its id.
pub(crate) const STASH_PREFIX: &str = "lifecycle-completion|";

pub(crate) fn stash_key(instance: &str) -> String {
    format!("{STASH_PREFIX}{instance}")
}

/// How many heartbeats a sweep records at once.
pub const HEARTBEAT_CONCURRENCY: usize = 16;

pub(crate) fn is_terminating(state: &str) -> bool {
    state.ends_with("Terminating:Wait")
}

/// `Pending:Wait` (a launch into service). Not `Warmed:Pending:Wait`, which is either a launch
/// into the warm pool or a scale-in back to it: see [`is_warm_pending`].
pub(crate) fn is_pending(state: &str) -> bool {
    state == "Pending:Wait"
}

/// `Warmed:Pending:Wait`: held by a launch hook on the way into the warm pool, or by a terminate
/// hook on a scale-in back to it (`ReuseOnScaleIn`), which must be drained like a termination.
pub(crate) fn is_warm_pending(state: &str) -> bool {
    state == "Warmed:Pending:Wait"
}

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// The group's target groups and `TARGET_GROUP_ARNS` besides.
    pub(crate) fn target_groups(&self, group: &Group) -> Vec<String> {
        let mut tgs = group.target_group_arns.clone();
        for tg in &self.config.scope.target_group_arns {
            if !tgs.contains(tg) {
                tgs.push(tg.clone());
            }
        }
        tgs
    }

    pub(crate) async fn registrations(
        &self,
        group: &Group,
        instance: &str,
    ) -> Result<Vec<Registration>, AwsError> {
        let mut out = Vec::new();
        for tg in self.target_groups(group) {
            out.extend(self.fleet.elbv2.registrations(&tg, instance).await?);
        }
        Ok(out)
    }

    /// Complete every hook given; "already complete" counts as done. True when this call
    /// completed one (or would have, in a dry run) and none failed: only then is `announce`
    /// sent, so a replayed event never sends a second message. `announce` is stashed first, so
    /// that if its delivery fails after the completion, the retry (which finds the action done)
    /// still sends it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn complete(
        &self,
        group: &str,
        hooks: &[&LifecycleHook],
        instance: &str,
        token: Option<&str>,
        result: LifecycleActionResult,
        announce: Option<Notification>,
        out: &mut Handled,
    ) -> bool {
        let key = stash_key(instance);
        let stashed_now = match (&announce, self.dry_run) {
            (Some(n), false) => self.notifier.stash(&key, n).await,
            _ => false,
        };
        let (mut ok, mut new, mut already) = (true, false, false);
        for h in hooks {
            if self.dry_run {
                out.did(
                    Action::CompleteLifecycleAction,
                    Outcome::DryRun,
                    format!(
                        "dry run: would complete {} of {instance} with {result}",
                        h.name
                    ),
                );
                new = true;
                continue;
            }
            match self
                .fleet
                .autoscaling
                .complete(group, &h.name, instance, token, result)
                .await
            {
                Ok(Completion::Completed) => {
                    new = true;
                    out.did(
                        Action::CompleteLifecycleAction,
                        Outcome::Done,
                        format!("completed {} of {instance} with {result}", h.name),
                    )
                }
                Ok(Completion::AlreadyComplete) => {
                    already = true;
                    out.did(
                        Action::CompleteLifecycleAction,
                        Outcome::AlreadyDone,
                        format!("{} of {instance} was already complete", h.name),
                    )
                }
                Err(e) => {
                    ok = false;
                    out.failed(Action::CompleteLifecycleAction, e);
                }
            }
        }
        let done = ok && new;
        match announce {
            Some(n) if done => {
                if !self.dry_run {
                    out.stashed.push((n.dedupe_key.clone(), key));
                }
                out.notifications.push(n);
            }
            // Completed before, by an invocation whose message may not have gone out: the
            // message of that completion (stashed then, so this call's stash found it there)
            // goes out now. A stash this call made finds no such message: that completion's
            // went out and was unstashed, and this one announces nothing that happened now (a
            // late event after a forced completion sent "drained" too, while ECS managed
            // draining still held the instance; found by the simulator).
            Some(_) if already && ok && !self.dry_run && !stashed_now => {
                self.resend_stashed(instance, out).await
            }
            // Not completed now: what this call stashed announces nothing. (A stash from an
            // earlier completion stays, for the retry.)
            Some(_) if stashed_now => self.notifier.unstash(&key).await,
            _ => {}
        }
        done
    }

    /// A completion message stashed for `instance` and never delivered (its invocation failed
    /// after the completion): queued to go out now.
    pub(crate) async fn resend_stashed(&self, instance: &str, out: &mut Handled) {
        let key = stash_key(instance);
        if let Some(n) = self.notifier.stashed(&key).await {
            out.stashed.push((n.dedupe_key.clone(), key));
            out.notifications.push(n);
        }
    }

    /// Record heartbeats for every (group, hook, instance) given, [`HEARTBEAT_CONCURRENCY`] at a
    /// time: a sweep over a thousand draining instances must fit in the function's timeout.
    pub(crate) async fn heartbeat_all(
        &self,
        due: Vec<(String, String, String)>,
        out: &mut Handled,
    ) {
        if self.dry_run {
            for (_, _, instance) in due {
                out.did(
                    Action::RecordLifecycleActionHeartbeat,
                    Outcome::DryRun,
                    format!("dry run: would record a heartbeat for {instance}"),
                );
            }
            return;
        }
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(HEARTBEAT_CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        for (i, (group, hook, instance)) in due.iter().cloned().enumerate() {
            let (asg, permits) = (self.fleet.autoscaling.clone(), permits.clone());
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (i, asg.heartbeat(&group, &hook, &instance).await)
            });
        }
        let mut results = Vec::with_capacity(due.len());
        while let Some(r) = set.join_next().await {
            match r {
                Ok(r) => results.push(r),
                Err(e) => out.failed(
                    Action::RecordLifecycleActionHeartbeat,
                    AwsError::other("RecordLifecycleActionHeartbeat", e.to_string()),
                ),
            }
        }
        // In the order they were due, so the summary reads the same on every run.
        results.sort_by_key(|(i, _)| *i);
        for (i, r) in results {
            let (_, hook, instance) = &due[i];
            match r {
                Ok(true) => out.did(
                    Action::RecordLifecycleActionHeartbeat,
                    Outcome::Done,
                    format!("heartbeat for {hook} of {instance}"),
                ),
                Ok(false) => {}
                Err(e) => out.failed(Action::RecordLifecycleActionHeartbeat, e),
            }
        }
    }

    /// Set DRAINING (unless ECS drains it itself, or it already is) and deregister targets that
    /// are not already draining. `mark`: the drain is to be undone when the instance comes back
    /// (a scale-in to the warm pool). Idempotent.
    pub(crate) async fn start_drain(
        &self,
        ci: Option<&ContainerInstance>,
        managed_draining: bool,
        instance: &str,
        registrations: &[Registration],
        mark: Option<DrainMark>,
        out: &mut Handled,
    ) {
        let wanted: Vec<(ContainerInstance, Option<DrainMark>)> = match ci {
            Some(_) if managed_draining => {
                out.did(
                    Action::DrainContainerInstance,
                    Outcome::Skipped,
                    "ECS managed draining drains it: DRAINING left to ECS".into(),
                );
                Vec::new()
            }
            Some(ci) => vec![(ci.clone(), mark)],
            None => Vec::new(),
        };
        // Deregistration waits for the container instance's drain (and mark): if that failed,
        // the targets stay for the retry or the sweep to find, so the drain is still known to
        // have had work (and is announced) whoever finishes it.
        if self.drain_container_instances(wanted, out).await.is_empty() {
            self.deregister(instance, registrations, out).await;
        }
    }

    /// Set DRAINING (and mark) every container instance given that needs it, ten a call.
    /// Returns the ARNs whose call failed.
    pub(crate) async fn drain_container_instances(
        &self,
        wanted: Vec<(ContainerInstance, Option<DrainMark>)>,
        out: &mut Handled,
    ) -> Vec<String> {
        let wanted: Vec<_> = wanted
            .into_iter()
            .filter(|(ci, m)| drain_needs(ci, *m) != (false, None))
            .collect();
        if wanted.is_empty() {
            return Vec::new();
        }
        if self.dry_run {
            for (ci, _) in wanted {
                out.did(
                    Action::DrainContainerInstance,
                    Outcome::DryRun,
                    format!("dry run: would set {} DRAINING", ci.arn),
                );
            }
            return Vec::new();
        }
        let mut failed = Vec::new();
        let cis: Vec<ContainerInstance> = wanted.iter().map(|(ci, _)| ci.clone()).collect();
        for (arn, r) in self.fleet.ecs.drain_all(wanted).await {
            match r {
                Ok(DrainResult::Drained) => out.did(
                    Action::DrainContainerInstance,
                    Outcome::Done,
                    format!("container instance {arn} DRAINING"),
                ),
                Ok(DrainResult::DrainedUnmarked) => {
                    out.did(
                        Action::DrainContainerInstance,
                        Outcome::Done,
                        format!("container instance {arn} DRAINING"),
                    );
                    out.did(
                        Action::MarkDrain,
                        Outcome::Failed,
                        format!(
                            "container instance {arn}: {}",
                            fleetguard::text::UNMARKED_DRAIN
                        ),
                    );
                    if let Some(ci) = cis.iter().find(|c| c.arn == arn) {
                        out.notifications
                            .push(unmarked_drain_notice(ci, self.clock.now()));
                    }
                }
                Ok(DrainResult::AlreadyDraining) => {}
                Err(e) => {
                    failed.push(arn);
                    out.failed(Action::DrainContainerInstance, e);
                }
            }
        }
        failed
    }

    /// Undo a drain of ours: ACTIVE again, mark removed.
    pub(crate) async fn undo_drain(&self, ci: &ContainerInstance, out: &mut Handled) -> bool {
        let why = ci.drain_mark.map(|m| m.reason.as_str()).unwrap_or("drain");
        if self.dry_run {
            out.did(
                Action::ActivateContainerInstance,
                Outcome::DryRun,
                format!("dry run: would set {} ACTIVE again ({why})", ci.arn),
            );
            return true;
        }
        match self.fleet.ecs.activate(ci).await {
            Ok(()) => {
                out.did(
                    Action::ActivateContainerInstance,
                    if ci.status == "ACTIVE" {
                        Outcome::AlreadyDone
                    } else {
                        Outcome::Done
                    },
                    format!("container instance {} ACTIVE again ({why} is over)", ci.arn),
                );
                // The drain's incident ends here: a later drain is a new one (a new page).
                out.notifications
                    .push(crate::render::back_in_service(ci, why, self.dry_run));
                true
            }
            Err(e) => {
                out.failed(Action::ActivateContainerInstance, e);
                false
            }
        }
    }

    /// Deregister the targets that are not already draining.
    pub(crate) async fn deregister(
        &self,
        instance: &str,
        registrations: &[Registration],
        out: &mut Handled,
    ) {
        let active: Vec<Registration> = registrations
            .iter()
            .filter(|r| r.state != "draining")
            .cloned()
            .collect();
        if !active.is_empty() {
            if self.dry_run {
                out.did(
                    Action::DeregisterTargets,
                    Outcome::DryRun,
                    format!(
                        "dry run: would deregister {instance} from {} target group(s)",
                        active.len()
                    ),
                );
            } else {
                match self.fleet.elbv2.deregister(instance, &active).await {
                    Ok(()) => {
                        for r in &active {
                            out.did(
                                Action::DeregisterTargets,
                                Outcome::Done,
                                format!("deregistered from {}", r.target_group_arn),
                            );
                        }
                    }
                    Err(e) => out.failed(Action::DeregisterTargets, e),
                }
            }
        }
    }

    pub(crate) async fn evidence_for(
        &self,
        ci: Option<&ContainerInstance>,
        registrations: Vec<Registration>,
    ) -> Result<Evidence, AwsError> {
        let ecs = match ci {
            None => EcsEvidence::NotInCluster,
            Some(ci) => {
                EcsEvidence::Tasks(all_tasks_on(&self.fleet.ecs, &ci.cluster_arn, &ci.arn).await?)
            }
        };
        Ok(Evidence { ecs, registrations })
    }

    /// The tasks still running on a container instance and the recent events of their services.
    pub(crate) async fn why_not_empty(
        &self,
        ci: Option<&ContainerInstance>,
    ) -> (Vec<Task>, Vec<(String, Vec<String>)>) {
        let Some(ci) = ci else {
            return (Vec::new(), Vec::new());
        };
        let tasks = match all_tasks_on(&self.fleet.ecs, &ci.cluster_arn, &ci.arn).await {
            Ok(t) => t
                .into_iter()
                .filter(|t| t.last_status != "STOPPED")
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "could not list the remaining tasks");
                Vec::new()
            }
        };
        let services: Vec<String> = count_by_service(&tasks)
            .into_keys()
            .filter(|s| s != "(standalone)")
            .collect();
        let events = if services.is_empty() {
            Vec::new()
        } else {
            self.fleet
                .ecs
                .service_events(&ci.cluster_arn, &services, 3)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not read service events");
                    Vec::new()
                })
        };
        (tasks, events)
    }
}
