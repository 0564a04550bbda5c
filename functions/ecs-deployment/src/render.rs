//! Messages for failed deployments, rollbacks, impaired services and stopped tasks. Pure.

use crate::config::DeploymentConfig;
use crate::decide::{exit_code_hint, revision_of, rollback_target};
use crate::evidence::FailedDeployment;
use fleetguard::events::ecs::{
    DeploymentStateChange, EcsEventType, ServiceAction, StopCode, TaskStateChange, TaskStatus,
};
use fleetguard::notify::{
    Notification, NotificationKind, Phase, Severity, console_host, url_encode,
};
use fleetguard::ports::{Service, Task, TaskDefinition};
use std::time::Duration;

/// Links to the console for a service.
fn service_links(mut n: Notification, region: &str, cluster: &str, service: &str) -> Notification {
    if region.is_empty() {
        return n;
    }
    let host = console_host("aws", region);
    n = n
        .link(
            "Service",
            format!("https://{host}/ecs/v2/clusters/{cluster}/services/{service}/health?region={region}"),
        )
        .link(
            "Deployments",
            format!("https://{host}/ecs/v2/clusters/{cluster}/services/{service}/deployments?region={region}"),
        );
    n
}

/// The CloudWatch Logs console link of a task's container log stream (awslogs driver).
pub fn log_stream_link(region: &str, td: &TaskDefinition, task: &Task) -> Option<String> {
    let c = td
        .containers
        .iter()
        .find(|c| c.awslogs.is_some() && c.essential)?;
    let (group, log_region, prefix) = c.awslogs.as_ref()?;
    let prefix = prefix.as_deref()?; // without a prefix, the stream name is not derivable
    let task_id = task.arn.rsplit('/').next()?;
    let stream = format!("{prefix}/{}/{task_id}", c.name);
    let region = log_region.as_deref().unwrap_or(region);
    // The console's fragment is encoded twice, with `$` for `%`.
    let enc = |s: &str| url_encode(&url_encode(s)).replace('%', "$");
    Some(format!(
        "https://{}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
        console_host("aws", region),
        enc(group),
        enc(&stream)
    ))
}

fn task_line(t: &Task) -> String {
    let id = t.arn.rsplit('/').next().unwrap_or(&t.arn);
    let id = &id[..id.len().min(12)];
    let mut line = format!("{id}: {}", t.stop_code.as_deref().unwrap_or("stopped"));
    if let Some(r) = t.stopped_reason.as_deref().filter(|r| !r.is_empty()) {
        line.push_str(&format!(" ({})", fleetguard::text::excerpt(r, 200)));
    }
    for c in &t.containers {
        if let Some(code) = c.exit_code {
            line.push_str(&format!("; {} exit {code}", c.name));
            if let Some(h) = exit_code_hint(code) {
                line.push_str(&format!(" ({h})"));
            }
        }
        if let Some(r) = c.reason.as_deref().filter(|r| !r.is_empty()) {
            line.push_str(&format!(": {}", fleetguard::text::excerpt(r, 200)));
        }
    }
    line
}

