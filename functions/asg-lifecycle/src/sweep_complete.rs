//! The sweep's completions: each in parallel (at most `SWEEP_CONCURRENCY`), with its message,
//! while the deadline leaves `COMPLETION_RESERVE`; what does not fit is the next sweep's.

use crate::decide::{CompleteReason, Evidence, expected_cluster};
use crate::drain::{FleetSample, Handled, Lifecycle};
use crate::render::{Render, render_drain_completed, render_drain_forced, render_launch_timeout};
use crate::sweep::Waiting;
use fleetguard::notify::Deadline;
use fleetguard::observe::FleetMetric;
use fleetguard::ports::{
    AutoScalingGroups, ContainerInstance, ContainerInstances, LifecycleActionResult, Notify,
    TargetGroups,
};
use futures_util::future::join_all;
use std::collections::BTreeMap;

/// How many instances a sweep lists the tasks of, or completes, at once.
pub const SWEEP_CONCURRENCY: usize = 16;

/// The time a completion needs (stash, complete, and its message): none is started with less
/// left before the deadline.
pub const COMPLETION_RESERVE: std::time::Duration = std::time::Duration::from_secs(5);

/// One lifecycle action to complete: the instance, the result and why, the drain's evidence
/// (none for a launch), and whether the drain had work (only then is it announced).
pub(crate) type Completion<'w, 'a> = (
    &'w Waiting<'a>,
    LifecycleActionResult,
    CompleteReason,
    Option<Evidence>,
    bool,
);

/// How the completions went: done, forced, and left to the next sweep.
#[derive(Debug, Default)]
pub(crate) struct Completed {
    pub completed: usize,
    pub forced: usize,
    pub deferred: usize,
}

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// Completes `completions`, in parallel, in the order given into `out`.
    pub(crate) async fn complete_waiting(
        &self,
        region: &str,
        deadline: Deadline,
        completions: Vec<Completion<'_, '_>>,
        by_instance: &BTreeMap<String, ContainerInstance>,
        permits: &tokio::sync::Semaphore,
        out: &mut Handled,
    ) -> Completed {
        let mut tally = Completed::default();
        let finished = join_all(completions.into_iter().map(
            |(w, result, reason, evidence, had_work)| {
                async move {
                    let _permit = permits.acquire().await;
                    // Each completion takes a few calls: what does not fit is the next sweep's.
                    if deadline.remaining() < COMPLETION_RESERVE {
                        return None;
                    }
                    let mut out = Handled::default();
                    let id = w.gi.instance_id.as_str();
                    let g = w.group;
                    let ci = by_instance.get(id);
                    let ctx = Render {
                        group: &g.group,
                        instance: id,
                        region,
                        dry_run: self.dry_run,
                        ci,
                        managed_draining: w.managed_draining,
                    };
                    let announce = match (&evidence, reason) {
                        (Some(evidence), CompleteReason::DrainTimeout) => {
                            // Name what is still running and why, before letting it go.
                            let (tasks, events) = self.why_not_empty(ci).await;
                            Some(render_drain_forced(
                                &ctx,
                                evidence,
                                &tasks,
                                &events,
                                w.elapsed.unwrap_or_default(),
                                result,
                            ))
                        }
                        (Some(evidence), _) => {
                            had_work.then(|| render_drain_completed(&ctx, evidence, w.elapsed))
                        }
                        (None, CompleteReason::LaunchTimeout) => Some(render_launch_timeout(
                            &g.group,
                            id,
                            region,
                            w.hooks
                                .iter()
                                .find_map(|h| expected_cluster(h.notification_metadata.as_deref()))
                                .as_deref()
                                .unwrap_or_default(),
                            ci,
                            w.elapsed.unwrap_or_default(),
                            result,
                            self.dry_run,
                        )),
                        (None, _) => None,
                    };
                    let done = self
                        .complete(
                            &g.group.name,
                            &w.hooks,
                            id,
                            None,
                            result,
                            announce,
                            &mut out,
                        )
                        .await;
                    if done {
                        match reason {
                            CompleteReason::DrainTimeout => out.fleet.push(FleetSample::of(
                                FleetMetric::ForcedCompletions,
                                &g.group.name,
                                ci,
                                None,
                            )),
                            CompleteReason::Drained => out.fleet.push(FleetSample::of(
                                FleetMetric::Drains,
                                &g.group.name,
                                ci,
                                w.elapsed,
                            )),
                            _ => {}
                        }
                    }
                    Some((out, done, reason))
                }
            },
        ))
        .await;
        // In the order the instances were looked at, so the summary reads the same every run.
        for f in finished {
            let Some((part, done, reason)) = f else {
                tally.deferred += 1;
                continue;
            };
            out.actions.extend(part.actions);
            out.notifications.extend(part.notifications);
            out.errors.extend(part.errors);
            out.stashed.extend(part.stashed);
            out.fleet.extend(part.fleet);
            match (done, reason) {
                (true, CompleteReason::DrainTimeout) => tally.forced += 1,
                (true, _) => tally.completed += 1,
                _ => {}
            }
        }
        tally
    }
}
