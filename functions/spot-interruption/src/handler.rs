//! `spot-interruption`: a Spot warning or rebalance recommendation → find the instance →
//! decide → take it out of service → then count tasks and notify. A Spot warning gives two
//! minutes at most, so nothing is said before the drain calls are out.

use crate::config::{RebalanceAction, SpotConfig};
use crate::decide::{Interruption, Plan, decide, drain_mark, time_left};
use crate::render::{Report, render};
use fleetguard::config::CommonConfig;
use fleetguard::events::InstanceAction;
use fleetguard::notify::Deadline;
use fleetguard::observe::{Action, FleetMetric, Metrics, Outcome};
use fleetguard::out_of_service::{
    Fleet, OnSight, find, keep_stronger_plain_mark, take_out_of_service,
};
use fleetguard::ports::{
    AutoScalingGroups, ContainerInstances, Notify, TargetGroups, count_by_service,
};
use fleetguard::serve::{Error, Function, Summary};
use fleetguard::{Detail, Event, EventKind};

#[derive(Debug)]
pub struct Handler<E, T, A, N> {
    pub common: CommonConfig,
    pub config: SpotConfig,
    pub fleet: Fleet<E, T, A>,
    pub notifier: N,
    /// The time drains are marked with.
    pub clock: std::sync::Arc<dyn fleetguard::ports::Clock>,
}