/// The message for a failed deployment.
pub fn render_failed(
    e: &DeploymentStateChange,
    f: &FailedDeployment,
    region: &str,
) -> Notification {
    let cluster = e.service.cluster.as_deref().unwrap_or("(unknown cluster)");
    let service = e.service.service.as_str();
    let id = e.detail.deployment_id.as_str();
    let reason = e.detail.reason.as_deref().unwrap_or("no reason given");
    let mut n = Notification::new(
        NotificationKind::DeploymentFailed,
        Severity::High,
        format!("Deployment failed: {service} ({cluster})"),
        format!("deployment-failed|{}|{id}", e.service.arn),
    )
    .incident(deployment_incident(&e.service.arn), Phase::Opened);
    n.resource_name = Some(service.to_owned());
    n.state = Some("FAILED".into());
    let deployment = f
        .service
        .as_ref()
        .and_then(|s| s.deployments.iter().find(|d| d.id == id));
    let breaker = f.service.as_ref().and_then(|s| s.circuit_breaker);
    let rollback = match (breaker, &f.old_task_definition) {
        (Some((true, true)), Some(old)) => format!("yes, to {}:{}", old.family, old.revision),
        (Some((true, true)), None) => "yes (the circuit breaker rolls back)".to_owned(),
        (Some((true, false)), _) => "no: the circuit breaker's rollback is off".to_owned(),
        (Some((false, _)), _) => "no: the deployment circuit breaker is off".to_owned(),
        (None, _) if reason.to_ascii_lowercase().contains("rolling back") => "yes".to_owned(),
        (None, _) => "unknown".to_owned(),
    };
    let mut summary = reason.to_owned();
    if let Some(t) = f
        .stopped_tasks
        .iter()
        .find(|t| t.containers.iter().any(|c| c.exit_code == Some(137)))
    {
        let c = t
            .containers
            .iter()
            .find(|c| c.exit_code == Some(137))
            .map(|c| c.name.as_str())
            .unwrap_or_default();
        summary.push_str(&format!(
            " Container {c} exited with code 137 (SIGKILL): likely out of memory; check its memory limit."
        ));
    }
    n = n
        .summary(summary)
        .field("Cluster", cluster.to_owned())
        .field("Service", service.to_owned())
        .field("Deployment", id.to_owned());
    let new = f.new_task_definition.as_ref();
    let old = f.old_task_definition.as_ref();
    let rev = |td: &TaskDefinition| format!("{}:{}", td.family, td.revision);
    match (old, new) {
        (Some(o), Some(nw)) => n = n.field("Task definition", format!("{} → {}", rev(o), rev(nw))),
        (None, Some(nw)) => n = n.field("Task definition", format!("→ {}", rev(nw))),
        _ => {}
    }
    if let (Some(o), Some(nw)) = (old, new) {
        let changed: Vec<String> = nw
            .containers
            .iter()
            .filter_map(|c| {
                let before = o.containers.iter().find(|x| x.name == c.name);
                match before {
                    Some(b) if b.image == c.image => None,
                    Some(b) => Some(format!("{}: {} → {}", c.name, b.image, c.image)),
                    None => Some(format!("{}: (new) {}", c.name, c.image)),
                }
            })
            .collect();
        n = n.field(
            "Images changed",
            if changed.is_empty() {
                "none (same images)".to_owned()
            } else {
                changed.join("\n")
            },
        );
    }
    n = n.field("Rollback", rollback);
    if let Some(d) = deployment {
        n = n.field(
            "Circuit breaker",
            format!(
                "{} failed task(s); {} of {} running{}",
                d.failed_tasks,
                d.running_count,
                d.desired_count,
                d.rollout_state_reason
                    .as_deref()
                    .map(|r| format!("; {r}"))
                    .unwrap_or_default()
            ),
        );
    }
    if !f.stopped_tasks.is_empty() {
        let lines: Vec<String> = f.stopped_tasks.iter().take(5).map(task_line).collect();
        n = n.field(
            format!("Stopped tasks ({})", f.stopped_tasks.len()),
            lines.join("\n"),
        );
    }
    if let Some(s) = &f.service {
        let events: Vec<String> = s.events.iter().take(5).map(|(_, m)| m.clone()).collect();
        if !events.is_empty() {
            n = n.field("Service events", events.join("\n"));
        }
    }
    if !f.missing.is_empty() {
        n = n.field(
            "Incomplete",
            format!("could not read: {}", f.missing.join("; ")),
        );
    }
    n = service_links(n, region, cluster, service);
    if let (Some(td), Some(t)) = (new, f.stopped_tasks.first())
        && let Some(url) = log_stream_link(region, td, t)
    {
        n = n.link("Task log", url);
    }
    n.dedupe_ttl = Duration::from_secs(7 * 86_400);
    n
}

