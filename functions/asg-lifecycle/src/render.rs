//! Messages: drain started, drained, forced; launch abandoned or let through. Pure.

use crate::config::LifecycleConfig;
use crate::decide::{CompleteReason, EcsEvidence, Evidence};
use fleetguard::notify::{Notification, NotificationKind, Phase, Severity, console_host};
use fleetguard::ports::{
    ContainerInstance, Group, LifecycleActionResult, Registration, Task, count_by_service,
};
use fleetguard::time::human_duration;
use std::time::Duration;

pub(crate) fn launch_reason(reason: CompleteReason, cluster: Option<&str>) -> String {
    match reason {
        CompleteReason::IntoWarmPool => "into the warm pool".into(),
        CompleteReason::NotEcs => "not an ECS group, nothing to wait for".into(),
        CompleteReason::Joined => format!("joined ECS cluster {}", cluster.unwrap_or_default()),
        _ => format!("{reason:?}"),
    }
}

/// A drain of ours undone: the instance's drain incident resolves. One message per drain (its
/// mark's time), so the next drain's return is told too.
pub(crate) fn back_in_service(ci: &ContainerInstance, why: &str, dry_run: bool) -> Notification {
    let instance = ci.ec2_instance_id.as_str();
    let since = ci.drain_mark.map_or(0, |m| m.at);
    let mut n = Notification::new(
        NotificationKind::BackInService,
        Severity::Info,
        format!("{}{instance} is back in service", if dry_run { "[dry run] " } else { "" }),
        format!("back-in-service|{instance}|{since}{}", if dry_run { "|dry-run" } else { "" }),
    )
    .summary(format!(
        "The {why} it was drained for is over: its container instance is ACTIVE again and takes tasks."
    ))
    .field("Instance", instance.to_owned())
    .field("Cluster", ci.cluster_name().to_owned())
    .field("Container instance", ci.arn.clone())
    .incident(
        fleetguard::notify::incident::drain_key(instance, dry_run),
        Phase::Resolved,
    );
    n.dedupe_ttl = Duration::from_secs(48 * 3600);
    n
}

/// What every lifecycle message shows.
pub(crate) struct Render<'a> {
    pub(crate) group: &'a Group,
    pub(crate) instance: &'a str,
    pub(crate) region: &'a str,
    pub(crate) dry_run: bool,
    pub(crate) ci: Option<&'a ContainerInstance>,
    pub(crate) managed_draining: bool,
}

/// The dedupe key prefix of a drain's end, drained or forced.
pub const DRAIN_ENDED: &str = "drain-ended";

fn base(
    ctx: &Render<'_>,
    kind: NotificationKind,
    severity: Severity,
    title: String,
) -> Notification {
    let title = if ctx.dry_run {
        format!("[dry run] {title}")
    } else {
        title
    };
    // A drain ends once: "drained" and "forced" share one key, so only the first outcome
    // announced is ever sent (a late event after a forced completion, while another hook such
    // as ECS managed draining still held the instance, also said "drained"; found by the
    // simulator).
    let key = format!(
        "{}|{}|{}{}",
        match kind {
            NotificationKind::DrainCompleted | NotificationKind::DrainForced => DRAIN_ENDED,
            other => other.as_str(),
        },
        ctx.group.name,
        ctx.instance,
        if ctx.dry_run { "|dry-run" } else { "" }
    );
    let drain = fleetguard::notify::incident::drain_key(ctx.instance, ctx.dry_run);
    let mut n = Notification::new(kind, severity, title, key);
    n = match kind {
        NotificationKind::DrainStarted => n.incident(drain, Phase::Opened),
        NotificationKind::DrainCompleted | NotificationKind::DrainForced => {
            n.incident(drain, Phase::Resolved)
        }
        _ => n,
    };
    n = n
        .field("Instance", ctx.instance.to_owned())
        .field("Auto Scaling group", ctx.group.name.clone());
    if let Some(ci) = ctx.ci {
        n = n
            .field("Cluster", ci.cluster_name().to_owned())
            .field("Container instance", ci.arn.clone());
    }
    if ctx.managed_draining {
        n = n.field(
            "ECS managed draining",
            "on: ECS sets DRAINING, fleetguard completes its own hook",
        );
    }
    n.resource_name = Some(ctx.group.name.clone());
    n.dedupe_ttl = Duration::from_secs(48 * 3600);
    if !ctx.region.is_empty() {
        let host = console_host("aws", ctx.region);
        let r = ctx.region;
        n = n
            .link(
                "Instance",
                format!("https://{host}/ec2/home?region={r}#InstanceDetails:instanceId={}", ctx.instance),
            )
            .link(
                "Auto Scaling activity",
                format!(
                    "https://{host}/ec2/home?region={r}#AutoScalingGroupDetails:id={};view=activity",
                    fleetguard::notify::url_encode(&ctx.group.name)
                ),
            );
        if let Some(ci) = ctx.ci {
            n = n.link(
                "Cluster",
                format!(
                    "https://{host}/ecs/v2/clusters/{}/infrastructure?region={r}",
                    ci.cluster_name()
                ),
            );
        }
    }
    n
}

