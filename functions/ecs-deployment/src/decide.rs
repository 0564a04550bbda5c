//! What a deployment event means, and what an exit code says. Pure.

use fleetguard::events::ecs::{DeploymentEventName, DeploymentStateChange};
use fleetguard::ports::Service;

/// What a deployment event means. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentVerdict {
    Failed,
    /// The circuit breaker is rolling back, to this deployment id when the reason names it.
    RollbackStarted {
        to: Option<String>,
    },
    /// A deployment completed: a rollback's completion, or a plain success.
    Completed,
    Ignore(String),
}

pub fn classify(e: &DeploymentStateChange) -> DeploymentVerdict {
    let reason = e.detail.reason.as_deref().unwrap_or_default();
    match &e.detail.event_name {
        DeploymentEventName::Failed => DeploymentVerdict::Failed,
        DeploymentEventName::InProgress if is_rollback_reason(reason) => {
            DeploymentVerdict::RollbackStarted {
                to: rollback_target(reason),
            }
        }
        DeploymentEventName::InProgress => {
            DeploymentVerdict::Ignore("deployment in progress".into())
        }
        DeploymentEventName::Completed => DeploymentVerdict::Completed,
        DeploymentEventName::Other(name) => {
            DeploymentVerdict::Ignore(format!("unknown deployment event {name}"))
        }
    }
}

fn is_rollback_reason(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("circuit breaker") && r.contains("rolling back")
}

/// `… rolling back to deploymentId ecs-svc/123.` → `ecs-svc/123`.
pub fn rollback_target(reason: &str) -> Option<String> {
    reason
        .split_whitespace()
        .find(|w| w.starts_with("ecs-svc/"))
        .map(|w| w.trim_end_matches(['.', ',', ')']).to_owned())
}

/// Whether the service's events say it rolled back to `deployment_id`.
pub fn service_rolled_back_to(service: &Service, deployment_id: &str) -> bool {
    service
        .events
        .iter()
        .any(|(_, m)| m.contains("rolling back") && m.contains(deployment_id))
}

/// What an exit code usually means, for the message.
pub fn exit_code_hint(code: i32) -> Option<&'static str> {
    match code {
        137 => Some("SIGKILL: likely out of memory"),
        139 => Some("SIGSEGV: segmentation fault"),
        143 => Some("SIGTERM: stopped"),
        1 => Some("application error"),
        127 => Some("command not found"),
        126 => Some("command not executable"),
        _ => None,
    }
}

/// `arn:…:task-definition/family:7` → `family:7`.
pub fn revision_of(task_definition_arn: &str) -> &str {
    task_definition_arn
        .rsplit('/')
        .next()
        .unwrap_or(task_definition_arn)
}