/// A service's deployment incident: a failure or a rollback opens it, the rollback's (or a later
/// deployment's) completion resolves it. Keyed by service: the failed deployment and the one
/// rolled back to have different ids, and a service has one rollout at a time.
pub fn deployment_incident(service_arn: &impl std::fmt::Display) -> String {
    format!("deployment|{service_arn}")
}

pub fn render_rollback_started(
    e: &DeploymentStateChange,
    service: Option<&Service>,
    region: &str,
) -> Notification {
    let cluster = e.service.cluster.as_deref().unwrap_or("(unknown cluster)");
    let svc = e.service.service.as_str();
    let to = rollback_target(e.detail.reason.as_deref().unwrap_or_default())
        .unwrap_or_else(|| e.detail.deployment_id.clone());
    let target_td = service
        .and_then(|s| s.deployments.iter().find(|d| d.id == to))
        .map(|d| revision_of(&d.task_definition_arn).to_owned());
    let mut n = Notification::new(
        NotificationKind::RollbackStarted,
        Severity::High,
        format!("Rollback started: {svc} ({cluster})"),
        format!("rollback-started|{}|{to}", e.service.arn),
    )
    .incident(deployment_incident(&e.service.arn), Phase::Opened)
    .summary(e.detail.reason.clone().unwrap_or_default())
    .field("Cluster", cluster.to_owned())
    .field("Service", svc.to_owned())
    .field(
        "Rolling back to",
        match target_td {
            Some(td) => format!("{to} ({td})"),
            None => to.clone(),
        },
    );
    n.resource_name = Some(svc.to_owned());
    n.state = Some("ROLLBACK_IN_PROGRESS".into());
    service_links(n, region, cluster, svc)
}

pub fn render_completed(
    e: &DeploymentStateChange,
    rollback: bool,
    service: Option<&Service>,
    region: &str,
) -> Notification {
    let cluster = e.service.cluster.as_deref().unwrap_or("(unknown cluster)");
    let svc = e.service.service.as_str();
    let id = e.detail.deployment_id.as_str();
    let td = service
        .and_then(|s| s.deployments.iter().find(|d| d.id == id))
        .map(|d| revision_of(&d.task_definition_arn).to_owned());
    let (kind, severity, title, state) = if rollback {
        (
            NotificationKind::RollbackCompleted,
            Severity::Medium,
            format!("Rollback completed: {svc} ({cluster})"),
            "ROLLBACK_COMPLETED",
        )
    } else {
        (
            NotificationKind::DeploymentCompleted,
            Severity::Info,
            format!("Deployment completed: {svc} ({cluster})"),
            "COMPLETED",
        )
    };
    let mut n = Notification::new(
        kind,
        severity,
        title,
        format!("{}|{}|{id}", kind.as_str(), e.service.arn),
    )
    .incident(deployment_incident(&e.service.arn), Phase::Resolved)
    .summary(e.detail.reason.clone().unwrap_or_default())
    .field("Cluster", cluster.to_owned())
    .field("Service", svc.to_owned())
    .field("Deployment", id.to_owned())
    .field("Task definition", td.unwrap_or_default());
    n.resource_name = Some(svc.to_owned());
    n.state = Some(state.into());
    service_links(n, region, cluster, svc)
}

