//! The minute sweep: every managed group's instances in `Terminating:Wait` and `Pending:Wait`.
//! It completes what events missed, starts drains whose event was lost, records heartbeats and
//! enforces `MAX_DRAIN_SECONDS` and `LAUNCH_TIMEOUT_SECONDS`.

use crate::config::ECS_MANAGED_DRAINING_HOOK;
use crate::decide::{
    CompleteReason, EcsEvidence, Evidence, Step, When, decide_launch, decide_terminate,
    expected_cluster, heartbeat_due, joined,
};
use crate::drain::{Handled, Lifecycle, STASH_PREFIX, is_pending, is_terminating};
use crate::render::{Render, render_drain_completed, render_drain_forced, render_launch_timeout};
use fleetguard::out_of_service::all_tasks_on;
use fleetguard::ports::{
    AutoScalingGroups, AwsError, ContainerInstance, ContainerInstances, GroupInstance,
    LifecycleHook, Notify, Registration, TargetGroups,
};
use std::collections::{BTreeMap, BTreeSet};

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// The scheduled sweep: every managed group's instances in `Terminating:Wait` and
    /// `Pending:Wait`, in batches.
    pub async fn sweep(&self, region: &str) -> Result<Handled, AwsError> {
        // Completion messages a failed run could not deliver (its retry, this same scheduled
        // event, cannot know which instances that run completed).
        let mut resend = Handled::default();
        for key in self.notifier.stashed_keys().await {
            let Some(instance) = key.strip_prefix(STASH_PREFIX) else {
                continue;
            };
            let before = resend.notifications.len();
            self.resend_stashed(instance, &mut resend).await;
            if resend.notifications.len() == before {
                // Listed, but expired or gone: drop it from the index.
                self.notifier.unstash(&key).await;
            }
        }
        let mut out = self.sweep_groups(region).await?;
        out.notifications.extend(resend.notifications);
        out.stashed.extend(resend.stashed);
        Ok(out)
    }

    async fn sweep_groups(&self, region: &str) -> Result<Handled, AwsError> {
        let tag = self
            .config
            .managed_tag
            .as_ref()
            .map(|t| (t.key.as_str(), t.value.as_deref()));
        let groups = self
            .fleet
            .autoscaling
            .groups(&self.config.groups, tag)
            .await?;
        let groups: Vec<_> = groups
            .into_iter()
            .filter(|g| self.config.manages(&g.group))
            .collect();
        let waiting_count: usize = groups
            .iter()
            .map(|g| {
                g.instances
                    .iter()
                    .filter(|i| {
                        is_terminating(&i.lifecycle_state) || is_pending(&i.lifecycle_state)
                    })
                    .count()
            })
            .sum();
        if waiting_count == 0 {
            return Ok(Handled::new(format!(
                "nothing waiting in {} managed group(s)",
                groups.len()
            )));
        }
        let now = self.clock.now();
        let mut out = Handled::new("");
        // Per group: its hooks and when each waiting instance's activity started.
        let mut per_group = Vec::new();
        for g in &groups {
            let waiting: Vec<&GroupInstance> = g
                .instances
                .iter()
                .filter(|i| is_terminating(&i.lifecycle_state) || is_pending(&i.lifecycle_state))
                .collect();
            if waiting.is_empty() {
                continue;
            }
            // One group that cannot be read never holds back the others.
            let hooks = match self.fleet.autoscaling.hooks(&g.group.name).await {
                Ok(h) => h,
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            };
            let wanted: Vec<(String, bool)> = waiting
                .iter()
                .map(|i| (i.instance_id.clone(), is_terminating(&i.lifecycle_state)))
                .collect();
            let started = self.start_times(&g.group.name, &wanted).await;
            per_group.push((g, waiting, hooks, started));
        }
        // ECS: every container instance of the clusters concerned, listed and described in
        // batches of 100, by EC2 instance id.
        let mut clusters: BTreeSet<String> = self
            .fleet
            .ecs
            .clusters(&self.config.clusters, false)
            .await?
            .into_iter()
            .collect();
        for (_, _, hooks, _) in &per_group {
            clusters.extend(
                hooks
                    .iter()
                    .filter_map(|h| expected_cluster(h.notification_metadata.as_deref())),
            );
        }
        let mut by_instance: BTreeMap<String, ContainerInstance> = BTreeMap::new();
        let mut ecs_unknown = false;
        for c in &clusters {
            match self.fleet.ecs.container_instances(c, None).await {
                Ok(cis) => {
                    for ci in cis {
                        by_instance.insert(ci.ec2_instance_id.clone(), ci);
                    }
                }
                // A cluster deleted since it was listed (or named in a hook) holds nothing.
                Err(e) if e.code.as_deref() == Some("ClusterNotFoundException") => {
                    tracing::info!(cluster = %c, "cluster no longer exists: skipped");
                }
                // Its container instances are unknown: no instance is concluded to be outside
                // ECS (and so empty) this sweep; heartbeats still go out.
                Err(e) => {
                    ecs_unknown = true;
                    out.errors.push(e);
                }
            }
        }
        // Target groups of groups with terminating instances, one call each.
        let mut tg_regs: BTreeMap<String, Vec<Registration>> = BTreeMap::new();
        let mut tgs: BTreeSet<String> = BTreeSet::new();
        for (g, waiting, _, _) in &per_group {
            if waiting.iter().any(|i| is_terminating(&i.lifecycle_state)) {
                tgs.extend(self.target_groups(&g.group));
            }
        }
        let mut tg_unknown: BTreeSet<String> = BTreeSet::new();
        for tg in &tgs {
            match self.fleet.elbv2.target_group_registrations(tg).await {
                Ok(by_id) => {
                    for (id, regs) in by_id {
                        tg_regs.entry(id).or_default().extend(regs);
                    }
                }
                Err(e) => {
                    tg_unknown.insert(tg.clone());
                    out.errors.push(e);
                }
            }
        }
        let (mut completed, mut forced, mut heartbeats, mut draining) = (0, 0, 0, 0);
        // Heartbeats are recorded together, in parallel, once every instance was looked at.
        let mut due: Vec<(String, String, String)> = Vec::new();
        for (g, waiting, hooks, started) in &per_group {
            let managed_draining = hooks.iter().any(|h| h.name == ECS_MANAGED_DRAINING_HOOK);
            for gi in waiting {
                let id = gi.instance_id.as_str();
                let our_hooks: Vec<&LifecycleHook> = hooks
                    .iter()
                    .filter(|h| {
                        h.is_terminating() == is_terminating(&gi.lifecycle_state)
                            && self.config.owns_hook(&h.name)
                    })
                    .collect();
                let started_at = started.get(id).copied();
                if our_hooks.is_empty() {
                    continue;
                }
                let elapsed = started_at.map(|s| (now - s).max(0));
                let heartbeat_timeout = our_hooks
                    .iter()
                    .map(|h| h.heartbeat_timeout_secs)
                    .min()
                    .unwrap_or(3600);
                if is_terminating(&gi.lifecycle_state) {
                    let ci = by_instance.get(id);
                    let regs = tg_regs.get(id).cloned().unwrap_or_default();
                    // Backstop for a missed lifecycle event: start the drain.
                    let before = out.errors.len();
                    self.start_drain(ci, managed_draining, id, &regs, &mut out)
                        .await;
                    // What could not be read this sweep: never concluded empty, still heartbeated.
                    let mut unknown = out.errors.len() > before
                        || (ci.is_none() && ecs_unknown)
                        || self
                            .target_groups(&g.group)
                            .iter()
                            .any(|tg| tg_unknown.contains(tg));
                    let had_work = ci.is_some() || !regs.is_empty();
                    let ecs = match ci {
                        _ if unknown => EcsEvidence::Busy {
                            running: 0,
                            pending: 0,
                        },
                        None => EcsEvidence::NotInCluster,
                        Some(c) if c.running_tasks_count > 0 || c.pending_tasks_count > 0 => {
                            EcsEvidence::Busy {
                                running: c.running_tasks_count,
                                pending: c.pending_tasks_count,
                            }
                        }
                        Some(c) => {
                            match all_tasks_on(&self.fleet.ecs, &c.cluster_arn, &c.arn).await {
                                Ok(t) => EcsEvidence::Tasks(t),
                                Err(e) => {
                                    out.errors.push(e);
                                    unknown = true;
                                    EcsEvidence::Busy {
                                        running: 0,
                                        pending: 0,
                                    }
                                }
                            }
                        }
                    };
                    let evidence = Evidence {
                        ecs,
                        registrations: regs,
                    };
                    let when = When::Sweep {
                        elapsed_secs: elapsed,
                        heartbeat_timeout_secs: heartbeat_timeout,
                    };
                    let step = match decide_terminate(&evidence, had_work, when, &self.config) {
                        // Forcing needs the facts too; waiting with a heartbeat is always safe.
                        Step::Complete { .. } if unknown => Step::Wait {
                            heartbeat: heartbeat_due(elapsed, heartbeat_timeout),
                        },
                        step => step,
                    };
                    let ctx = Render {
                        group: &g.group,
                        instance: id,
                        region,
                        dry_run: self.dry_run,
                        ci,
                        managed_draining,
                    };
                    match step {
                        Step::Complete { result, reason } => {
                            if reason == CompleteReason::DrainTimeout {
                                // Name what is still running and why, before letting it go.
                                let (tasks, events) = self.why_not_empty(ci).await;
                                let announce = render_drain_forced(
                                    &ctx,
                                    &evidence,
                                    &tasks,
                                    &events,
                                    elapsed.unwrap_or_default(),
                                    result,
                                );
                                if self
                                    .complete(
                                        &g.group.name,
                                        &our_hooks,
                                        id,
                                        result,
                                        Some(announce),
                                        &mut out,
                                    )
                                    .await
                                {
                                    forced += 1;
                                }
                            } else {
                                let announce = had_work
                                    .then(|| render_drain_completed(&ctx, &evidence, elapsed));
                                if self
                                    .complete(
                                        &g.group.name,
                                        &our_hooks,
                                        id,
                                        result,
                                        announce,
                                        &mut out,
                                    )
                                    .await
                                {
                                    completed += 1;
                                }
                            }
                        }
                        Step::Wait { heartbeat } => {
                            draining += 1;
                            if heartbeat {
                                heartbeats += 1;
                                for h in &our_hooks {
                                    due.push((g.group.name.clone(), h.name.clone(), id.to_owned()));
                                }
                            }
                        }
                    }
                } else {
                    let cluster = our_hooks
                        .iter()
                        .find_map(|h| expected_cluster(h.notification_metadata.as_deref()));
                    let warm = gi.lifecycle_state.starts_with("Warmed:");
                    let joined_now = cluster
                        .as_deref()
                        .is_some_and(|c| by_instance.get(id).is_some_and(|ci| joined(ci, c)));
                    match decide_launch(
                        warm,
                        cluster.as_deref(),
                        joined_now,
                        When::Sweep {
                            elapsed_secs: elapsed,
                            heartbeat_timeout_secs: heartbeat_timeout,
                        },
                        &self.config,
                    ) {
                        Step::Complete { result, reason } => {
                            let announce = (reason == CompleteReason::LaunchTimeout).then(|| {
                                render_launch_timeout(
                                    &g.group,
                                    id,
                                    region,
                                    cluster.as_deref().unwrap_or_default(),
                                    by_instance.get(id),
                                    elapsed.unwrap_or_default(),
                                    result,
                                    self.dry_run,
                                )
                            });
                            if self
                                .complete(&g.group.name, &our_hooks, id, result, announce, &mut out)
                                .await
                            {
                                completed += 1;
                            }
                        }
                        Step::Wait { heartbeat } => {
                            if heartbeat {
                                heartbeats += 1;
                                for h in &our_hooks {
                                    due.push((g.group.name.clone(), h.name.clone(), id.to_owned()));
                                }
                            }
                        }
                    }
                }
            }
        }
        self.heartbeat_all(due, &mut out).await;
        out.outcome = format!(
            "swept {waiting_count} waiting instance(s): {completed} completed, {forced} forced, {draining} still draining, {heartbeats} heartbeat(s)"
        );
        Ok(out)
    }
}
