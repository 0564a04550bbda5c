//! An ECS state change about a container instance, as a wake-up: a drain of ours completed the
//! moment its instance is empty, a launch completed once it joined, a drain undone when its
//! instance is back.

use crate::config::ECS_MANAGED_DRAINING_HOOK;
use crate::decide::{Undo, cluster_name, decide_undo, expected_cluster, joined};
use crate::drain::{FleetSample, Handled, Lifecycle, is_pending, is_terminating, is_warm_pending};
use crate::render::{Render, render_drain_completed};
use fleetguard::observe::FleetMetric;
use fleetguard::ports::{
    AutoScalingGroups, AwsError, ContainerInstance, ContainerInstances, DrainReason,
    LifecycleActionResult, LifecycleHook, Notify, TargetGroups,
};

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// An ECS state change about a container instance (from a task or container-instance event).
    /// Counters above zero prove the instance is not empty yet, so most wake-ups cost no call.
    /// `registered_at`: when it joined its cluster, from the event (epoch seconds).
    pub async fn on_container_instance(
        &self,
        mut ci: ContainerInstance,
        registered_at: Option<i64>,
        region: &str,
    ) -> Result<Handled, AwsError> {
        let now = self.clock.now();
        // Tasks still on a draining instance: not empty, and not back from a stop or the warm
        // pool either (it was emptied before it went). A long rebalance drain is undone by the
        // sweep's undo pass.
        if ci.status == "DRAINING" && (ci.running_tasks_count > 0 || ci.pending_tasks_count > 0) {
            return Ok(Handled::new(format!(
                "not empty yet: {} running, {} pending",
                ci.running_tasks_count, ci.pending_tasks_count
            )));
        }
        if ci.status != "DRAINING" && !(ci.status == "ACTIVE" && ci.agent_connected) {
            return Ok(Handled::new(format!(
                "ignored: container instance is {}",
                ci.status
            )));
        }
        // The event carries the attribute; a mark ECS refused is kept in the table.
        if ci.status == "DRAINING" && ci.drain_mark.is_none() {
            ci = self.fleet.ecs.with_kept_mark(ci).await;
        }
        // ECS sends an ACTIVE event on every task start and stop. Only one that registered
        // within the longest a launch is held can be completing a launch hook: the others
        // cost no call.
        if ci.status == "ACTIVE"
            && ci.drain_mark.is_none()
            && registered_at.is_some_and(|r| now - r > self.config.launch_timeout_secs + 300)
        {
            return Ok(Handled::new(
                "ignored: ACTIVE since long before any launch in progress",
            ));
        }
        let gi = self.fleet.autoscaling.instance(&ci.ec2_instance_id).await?;
        let mut out = Handled::new("");
        if let Some(mark) = ci.drain_mark
            && decide_undo(
                mark,
                &ci,
                gi.as_ref().map(|g| g.lifecycle_state.as_str()),
                now,
                self.config.rebalance_undo_secs,
            ) == Undo::Activate
        {
            if !self.undo_drain(&ci, &mut out).await {
                out.outcome = "could not undo the drain".into();
                return Ok(out);
            }
            ci.status = "ACTIVE".into();
            ci.drain_mark = None;
            out.outcome = format!("undone: {} is back in service", ci.ec2_instance_id);
        }
        let Some(gi) = gi else {
            if out.outcome.is_empty() {
                out.outcome = "ignored: not in an Auto Scaling group".into();
            }
            if ci.status == "DRAINING" {
                self.resend_stashed(&ci.ec2_instance_id, &mut out).await;
            }
            return Ok(out);
        };
        // Scaling in back to the warm pool, drained by us on the way.
        let to_warm_pool = is_warm_pending(&gi.lifecycle_state)
            && ci
                .drain_mark
                .is_some_and(|m| m.reason == DrainReason::WarmPool);
        let terminating = is_terminating(&gi.lifecycle_state) || to_warm_pool;
        let wanted = if ci.status == "DRAINING" {
            terminating
        } else {
            is_pending(&gi.lifecycle_state)
        };
        if !wanted {
            if out.outcome.is_empty() {
                out.outcome = format!(
                    "ignored: {} is {}, no pending lifecycle action",
                    ci.ec2_instance_id, gi.lifecycle_state
                );
            }
            if ci.status == "DRAINING" {
                self.resend_stashed(&ci.ec2_instance_id, &mut out).await;
            }
            return Ok(out);
        }
        let Some(group) = self
            .fleet
            .autoscaling
            .group(&gi.auto_scaling_group_name)
            .await?
        else {
            out.outcome = "ignored: group no longer exists".into();
            return Ok(out);
        };
        if !self.config.manages(&group) {
            out.outcome = format!("ignored: group {} is not managed", group.name);
            return Ok(out);
        }
        let hooks = self.fleet.autoscaling.hooks(&group.name).await?;
        if terminating {
            let ours: Vec<&LifecycleHook> = hooks
                .iter()
                .filter(|h| h.is_terminating() && self.config.owns_hook(&h.name))
                .collect();
            let regs = self.registrations(&group, &ci.ec2_instance_id).await?;
            let evidence = self.evidence_for(Some(&ci), regs).await?;
            if !evidence.is_empty() {
                out.outcome = format!(
                    "not empty yet: {} task(s), {} target registration(s)",
                    evidence.remaining_tasks().len(),
                    evidence.registrations.len()
                );
                return Ok(out);
            }
            let started = self
                .start_times(&group.name, &[(gi.instance_id.clone(), true)])
                .await;
            let ctx = Render {
                group: &group,
                instance: &ci.ec2_instance_id,
                region,
                dry_run: self.dry_run,
                ci: Some(&ci),
                managed_draining: hooks.iter().any(|h| h.name == ECS_MANAGED_DRAINING_HOOK),
            };
            let took = started
                .get(&gi.instance_id)
                .copied()
                .or(ci.drain_mark.map(|m| m.at))
                .map(|s| now - s);
            let announce = render_drain_completed(&ctx, &evidence, took);
            out.fleet.push(FleetSample::of(
                FleetMetric::Drains,
                &group.name,
                Some(&ci),
                took,
            ));
            self.complete(
                &group.name,
                &ours,
                &ci.ec2_instance_id,
                None,
                LifecycleActionResult::Continue,
                Some(announce),
                &mut out,
            )
            .await;
            out.outcome = "completed: drained".into();
        } else {
            let ours: Vec<&LifecycleHook> = hooks
                .iter()
                .filter(|h| {
                    !h.is_terminating()
                        && self.config.owns_hook(&h.name)
                        && expected_cluster(h.notification_metadata.as_deref())
                            .is_some_and(|c| joined(&ci, &c))
                })
                .collect();
            if ours.is_empty() {
                if out.outcome.is_empty() {
                    out.outcome = "ignored: no launch hook waits for this cluster".into();
                }
                return Ok(out);
            }
            self.complete(
                &group.name,
                &ours,
                &ci.ec2_instance_id,
                None,
                LifecycleActionResult::Continue,
                None,
                &mut out,
            )
            .await;
            out.outcome = format!("launch completed: joined {}", cluster_name(&ci.cluster_arn));
        }
        Ok(out)
    }
}
