//! The minute sweep: every managed group's instances in `Terminating:Wait` and `Pending:Wait`.
//! It completes what events missed, starts drains whose event was lost, records heartbeats and
//! enforces `MAX_DRAIN_SECONDS` and `LAUNCH_TIMEOUT_SECONDS`.

use crate::config::ECS_MANAGED_DRAINING_HOOK;
use crate::decide::{
    EcsEvidence, Evidence, Step, Undo, When, decide_launch, decide_terminate, decide_undo,
    expected_cluster, heartbeat_due, joined,
};
use crate::drain::{Handled, Lifecycle, STASH_PREFIX, is_pending, is_terminating, is_warm_pending};
use crate::sweep_complete::Completed;
pub use crate::sweep_complete::{COMPLETION_RESERVE, SWEEP_CONCURRENCY};
use crate::sweep_read::Seen;
use crate::undo::undo_pass_due;
use fleetguard::notify::Deadline;
use fleetguard::out_of_service::all_tasks_on;
use fleetguard::ports::{
    AutoScalingGroups, AwsError, ContainerInstance, ContainerInstances, DrainMark, DrainReason,
    GroupDetail, GroupInstance, LifecycleHook, Notify, TargetGroups, Task,
};
use fleetguard::reasons::launch_mark;
use futures_util::future::join_all;
use std::collections::{BTreeMap, BTreeSet};