fn tasks_field(tasks: &[&Task]) -> String {
    let owned: Vec<Task> = tasks.iter().map(|t| (*t).clone()).collect();
    let per: Vec<String> = count_by_service(&owned)
        .iter()
        .map(|(s, c)| format!("{s}: {c}"))
        .collect();
    format!("{} ({})", tasks.len(), per.join(", "))
}

fn regs_field(regs: &[Registration]) -> String {
    regs.iter()
        .map(|r| {
            let name = r
                .target_group_arn
                .split('/')
                .nth(1)
                .unwrap_or(&r.target_group_arn);
            format!(
                "{name} ({})",
                if r.state.is_empty() {
                    "registered"
                } else {
                    &r.state
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn render_drain_started(
    ctx: &Render<'_>,
    e: &Evidence,
    config: &LifecycleConfig,
) -> Notification {
    let remaining = e.remaining_tasks();
    let mut n = base(
        ctx,
        NotificationKind::DrainStarted,
        Severity::Info,
        format!("Draining {} before termination", ctx.instance),
    )
    .summary(format!(
        "Auto Scaling is terminating {} in {}. It was taken out of service; the lifecycle action completes as soon as every task has stopped and every target is gone, at most {} from now (then {}).",
        ctx.instance,
        ctx.group.name,
        human_duration(config.max_drain_secs),
        config.drain_timeout_result
    ));
    if !remaining.is_empty() {
        n = n.field("Tasks to move", tasks_field(&remaining));
    }
    if !e.registrations.is_empty() {
        n = n.field("Target groups", regs_field(&e.registrations));
    }
    n
}

pub(crate) fn render_drain_completed(
    ctx: &Render<'_>,
    e: &Evidence,
    took: Option<i64>,
) -> Notification {
    let _ = e;
    base(
        ctx,
        NotificationKind::DrainCompleted,
        Severity::Info,
        format!("Drained {}: termination continues", ctx.instance),
    )
    .summary(format!(
        "Every task on {} has stopped and it is out of its target groups; the lifecycle action was completed with CONTINUE.",
        ctx.instance
    ))
    .field(
        "Drain took",
        took.map(human_duration).unwrap_or_else(|| "unknown (no scaling activity found)".into()),
    )
}

pub(crate) fn render_drain_forced(
    ctx: &Render<'_>,
    e: &Evidence,
    tasks: &[Task],
    service_events: &[(String, Vec<String>)],
    elapsed: i64,
    result: LifecycleActionResult,
) -> Notification {
    let mut n = base(
        ctx,
        NotificationKind::DrainForced,
        Severity::High,
        format!("Drain of {} forced after {}", ctx.instance, human_duration(elapsed)),
    )
    .summary(format!(
        "{} was still not empty after MAX_DRAIN_SECONDS; the lifecycle action was completed with {result} and the instance terminates with what is still on it.",
        ctx.instance
    ));
    let refs: Vec<&Task> = tasks.iter().collect();
    if !refs.is_empty() {
        n = n.field("Tasks still running", tasks_field(&refs));
        let list: Vec<String> = tasks
            .iter()
            .take(10)
            .map(|t| {
                format!(
                    "{} {} (desired {})",
                    t.arn.rsplit('/').next().unwrap_or(&t.arn),
                    t.last_status,
                    t.desired_status
                )
            })
            .collect();
        n = n.field("Tasks", list.join("\n"));
    } else if let EcsEvidence::Busy { running, pending } = e.ecs {
        n = n.field(
            "Tasks still running",
            format!("{running} running, {pending} pending"),
        );
    }
    if !e.registrations.is_empty() {
        n = n.field("Still registered in", regs_field(&e.registrations));
    }
    for (service, events) in service_events.iter().take(5) {
        if !events.is_empty() {
            n = n.field(format!("{service}: recent events"), events.join("\n"));
        }
    }
    n
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn render_launch_timeout(
    group: &Group,
    instance: &str,
    region: &str,
    cluster: &str,
    ci: Option<&ContainerInstance>,
    elapsed: i64,
    result: LifecycleActionResult,
    dry_run: bool,
) -> Notification {
    let ctx = Render {
        group,
        instance,
        region,
        dry_run,
        ci,
        managed_draining: false,
    };
    let state = match ci {
        Some(ci) => format!(
            "its container instance is {} (agent connected: {})",
            ci.status, ci.agent_connected
        ),
        None => format!("it never registered with ECS cluster {cluster}"),
    };
    base(
        &ctx,
        if result == LifecycleActionResult::Abandon {
            NotificationKind::LaunchAbandoned
        } else {
            NotificationKind::LaunchCompleted
        },
        Severity::High,
        format!("Launch of {instance} {} after {}", if result == LifecycleActionResult::Abandon { "abandoned" } else { "let through" }, human_duration(elapsed)),
    )
    .summary(format!(
        "{instance} did not join ECS cluster {cluster} within LAUNCH_TIMEOUT_SECONDS: {state}. The launch lifecycle action was completed with {result}."
    ))
}