impl<E, T, A, N> Function for Handler<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    const NAME: &'static str = "spot-interruption";

    fn accepts(kind: EventKind) -> bool {
        matches!(
            kind,
            EventKind::SpotInterruptionWarning | EventKind::RebalanceRecommendation
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
        let (config, dry_run) = (&self.config, self.common.dry_run);
        let interruption = match &event.detail {
            Detail::SpotInterruptionWarning(w) => Interruption {
                instance_id: w.instance_id.clone(),
                action: Some(w.instance_action.clone()),
            },
            Detail::RebalanceRecommendation(r) => Interruption {
                instance_id: r.instance_id.clone(),
                action: None,
            },
            _ => return Ok(summary),
        };
        if interruption.action.is_none() && config.rebalance == RebalanceAction::Ignore {
            summary.outcome =
                "ignored: rebalance recommendations are ignored (REBALANCE_ACTION)".into();
            return Ok(summary);
        }
        // Not being able to look is a failure (Lambda retries), never "not found". A warning
        // that will drain anyway drains the container instance the moment it is found.
        let on_sight = match &interruption.action {
            _ if dry_run => OnSight::Wait,
            Some(InstanceAction::Terminate) => OnSight::EvenUnscoped,
            Some(_) => OnSight::IfUnscoped,
            None if config.rebalance == RebalanceAction::Drain => OnSight::IfUnscoped,
            None => OnSight::Wait,
        };
        // A stopped or hibernated instance comes back, and a rebalance recommendation may never
        // become an interruption: those drains are marked, and `asg-lifecycle` undoes them. A
        // termination's mark replaces theirs, so nothing undoes it.
        // Dated by the warning (a retry handles it later; the stop still comes two minutes
        // after the warning), never later than now.
        let now = self.clock.now();
        let warned = event
            .envelope
            .time
            .at()
            .map_or(now, |t| t.timestamp().min(now));
        let mark = drain_mark(interruption.action.as_ref(), warned);
        let (findings, drained) = find(
            &self.fleet,
            &config.scope,
            &interruption.instance_id,
            on_sight,
            mark,
        )
        .await?;
        let plan = decide(&interruption, &findings, config);
        if let (Some(e), false) = (&findings.group_error, matches!(plan, Plan::Drain { .. })) {
            // Without the group its target groups are unknown: "nothing to do" cannot be trusted.
            return Err(e.clone().into());
        }
        if !matches!(plan, Plan::Ignore(_)) {
            let pool = findings.pool();
            let m = if interruption.action.is_some() {
                FleetMetric::SpotInterruptions
            } else {
                FleetMetric::RebalanceRecommendations
            };
            metrics.fleet(m, &pool);
        }
        let mut outcome = None;
        match &plan {
            Plan::Ignore(why) => {
                // Found nowhere, because an earlier drain of ours already deregistered it (a
                // rebalance drain, then its warning): the stronger reason is kept over it.
                if let (None, Some(m), false) = (&findings.container_instance, mark, dry_run)
                    && keep_stronger_plain_mark(
                        &self.fleet.ecs,
                        interruption.instance_id.as_str(),
                        m,
                    )
                    .await
                {
                    summary.actions.push(format!(
                        "already deregistered by a drain of ours: now kept out for {}",
                        m.reason.as_str()
                    ));
                    summary.outcome = format!(
                        "{} stays out of service ({})",
                        interruption.instance_id,
                        m.reason.as_str()
                    );
                    return Ok(summary);
                }
                tracing::info!(reason = %why, "instance not managed here: acknowledged");
                summary.outcome = format!("ignored: {why}");
                return Ok(summary);
            }
            Plan::NotifyOnly => {}
            Plan::Drain { .. } if dry_run => {
                metrics.action(Action::DrainInstance, Outcome::DryRun);
                summary.actions.push("dry run: nothing drained".into());
            }
            Plan::Drain { .. } => {
                let o = take_out_of_service(
                    &self.fleet,
                    &interruption.instance_id,
                    &findings,
                    drained,
                    mark,
                )
                .await;
                metrics.latency(Action::DrainInstance, event);
                if let (Some(r), Some(ci)) = (o.container_instance, &findings.container_instance) {
                    let text = metrics.container_instance_drain(r);
                    summary
                        .actions
                        .push(format!("container instance {} {text}", ci.arn));
                }
                for r in &o.deregistered {
                    metrics.action(Action::DeregisterTargets, Outcome::Done);
                    summary.actions.push(format!(
                        "deregistered from {} port {}",
                        r.target_group_arn,
                        r.port.map(|p| p.to_string()).unwrap_or("-".into())
                    ));
                }
                if !o.errors.is_empty() {
                    metrics.action(Action::DrainInstance, Outcome::Failed);
                    let msg: Vec<String> = o.errors.iter().map(ToString::to_string).collect();
                    tracing::error!(errors = ?msg, "drain failed");
                    return Err(Error {
                        error_type: "DrainFailed",
                        message: format!(
                            "could not drain {}: {}",
                            interruption.instance_id,
                            msg.join("; ")
                        ),
                    });
                }
                if let Some(e) = &findings.group_error {
                    // The container instance is DRAINING; its group (and so its target groups
                    // and tags) could not be read: Lambda's retry finishes the job.
                    metrics.action(Action::DrainInstance, Outcome::Failed);
                    return Err(Error {
                        error_type: "AwsCallFailed",
                        message: format!(
                            "drained {} in ECS, but could not look up its Auto Scaling group: {e}",
                            interruption.instance_id
                        ),
                    });
                }
                outcome = Some(o);
            }
        }
        // Enrichment comes after the drain calls, and never blocks the message.
        let tasks = match &findings.container_instance {
            Some(ci) => match self
                .fleet
                .ecs
                .tasks_on(&ci.cluster_arn, &ci.arn, "RUNNING")
                .await
            {
                Ok(t) => Some(count_by_service(&t)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the instance's tasks");
                    None
                }
            },
            None => None,
        };
        let n = render(
            &Report {
                interruption: &interruption,
                findings: &findings,
                plan: &plan,
                outcome: outcome.as_ref(),
                tasks: tasks.as_ref(),
                dry_run,
                seconds_left: time_left(event, chrono::Utc::now()),
            },
            event,
        )
        .from_event(Self::NAME, event);
        let report = self.notifier.send(n, deadline).await?;
        summary.actions.extend(report.actions());
        summary.outcome = match (&plan, dry_run) {
            (Plan::Drain { .. }, false) => "drained".into(),
            (Plan::Drain { .. }, true) => "dry run".into(),
            _ => "notified".into(),
        };
        Ok(summary)
    }
}
