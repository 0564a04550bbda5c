//! The sweep's reading: each managed group's hooks and start times, the container instances of
//! the clusters concerned, and the target groups' registrations. What could not be read is said
//! so (`ecs_unknown`, `tg_unknown`, an error in `out`), never taken for "empty".

use crate::decide::{MIN_SAFE_HEARTBEAT_TIMEOUT_SECS, expected_cluster};
use crate::drain::{Handled, Lifecycle, is_pending, is_terminating, is_warm_pending};
use fleetguard::ports::{
    AutoScalingGroups, ContainerInstance, ContainerInstances, GroupDetail, GroupInstance,
    LifecycleHook, Notify, Registration, TargetGroups,
};
use std::collections::{BTreeMap, BTreeSet};

/// A group with instances waiting: the group, those instances, its hooks (as read now, or as
/// last read) and when each instance's activity started.
pub(crate) type GroupWaiting<'a> = (
    &'a GroupDetail,
    Vec<&'a GroupInstance>,
    Vec<LifecycleHook>,
    BTreeMap<String, i64>,
);

/// What one sweep found.
pub(crate) struct Seen<'a> {
    pub per_group: Vec<GroupWaiting<'a>>,
    /// (group, hook, instance) heartbeats for groups whose hooks could not be read, and never
    /// were in this execution environment.
    pub blind: Vec<(String, String, String)>,
    /// Container instances by EC2 instance id.
    pub by_instance: BTreeMap<String, ContainerInstance>,
    /// ECS could not be fully read: no instance is concluded to be outside it.
    pub ecs_unknown: bool,
    /// Target group registrations by instance id.
    pub tg_regs: BTreeMap<String, Vec<Registration>>,
    /// Target groups that could not be read.
    pub tg_unknown: BTreeSet<String>,
}

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// Everything the sweep needs to know about `groups`' waiting instances. Errors go to `out`
    /// (they fail the run, so it is retried) and never stop the rest from being read.
    pub(crate) async fn read_waiting<'a>(
        &self,
        groups: &'a [GroupDetail],
        out: &mut Handled,
    ) -> Seen<'a> {
        let is_waiting = |s: &str| is_terminating(s) || is_pending(s) || is_warm_pending(s);
        // Per group: its hooks and when each waiting instance's activity started.
        let mut per_group = Vec::new();
        // Heartbeats for groups whose hooks could not be read, and were never read in this
        // execution environment: each of our hook names for each waiting instance (a name that
        // holds nothing answers so, harmlessly).
        let mut blind: Vec<(String, String, String)> = Vec::new();
        for g in groups {
            let waiting: Vec<&GroupInstance> = g
                .instances
                .iter()
                .filter(|i| is_waiting(&i.lifecycle_state))
                .collect();
            if waiting.is_empty() {
                continue;
            }
            // One group that cannot be read never holds back the others. Its hooks as last
            // read still get their heartbeats (the error fails the run, so it is retried).
            let hooks = match self.fleet.autoscaling.hooks(&g.group.name).await {
                Ok(h) => {
                    let first_read = self.starts.hooks_last_read(&g.group.name).is_none();
                    self.starts.hooks_read(&g.group.name, &h);
                    if first_read {
                        warn_short_timeouts(&g.group.name, &h, |n| self.config.owns_hook(n));
                    }
                    h
                }
                Err(e) => {
                    out.errors.push(e);
                    match self.starts.hooks_last_read(&g.group.name) {
                        Some(h) => h,
                        None => {
                            for i in &waiting {
                                for name in self
                                    .config
                                    .hooks
                                    .iter()
                                    .filter(|n| self.config.owns_hook(n))
                                {
                                    blind.push((
                                        g.group.name.clone(),
                                        name.clone(),
                                        i.instance_id.clone(),
                                    ));
                                }
                            }
                            continue;
                        }
                    }
                }
            };
            let wanted: Vec<(String, bool)> = waiting
                .iter()
                .map(|i| (i.instance_id.clone(), !is_pending(&i.lifecycle_state)))
                .collect();
            let started = self.start_times(&g.group.name, &wanted).await;
            per_group.push((g, waiting, hooks, started));
        }
        // ECS: every container instance of the clusters concerned, listed and described in
        // batches of 100, by EC2 instance id. Without the account's cluster list, ECS is
        // unknown: nothing is concluded empty, but every hook is still heartbeated (a sweep that
        // gave up here let a hook expire while ListClusters was down; found by the simulator).
        let mut ecs_unknown = false;
        let mut clusters: BTreeSet<String> = match self
            .fleet
            .ecs
            .clusters(&self.config.scope.clusters, false)
            .await
        {
            Ok(c) => c.into_iter().collect(),
            Err(e) => {
                ecs_unknown = true;
                out.errors.push(e);
                BTreeSet::new()
            }
        };
        for (_, _, hooks, _) in &per_group {
            clusters.extend(
                hooks
                    .iter()
                    .filter_map(|h| expected_cluster(h.notification_metadata.as_deref())),
            );
        }
        let mut by_instance: BTreeMap<String, ContainerInstance> = BTreeMap::new();
        self.list_container_instances(&clusters, &mut by_instance, &mut ecs_unknown, out)
            .await;
        // An instance on its way out found in no listed cluster may be in one created since the
        // account's cluster list was read: read it again before concluding "not in ECS".
        let unseen = per_group.iter().any(|(_, waiting, _, _)| {
            waiting.iter().any(|i| {
                !is_pending(&i.lifecycle_state) && !by_instance.contains_key(&i.instance_id)
            })
        });
        if unseen && self.config.scope.clusters.is_empty() {
            match self.fleet.ecs.clusters(&[], true).await {
                Ok(all) => {
                    let new: BTreeSet<String> =
                        all.into_iter().filter(|c| !clusters.contains(c)).collect();
                    self.list_container_instances(&new, &mut by_instance, &mut ecs_unknown, out)
                        .await;
                }
                Err(e) => {
                    ecs_unknown = true;
                    out.errors.push(e);
                }
            }
        }
        // Target groups of groups with instances on their way out, one call each.
        let mut tg_regs: BTreeMap<String, Vec<Registration>> = BTreeMap::new();
        let mut tgs: BTreeSet<String> = BTreeSet::new();
        for (g, waiting, _, _) in &per_group {
            if waiting.iter().any(|i| !is_pending(&i.lifecycle_state)) {
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
        Seen {
            per_group,
            blind,
            by_instance,
            ecs_unknown,
            tg_regs,
            tg_unknown,
        }
    }

    /// Every container instance of `clusters`, by EC2 instance id (listed and described 100 at
    /// a time). A cluster deleted since it was listed (or named in a hook) holds nothing; one
    /// that cannot be read makes `unknown` true: no instance is then concluded to be outside
    /// ECS (and so empty) this sweep, and heartbeats still go out.
    async fn list_container_instances(
        &self,
        clusters: &BTreeSet<String>,
        by_instance: &mut BTreeMap<String, ContainerInstance>,
        unknown: &mut bool,
        out: &mut Handled,
    ) {
        for c in clusters {
            match self.fleet.ecs.container_instances(c, None).await {
                Ok(cis) => {
                    for ci in cis {
                        by_instance.insert(ci.ec2_instance_id.clone(), ci);
                    }
                }
                Err(e) if e.code.as_deref() == Some("ClusterNotFoundException") => {
                    tracing::info!(cluster = %c, "cluster no longer exists: skipped");
                }
                Err(e) => {
                    *unknown = true;
                    out.errors.push(e);
                }
            }
        }
    }
}

/// Warn (once per group and execution environment) of a hook of ours whose heartbeat timeout is
/// under [`MIN_SAFE_HEARTBEAT_TIMEOUT_SECS`]: the sweep heartbeats it every minute, but a
/// skipped sweep and two minutes of Auto Scaling failing are enough for AWS to expire it.
fn warn_short_timeouts(
    group: &str,
    hooks: &[fleetguard::ports::LifecycleHook],
    ours: impl Fn(&str) -> bool,
) {
    for h in hooks.iter().filter(|h| ours(&h.name)) {
        if h.heartbeat_timeout_secs < MIN_SAFE_HEARTBEAT_TIMEOUT_SECS {
            tracing::warn!(
                group,
                hook = %h.name,
                heartbeat_timeout = h.heartbeat_timeout_secs,
                "heartbeat timeout under {MIN_SAFE_HEARTBEAT_TIMEOUT_SECS} s: a missed sweep and a short Auto Scaling outage can let AWS expire this hook (set it to {MIN_SAFE_HEARTBEAT_TIMEOUT_SECS} s or more)"
            );
        }
    }
}
