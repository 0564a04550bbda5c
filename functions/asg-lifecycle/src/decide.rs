//! Whether an instance is empty, and what to do with its lifecycle action. Pure.

use crate::config::LifecycleConfig;
use fleetguard::ports::{ContainerInstance, LifecycleActionResult, Registration, Task};

/// How often the sweep runs (the EventBridge schedule).
pub const SWEEP_INTERVAL_SECS: i64 = 60;

/// The ECS cluster a launching instance must join, from the hook's `NotificationMetadata`
/// (`{"ecs_cluster": "name"}` or `{"cluster": …}`). None: not an ECS group.
pub fn expected_cluster(metadata: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(metadata?).ok()?;
    ["ecs_cluster", "cluster"]
        .iter()
        .find_map(|k| v.get(k).and_then(|c| c.as_str()))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// Short cluster name from a name or ARN.
pub fn cluster_name(cluster: &str) -> &str {
    cluster.rsplit('/').next().unwrap_or(cluster)
}

/// What ECS says about the instance's tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcsEvidence {
    /// Not a container instance of any searched cluster.
    NotInCluster,
    /// The counters say tasks are still there: proof enough that it is not empty.
    Busy { running: i32, pending: i32 },
    /// Every task ECS lists on it (all pages, both desired statuses), described.
    Tasks(Vec<Task>),
}

/// Everything that says whether an instance is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub ecs: EcsEvidence,
    /// Registrations not yet gone or `unused` (a `draining` target still counts).
    pub registrations: Vec<Registration>,
}

impl Evidence {
    /// Tasks not yet STOPPED.
    pub fn remaining_tasks(&self) -> Vec<&Task> {
        match &self.ecs {
            EcsEvidence::Tasks(t) => t.iter().filter(|t| t.last_status != "STOPPED").collect(),
            _ => Vec::new(),
        }
    }