/// `ECS Service Action` WARN/ERROR → an alert, once per service and event name per window.
pub fn render_service_action(
    a: &ServiceAction,
    service: Option<&Service>,
    missing: Option<String>,
    window: Duration,
    region: &str,
) -> Option<Notification> {
    let severity = match a.detail.event_type {
        EcsEventType::Error => Severity::High,
        EcsEventType::Warn => Severity::Medium,
        _ => return None, // INFO: steady state and the like
    };
    let cluster = a
        .service
        .cluster
        .clone()
        .or_else(|| {
            a.detail.cluster_arn.as_ref().map(|c| {
                c.resource()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .unwrap_or_else(|| "(unknown cluster)".into());
    let svc = a.service.service.as_str();
    let name = a.detail.event_name.to_string();
    let mut n = Notification::new(
        NotificationKind::ServiceImpaired,
        severity,
        format!("{name}: {svc} ({cluster})"),
        format!("service-action|{}|{name}", a.service.arn),
    )
    .summary(
        a.detail
            .reason
            .clone()
            .unwrap_or_else(|| format!("ECS reports {name} for {svc}.")),
    )
    .field("Cluster", cluster.clone())
    .field("Service", svc.to_owned())
    .field("Event", name.clone());
    if !a.detail.capacity_provider_arns.is_empty() {
        n = n.field(
            "Capacity providers",
            a.detail.capacity_provider_arns.join(", "),
        );
    }
    if !a.detail.task_arns.is_empty() {
        n = n.field("Tasks", a.detail.task_arns.len().to_string());
    }
    if let Some(s) = service {
        let events: Vec<String> = s.events.iter().take(5).map(|(_, m)| m.clone()).collect();
        if !events.is_empty() {
            n = n.field("Service events", events.join("\n"));
        }
    }
    if let Some(m) = missing {
        n = n.field("Incomplete", format!("could not read: {m}"));
    }
    n.resource_name = Some(svc.to_owned());
    n.state = Some(a.detail.event_type.to_string());
    // The dedupe record lives for the window: one alert per service and event name within it.
    n.dedupe_ttl = window;
    Some(service_links(n, region, &cluster, svc))
}

/// A stopped task worth a message: a Fargate Spot interruption, or (when enabled) an
/// essential container that exited with a failure outside a deployment.
pub fn render_task(
    t: &TaskStateChange,
    config: &DeploymentConfig,
    region: &str,
) -> Option<Notification> {
    if t.last_status != TaskStatus::Stopped {
        return None;
    }
    let cluster = t
        .cluster_arn
        .resource()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let service = t
        .group
        .as_deref()
        .and_then(|g| g.strip_prefix("service:"))
        .map(str::to_owned);
    let task_id = t
        .task_arn
        .resource()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let owner = service
        .clone()
        .unwrap_or_else(|| format!("task group {}", t.group.as_deref().unwrap_or("(none)")));
    let (kind, severity, title) = match &t.stop_code {
        Some(StopCode::SpotInterruption) => (
            NotificationKind::FargateSpotInterruption,
            Severity::Medium,
            format!("Fargate Spot interruption: {owner} ({cluster})"),
        ),
        Some(StopCode::EssentialContainerExited) if config.report_task_failures => {
            let failed = t
                .containers
                .iter()
                .any(|c| c.exit_code.is_none_or(|code| code != 0));
            if !failed {
                return None;
            }
            (
                NotificationKind::TaskFailed,
                Severity::Medium,
                format!("Task failed: {owner} ({cluster})"),
            )
        }
        _ => return None,
    };
    let mut n = Notification::new(
        kind,
        severity,
        title,
        format!("{}|{}", kind.as_str(), t.task_arn),
    )
    .summary(t.stopped_reason.clone().unwrap_or_default())
    .field("Cluster", cluster.clone())
    .field("Service", service.clone().unwrap_or_default())
    .field("Task", task_id)
    .field(
        "Task definition",
        t.task_definition_arn
            .as_ref()
            .map(|a| revision_of(a.as_str()).to_owned())
            .unwrap_or_default(),
    )
    .field(
        "Availability Zone",
        t.availability_zone.clone().unwrap_or_default(),
    )
    .field(
        "Capacity provider",
        t.capacity_provider_name.clone().unwrap_or_default(),
    );
    let exits: Vec<String> = t
        .containers
        .iter()
        .filter_map(|c| {
            let code = c.exit_code?;
            let hint = i32::try_from(code)
                .ok()
                .and_then(exit_code_hint)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            Some(format!(
                "{} exit {code}{hint}{}",
                c.name.as_deref().unwrap_or("container"),
                c.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ))
        })
        .collect();
    if !exits.is_empty() {
        n = n.field("Containers", exits.join("\n"));
    }
    n.resource_name = service.clone();
    n.state = Some("STOPPED".into());
    if let Some(s) = &service {
        n = service_links(n, region, &cluster, s);
    }
    Some(n)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
