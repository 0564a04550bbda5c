//! The sweep's undo passes, every few minutes: drains of ours whose reason is over and whose
//! event was missed or never comes (a rebalance drain), on container instances and on plain EC2
//! instances (their deregistrations, kept in the table).

use crate::decide::{SWEEP_INTERVAL_SECS, Undo, decide_undo, undo_may_be_due};
use crate::drain::{Handled, Lifecycle};
use fleetguard::observe::{Action, Outcome};
use fleetguard::out_of_service::plain_back_in_service;
use fleetguard::ports::{AutoScalingGroups, ContainerInstances, Notify, TargetGroups};
use fleetguard::reasons::{in_service_state, plain_put_back_overdue};
use std::collections::BTreeMap;

/// How often the sweep looks for drains to undo: every fifth minute (one `ListAttributes` per
/// cluster), which keeps a steady-state minute's calls low. Events undo most drains first.
pub const UNDO_PASS_EVERY_MINUTES: i64 = 5;

/// Whether this minute's sweep looks for drains to undo.
pub fn undo_pass_due(now: i64) -> bool {
    (now / SWEEP_INTERVAL_SECS) % UNDO_PASS_EVERY_MINUTES == 0
}

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// Drains of ours whose instance is back (missed events; rebalance drains, which no event
    /// ends): every marked container instance of every cluster, `ListAttributes` one call each.
    pub(crate) async fn undo_pass(
        &self,
        states: &BTreeMap<String, String>,
        out: &mut Handled,
    ) -> usize {
        let now = self.clock.now();
        let clusters = match self
            .fleet
            .ecs
            .clusters(&self.config.scope.clusters, false)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                out.errors.push(e);
                return 0;
            }
        };
        let mut undone = 0;
        for cluster in clusters {
            let marked = match self.fleet.ecs.marked(&cluster).await {
                Ok(m) if m.is_empty() => continue,
                Ok(m) => m,
                Err(e) if e.code.as_deref() == Some("ClusterNotFoundException") => continue,
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            };
            let cis = match self.fleet.ecs.describe(&cluster, marked).await {
                Ok(c) => c,
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            };
            for ci in cis {
                let Some(mark) = ci.drain_mark else { continue };
                if !undo_may_be_due(mark, now, self.config.rebalance_undo_secs)
                    && ci.status != "ACTIVE"
                {
                    continue;
                }
                // In a managed group: its state is known from this sweep; else asked.
                let state = match states.get(&ci.ec2_instance_id) {
                    Some(s) => Some(s.clone()),
                    None => match self.fleet.autoscaling.instance(&ci.ec2_instance_id).await {
                        Ok(gi) => gi.map(|g| g.lifecycle_state),
                        Err(e) => {
                            out.errors.push(e);
                            continue;
                        }
                    },
                };
                let undo = decide_undo(
                    mark,
                    &ci,
                    state.as_deref(),
                    now,
                    self.config.rebalance_undo_secs,
                );
                if undo == Undo::Activate && self.undo_drain(&ci, out).await {
                    undone += 1;
                }
            }
        }
        undone
    }

    /// Plain EC2 instances (no container instance) a drain of ours deregistered, that no event
    /// will put back: a rebalance drain whose delay passed (a warning's stronger mark replaces
    /// its mark), a stop or maintenance whose `running` was lost ([`plain_put_back_overdue`]).
    /// One read of the table's index, one item each.
    pub(crate) async fn plain_pass(
        &self,
        states: &BTreeMap<String, String>,
        out: &mut Handled,
    ) -> usize {
        let now = self.clock.now();
        let mut undone = 0;
        for (instance, mark, regs) in self.fleet.ecs.plain_marks().await {
            if !plain_put_back_overdue(mark, now, self.config.rebalance_undo_secs) {
                continue;
            }
            // Scaling in, in the warm pool or in standby: on its way out, not ours to put back.
            if states.get(&instance).is_some_and(|s| !in_service_state(s)) {
                continue;
            }
            let why = mark.reason.as_str();
            if self.dry_run {
                out.did(
                    Action::RegisterTargets,
                    Outcome::DryRun,
                    format!("dry run: would register {instance} again ({why} is over)"),
                );
                continue;
            }
            match self.fleet.elbv2.register(&instance, &regs).await {
                Ok(()) => {}
                // Its target group deleted, or the instance gone: nothing to put back.
                Err(e)
                    if matches!(
                        e.code.as_deref(),
                        Some("TargetGroupNotFound" | "InvalidTarget")
                    ) =>
                {
                    tracing::warn!(instance, error = %e, "not registered again: its mark is dropped");
                    self.fleet.ecs.drop_plain_mark(&instance).await;
                    continue;
                }
                Err(e) => {
                    out.failed(Action::RegisterTargets, e);
                    continue;
                }
            }
            self.fleet.ecs.drop_plain_mark(&instance).await;
            out.did(
                Action::RegisterTargets,
                Outcome::Done,
                format!("{instance} registered again in its target groups ({why} is over)"),
            );
            out.notifications
                .push(plain_back_in_service(&instance, mark, &regs, false));
            undone += 1;
        }
        undone
    }
}