    /// Empty means: every task STOPPED (counters are not proof) and no target still registered.
    pub fn is_empty(&self) -> bool {
        let ecs_empty = match &self.ecs {
            EcsEvidence::NotInCluster => true,
            EcsEvidence::Busy { .. } => false,
            EcsEvidence::Tasks(_) => self.remaining_tasks().is_empty(),
        };
        ecs_empty && self.registrations.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteReason {
    /// Every task stopped and every target gone.
    Drained,
    /// Not in a managed cluster or target group.
    NothingToDrain,
    /// `MAX_DRAIN_SECONDS` reached with work still on the instance.
    DrainTimeout,
    /// Launch: a transition into the warm pool.
    IntoWarmPool,
    /// Launch: not an ECS group, nothing to wait for.
    NotEcs,
    /// Launch: the container instance is ACTIVE with its agent connected.
    Joined,
    /// Launch: `LAUNCH_TIMEOUT_SECONDS` reached without joining.
    LaunchTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Complete {
        result: LifecycleActionResult,
        reason: CompleteReason,
    },
    Wait {
        heartbeat: bool,
    },
}

/// Whether this sweep should record a heartbeat: once in each half of the hook's heartbeat
/// timeout (the first sweep of each half-window), so the timer never runs out while the sweep
/// keeps running, without a call per instance per minute. Stateless: from the elapsed time only.
pub fn heartbeat_due(elapsed_secs: i64, heartbeat_timeout_secs: i64) -> bool {
    let half = heartbeat_timeout_secs / 2;
    if half <= SWEEP_INTERVAL_SECS {
        return true; // a short timeout: every sweep
    }
    elapsed_secs >= half && elapsed_secs % half < SWEEP_INTERVAL_SECS
}

/// The terminate decision. `elapsed_secs` is known to the sweep (from the scaling activity);
/// events pass `None` and never force.
pub fn decide_terminate(
    evidence: &Evidence,
    had_work: bool,
    elapsed_secs: Option<i64>,
    heartbeat_timeout_secs: i64,
    config: &LifecycleConfig,
) -> Step {
    if evidence.is_empty() {
        return Step::Complete {
            result: LifecycleActionResult::Continue,
            reason: if had_work {
                CompleteReason::Drained
            } else {
                CompleteReason::NothingToDrain
            },
        };
    }
    match elapsed_secs {
        Some(e) if e >= config.max_drain_secs => Step::Complete {
            result: config.drain_timeout_result,
            reason: CompleteReason::DrainTimeout,
        },
        Some(e) => Step::Wait {
            heartbeat: heartbeat_due(e, heartbeat_timeout_secs),
        },
        None => Step::Wait { heartbeat: false },
    }
}

/// The launch decision.
pub fn decide_launch(
    into_warm_pool: bool,
    cluster: Option<&str>,
    joined: bool,
    elapsed_secs: Option<i64>,
    heartbeat_timeout_secs: i64,
    config: &LifecycleConfig,
) -> Step {
    let done = |reason| Step::Complete {
        result: LifecycleActionResult::Continue,
        reason,
    };
    if into_warm_pool {
        return done(CompleteReason::IntoWarmPool);
    }
    if cluster.is_none() {
        return done(CompleteReason::NotEcs);
    }
    if joined {
        return done(CompleteReason::Joined);
    }
    match elapsed_secs {
        Some(e) if e >= config.launch_timeout_secs => Step::Complete {
            result: config.launch_timeout_result,
            reason: CompleteReason::LaunchTimeout,
        },
        Some(e) => Step::Wait {
            heartbeat: heartbeat_due(e, heartbeat_timeout_secs),
        },
        None => Step::Wait { heartbeat: false },
    }
}

/// Whether a container instance has joined `cluster`: ACTIVE, agent connected.
pub fn joined(ci: &ContainerInstance, cluster: &str) -> bool {
    ci.status == "ACTIVE"
        && ci.agent_connected
        && cluster_name(&ci.cluster_arn) == cluster_name(cluster)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ECS_MANAGED_DRAINING_HOOK, LifecycleConfig};
    use fleetguard::ports::{LifecycleActionResult, Registration, Task};

    fn config() -> LifecycleConfig {
        LifecycleConfig::from_lookup(|_| None).unwrap()
    }

    fn task(status: &str) -> Task {
        Task {
            arn: format!("arn:aws:ecs:eu-west-1:1:task/prod/{status}"),
            last_status: status.into(),
            desired_status: "STOPPED".into(),
            group: Some("service:api".into()),
            started_by: None,
            task_definition_arn: None,
            stop_code: None,
            stopped_reason: None,
            containers: vec![],
            stopped_at: None,
        }
    }

    #[test]
    fn stopping_tasks_are_not_stopped() {
        let e = Evidence {
            ecs: EcsEvidence::Tasks(vec![task("STOPPED"), task("DEACTIVATING")]),
            registrations: vec![],
        };
        assert!(!e.is_empty());
        assert_eq!(
            decide_terminate(&e, true, None, 3600, &config()),
            Step::Wait { heartbeat: false }
        );
        let e = Evidence {
            ecs: EcsEvidence::Tasks(vec![task("STOPPED"), task("STOPPED")]),
            registrations: vec![],
        };
        assert_eq!(
            decide_terminate(&e, true, None, 3600, &config()),
            Step::Complete {
                result: LifecycleActionResult::Continue,
                reason: CompleteReason::Drained
            }
        );
    }

    #[test]
    fn counters_above_zero_or_a_draining_target_mean_not_empty() {
        let busy = Evidence {
            ecs: EcsEvidence::Busy {
                running: 0,
                pending: 1,
            },
            registrations: vec![],
        };
        assert!(!busy.is_empty());
        let target = Evidence {
            ecs: EcsEvidence::NotInCluster,
            registrations: vec![Registration {
                target_group_arn: "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/abc"
                    .into(),
                port: Some(80),
                state: "draining".into(),
            }],
        };
        assert!(!target.is_empty());
        let nothing = Evidence {
            ecs: EcsEvidence::NotInCluster,
            registrations: vec![],
        };
        assert_eq!(
            decide_terminate(&nothing, false, Some(10), 3600, &config()),
            Step::Complete {
                result: LifecycleActionResult::Continue,
                reason: CompleteReason::NothingToDrain
            }
        );
    }

    #[test]
    fn forced_only_by_the_sweep_after_the_budget() {
        let busy = Evidence {
            ecs: EcsEvidence::Busy {
                running: 2,
                pending: 0,
            },
            registrations: vec![],
        };
        let mut c = config();
        c.drain_timeout_result = LifecycleActionResult::Abandon;
        assert_eq!(
            decide_terminate(&busy, true, None, 3600, &c),
            Step::Wait { heartbeat: false }
        );
        assert!(matches!(
            decide_terminate(&busy, true, Some(3599), 3600, &c),
            Step::Wait { .. }
        ));
        assert_eq!(
            decide_terminate(&busy, true, Some(3600), 3600, &c),
            Step::Complete {
                result: LifecycleActionResult::Abandon,
                reason: CompleteReason::DrainTimeout
            }
        );
    }

    #[test]
    fn heartbeats_once_per_half_timeout() {
        // 300 s timeout: half-windows of 150 s; the first sweep in each records one.
        let due: Vec<i64> = (0..900)
            .step_by(60)
            .filter(|e| heartbeat_due(*e, 300))
            .collect();
        assert_eq!(due, vec![180, 300, 480, 600, 780]);
        // Every gap between heartbeats (and from the start) stays under the timeout.
        let mut last = 0;
        for d in due {
            assert!(d - last < 300, "gap {} at {d}", d - last);
            last = d;
        }
        // A short timeout: every sweep.
        assert!(heartbeat_due(30, 90));
        // The hour default: about one call per 30 minutes, not 60.
        let n = (0..7200)
            .step_by(60)
            .filter(|e| heartbeat_due(*e, 3600))
            .count();
        assert_eq!(n, 3);
    }

    #[test]
    fn launch_decisions() {
        let c = config();
        let done = |reason| Step::Complete {
            result: LifecycleActionResult::Continue,
            reason,
        };
        assert_eq!(
            decide_launch(true, Some("prod"), false, None, 3600, &c),
            done(CompleteReason::IntoWarmPool)
        );
        assert_eq!(
            decide_launch(false, None, false, None, 3600, &c),
            done(CompleteReason::NotEcs)
        );
        assert_eq!(
            decide_launch(false, Some("prod"), true, None, 3600, &c),
            done(CompleteReason::Joined)
        );
        assert_eq!(
            decide_launch(false, Some("prod"), false, None, 3600, &c),
            Step::Wait { heartbeat: false }
        );
        assert_eq!(
            decide_launch(false, Some("prod"), false, Some(600), 3600, &c),
            Step::Complete {
                result: LifecycleActionResult::Abandon,
                reason: CompleteReason::LaunchTimeout
            }
        );
    }

    #[test]
    fn hooks_and_clusters() {
        let c = config();
        assert!(c.owns_hook("fleetguard-drain"));
        assert!(!c.owns_hook(ECS_MANAGED_DRAINING_HOOK));
        let c = LifecycleConfig::from_lookup(|k| (k == "LIFECYCLE_HOOKS").then(|| "a, b".into()))
            .unwrap();
        assert!(c.owns_hook("b") && !c.owns_hook("fleetguard-drain"));
        assert_eq!(
            expected_cluster(Some(r#"{"ecs_cluster":"prod"}"#)).as_deref(),
            Some("prod")
        );
        assert_eq!(
            expected_cluster(Some(r#"{"cluster":" prod "}"#)).as_deref(),
            Some("prod")
        );
        assert_eq!(expected_cluster(Some("drain me")), None);
        assert_eq!(expected_cluster(Some(r#"{"cluster":7}"#)), None);
        assert_eq!(cluster_name("arn:aws:ecs:eu-west-1:1:cluster/prod"), "prod");
    }
}