/// A waiting instance of ours, as the sweep sees it.
pub(crate) struct Waiting<'a> {
    pub group: &'a GroupDetail,
    /// Our hooks that may hold it.
    pub hooks: Vec<&'a LifecycleHook>,
    pub gi: &'a GroupInstance,
    /// A drain (terminating, or scaling in back to the warm pool with something on it), else a
    /// launch.
    pub drain: bool,
    pub managed_draining: bool,
    pub elapsed: Option<i64>,
    pub heartbeat_timeout: i64,
}

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// The scheduled sweep: every managed group's instances in `Terminating:Wait`,
    /// `Pending:Wait` and `Warmed:Pending:Wait`, in batches; and, every few minutes, the drains
    /// of ours to undo. Within `deadline`: heartbeats go first, completions that do not fit are
    /// left to the next sweep.
    pub async fn sweep(&self, region: &str, deadline: Deadline) -> Result<Handled, AwsError> {
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
        let (mut out, states) = match self.sweep_groups(region, deadline).await {
            Ok(r) => r,
            Err(e) => {
                // Auto Scaling cannot be read: the hooks the last sweep heartbeated still get
                // theirs (one that is no longer waiting answers so, harmlessly); the run fails,
                // and is retried.
                let last = self.starts.last_heartbeats();
                if !last.is_empty() {
                    tracing::warn!(error = %e, heartbeats = last.len(), "groups unreadable: heartbeats as last recorded");
                    self.heartbeat_all(last, &mut Handled::default()).await;
                }
                return Err(e);
            }
        };
        if undo_pass_due(self.clock.now()) {
            let undone =
                self.undo_pass(&states, &mut out).await + self.plain_pass(&states, &mut out).await;
            if undone > 0 {
                out.outcome = format!("{}; {undone} drain(s) undone", out.outcome);
            }
        }
        out.notifications.extend(resend.notifications);
        out.stashed.extend(resend.stashed);
        Ok(out)
    }

    /// Every managed group's waiting instances. Also returns every managed instance's lifecycle
    /// state (for the undo pass).
    async fn sweep_groups(
        &self,
        region: &str,
        deadline: Deadline,
    ) -> Result<(Handled, BTreeMap<String, String>), AwsError> {
        let tag = self
            .config
            .scope
            .managed_tag
            .as_ref()
            .map(|t| (t.key.as_str(), t.value.as_deref()));
        let groups = self
            .fleet
            .autoscaling
            .groups(&self.config.scope.groups, tag)
            .await?;
        let groups: Vec<_> = groups
            .into_iter()
            .filter(|g| self.config.manages(&g.group))
            .collect();
        let states: BTreeMap<String, String> = groups
            .iter()
            .flat_map(|g| &g.instances)
            .map(|i| (i.instance_id.clone(), i.lifecycle_state.clone()))
            .collect();
        let is_waiting = |s: &str| is_terminating(s) || is_pending(s) || is_warm_pending(s);
        // Start times kept only for what still waits, in the transition it waits in.
        self.starts.retain(
            &groups
                .iter()
                .flat_map(|g| &g.instances)
                .filter(|i| is_waiting(&i.lifecycle_state))
                .map(|i| (i.instance_id.clone(), !is_pending(&i.lifecycle_state)))
                .collect(),
        );
        let waiting_count: usize = groups
            .iter()
            .map(|g| {
                g.instances
                    .iter()
                    .filter(|i| is_waiting(&i.lifecycle_state))
                    .count()
            })
            .sum();
        if waiting_count == 0 {
            return Ok((
                Handled::new(format!(
                    "nothing waiting in {} managed group(s)",
                    groups.len()
                )),
                states,
            ));
        }
        let now = self.clock.now();
        let mut out = Handled::new("");
        let Seen {
            per_group,
            blind,
            by_instance,
            ecs_unknown,
            tg_regs,
            tg_unknown,
        } = self.read_waiting(&groups, &mut out).await;
        // What each waiting instance of ours is: a drain (terminating, or scaling in back to the
        // warm pool with something on it) or a launch.
        let mut items: Vec<Waiting> = Vec::new();
        for (g, waiting, hooks, started) in &per_group {
            let managed_draining = hooks.iter().any(|h| h.name == ECS_MANAGED_DRAINING_HOOK);
            for gi in waiting {
                let id = gi.instance_id.as_str();
                let state = gi.lifecycle_state.as_str();
                let warm = is_warm_pending(state);
                // `Warmed:Pending:Wait` is held by a launch hook (into the pool) or a terminate
                // hook (scale-in back to it): AWS does not say which, so any of ours may be it.
                let our_hooks: Vec<&LifecycleHook> = hooks
                    .iter()
                    .filter(|h| {
                        self.config.owns_hook(&h.name)
                            && (warm || h.is_terminating() == is_terminating(state))
                    })
                    .collect();
                if our_hooks.is_empty() {
                    continue;
                }
                let ci = by_instance.get(id);
                // Only under a terminate hook of ours: a scale-in held by another tool's hook is
                // that tool's to handle.
                let drain = is_terminating(state)
                    || (warm
                        && our_hooks.iter().any(|h| h.is_terminating())
                        && (ci.is_some_and(|c| {
                            c.running_tasks_count > 0
                                || c.pending_tasks_count > 0
                                || c.drain_mark.is_some()
                        }) || tg_regs.get(id).is_some_and(|r| !r.is_empty())));
                let heartbeat_timeout = our_hooks
                    .iter()
                    .filter(|h| !warm || !drain || h.is_terminating())
                    .map(|h| h.heartbeat_timeout_secs)
                    .min()
                    .unwrap_or(3600);
                // A scale-in to the warm pool may have no scaling activity to date it: our
                // drain mark does.
                let started_at = started
                    .get(id)
                    .copied()
                    .or_else(|| warm.then(|| ci.and_then(|c| c.drain_mark).map(|m| m.at))?);
                items.push(Waiting {
                    group: g,
                    hooks: our_hooks,
                    gi,
                    drain,
                    managed_draining,
                    elapsed: started_at.map(|s| (now - s).max(0)),
                    heartbeat_timeout,
                });
            }
        }
        // Backstop for missed lifecycle events: start every drain, container instances ten a
        // call, then deregistrations.
        let mark = DrainMark {
            reason: DrainReason::WarmPool,
            at: now,
        };
        let to_drain: Vec<(ContainerInstance, Option<DrainMark>)> = items
            .iter()
            .filter(|w| w.drain && !w.managed_draining)
            .filter_map(|w| {
                let ci = by_instance.get(&w.gi.instance_id)?;
                let warm = is_warm_pending(&w.gi.lifecycle_state);
                Some((ci.clone(), warm.then_some(mark)))
            })
            .collect();
        let failed_drains: BTreeSet<String> = self
            .drain_container_instances(to_drain, &mut out)
            .await
            .into_iter()
            .collect();
        // The tasks of every draining container instance whose counters say empty (counters
        // are no proof), listed in parallel.
        let permits = tokio::sync::Semaphore::new(SWEEP_CONCURRENCY);
        let to_list: Vec<&ContainerInstance> = items
            .iter()
            .filter(|w| w.drain)
            .filter_map(|w| by_instance.get(&w.gi.instance_id))
            .filter(|c| c.running_tasks_count == 0 && c.pending_tasks_count == 0)
            .filter(|c| !failed_drains.contains(&c.arn))
            .collect();
        let listed = join_all(to_list.iter().map(|c| async {
            let _permit = permits.acquire().await;
            (
                c.arn.clone(),
                all_tasks_on(&self.fleet.ecs, &c.cluster_arn, &c.arn).await,
            )
        }))
        .await;
        let mut tasks_of: BTreeMap<String, Result<Vec<Task>, AwsError>> =
            listed.into_iter().collect();
        let (mut heartbeats, mut draining) = (0, 0);
        // Heartbeats are recorded first, in parallel, once every instance was looked at; then
        // the completions, in parallel, while the deadline allows.
        let mut due: Vec<(String, String, String)> = Vec::new();
        let mut completions = Vec::new();
        for w in &items {
            let id = w.gi.instance_id.as_str();
            let g = w.group;
            let ci = by_instance.get(id);
            let when = When::Sweep {
                elapsed_secs: w.elapsed,
                heartbeat_timeout_secs: w.heartbeat_timeout,
            };
            if w.drain {
                let regs = tg_regs.get(id).cloned().unwrap_or_default();
                let before = out.errors.len();
                // As for an event: deregistered once the container instance is drained, or
                // known to be in no cluster. Targets left in place keep the drain known to have
                // had work (a warm-pool scale-in whose targets went while ECS was unreadable was
                // then completed unannounced; found by the simulator).
                let drain_known = match ci {
                    Some(c) => !failed_drains.contains(&c.arn),
                    None => !ecs_unknown,
                };
                if drain_known {
                    self.deregister(id, &regs, &mut out).await;
                }
                // What could not be read or done this sweep: never concluded empty, still
                // heartbeated.
                let mut unknown = out.errors.len() > before
                    || ci.is_some_and(|c| failed_drains.contains(&c.arn))
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
                    Some(c) => match tasks_of.remove(&c.arn) {
                        Some(Ok(t)) => EcsEvidence::Tasks(t),
                        Some(Err(e)) => {
                            out.errors.push(e);
                            unknown = true;
                            EcsEvidence::Busy {
                                running: 0,
                                pending: 0,
                            }
                        }
                        // Not listed (its drain call failed): unknown.
                        None => {
                            unknown = true;
                            EcsEvidence::Busy {
                                running: 0,
                                pending: 0,
                            }
                        }
                    },
                };
                let evidence = Evidence {
                    ecs,
                    registrations: regs,
                };
                let step = match decide_terminate(&evidence, had_work, when, &self.config) {
                    // Forcing needs the facts too; waiting with a heartbeat is always safe.
                    Step::Complete { .. } if unknown => Step::Wait {
                        heartbeat: heartbeat_due(w.elapsed, w.heartbeat_timeout),
                    },
                    step => step,
                };
                match step {
                    Step::Complete { result, reason } => {
                        completions.push((w, result, reason, Some(evidence), had_work))
                    }
                    Step::Wait { heartbeat } => {
                        draining += 1;
                        if heartbeat {
                            heartbeats += 1;
                            for h in w.hooks.iter().filter(|h| h.is_terminating()) {
                                due.push((g.group.name.clone(), h.name.clone(), id.to_owned()));
                            }
                        }
                    }
                }
            } else {
                let warm = is_warm_pending(&w.gi.lifecycle_state);
                // Back from the warm pool, still DRAINING from its scale-in: ACTIVE again first.
                let mut back = None;
                if let Some(c) = ci
                    && let Some(m) = launch_mark(c)
                    && decide_undo(
                        m,
                        c,
                        Some(&w.gi.lifecycle_state),
                        now,
                        self.config.rebalance_undo_secs,
                    ) == Undo::Activate
                    && self.undo_drain(c, &mut out).await
                {
                    back = Some(ContainerInstance {
                        status: "ACTIVE".into(),
                        drain_mark: None,
                        ..c.clone()
                    });
                }
                let ci = back.as_ref().or(ci);
                let cluster = w
                    .hooks
                    .iter()
                    .find_map(|h| expected_cluster(h.notification_metadata.as_deref()));
                let joined_now = cluster
                    .as_deref()
                    .is_some_and(|c| ci.is_some_and(|ci| joined(ci, c)));
                // Nothing found to drain on a `Warmed:Pending:Wait` instance only counts when
                // everything could be read: else it may be a scale-in whose container instance
                // was not seen, and it waits (heartbeated) for the next sweep.
                let step = if warm && (ecs_unknown || !tg_unknown.is_empty()) {
                    Step::Wait {
                        heartbeat: heartbeat_due(w.elapsed, w.heartbeat_timeout),
                    }
                } else {
                    decide_launch(warm, cluster.as_deref(), joined_now, when, &self.config)
                };
                match step {
                    Step::Complete { result, reason } => {
                        completions.push((w, result, reason, None, false))
                    }
                    Step::Wait { heartbeat } => {
                        if heartbeat {
                            heartbeats += 1;
                            for h in &w.hooks {
                                due.push((g.group.name.clone(), h.name.clone(), id.to_owned()));
                            }
                        }
                    }
                }
            }
        }
        due.extend(blind);
        self.starts.heartbeats_recorded(&due);
        self.heartbeat_all(due, &mut out).await;
        let Completed {
            completed,
            forced,
            deferred,
        } = self
            .complete_waiting(
                region,
                deadline,
                completions,
                &by_instance,
                &permits,
                &mut out,
            )
            .await;
        out.outcome = format!(
            "swept {waiting_count} waiting instance(s): {completed} completed, {forced} forced, {draining} still draining, {heartbeats} heartbeat(s)"
        );
        if deferred > 0 {
            out.outcome.push_str(&format!(
                ", {deferred} completion(s) left to the next sweep"
            ));
        }
        Ok((out, states))
    }
}
