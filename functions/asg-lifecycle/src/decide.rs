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

/// How wide each heartbeat window is: every sweep inside it records a heartbeat, so the hook's
/// timer is restarted unless every sweep of five minutes is late, failed or missed.
pub const HEARTBEAT_WINDOW_SECS: i64 = 300;
/// Forced completions come this long before the hook's global limit, so AWS's own expiry (which
/// terminates without a message) is never what ends a drain.
pub const GLOBAL_LIMIT_MARGIN_SECS: i64 = 3 * SWEEP_INTERVAL_SECS;
/// The shortest heartbeat timeout the sweep keeps alive through a skipped sweep and a few
/// minutes of Auto Scaling failing (the Terraform module refuses less; the sweep warns).
pub const MIN_SAFE_HEARTBEAT_TIMEOUT_SECS: i64 = 600;
/// The longest any lifecycle action can be held.
pub const MAX_GLOBAL_TIMEOUT_SECS: i64 = 48 * 3600;

/// What the caller knows of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An event: it completes what is done, never heartbeats or forces (the sweep does).
    Event,
    /// A sweep: the time since the termination or launch started (from its scaling activity,
    /// when found) and the shortest heartbeat timeout of our hooks on it.
    Sweep {
        elapsed_secs: Option<i64>,
        heartbeat_timeout_secs: i64,
    },
}

/// The hook's global limit: min(48 h, 100 × heartbeat timeout). Past it AWS applies the
/// default result whatever the heartbeats.
pub fn global_limit_secs(heartbeat_timeout_secs: i64) -> i64 {
    MAX_GLOBAL_TIMEOUT_SECS.min(100 * heartbeat_timeout_secs.max(1))
}

/// How long a drain (or a launch) may be held: the configured budget, held under the hook's
/// global limit with a margin.
pub fn effective_budget_secs(configured: i64, heartbeat_timeout_secs: i64) -> i64 {
    configured.min(global_limit_secs(heartbeat_timeout_secs) - GLOBAL_LIMIT_MARGIN_SECS)
}

/// Whether this sweep should record a heartbeat. Stateless, from the elapsed time only, and
/// safe under late, failed or skipped sweeps: every sweep in the first [`HEARTBEAT_WINDOW_SECS`]
/// of each half of the heartbeat timeout heartbeats, so one landing in each window keeps the
/// timer alive (a heartbeat in window k is at most one half-timeout before window k+1 ends).
/// Timeouts of ten minutes or less, and an unknown start time, heartbeat on every sweep.
pub fn heartbeat_due(elapsed_secs: Option<i64>, heartbeat_timeout_secs: i64) -> bool {
    let half = heartbeat_timeout_secs / 2;
    match elapsed_secs {
        _ if half <= HEARTBEAT_WINDOW_SECS => true,
        None => true,
        Some(e) => e.max(0) % half < HEARTBEAT_WINDOW_SECS,
    }
}

/// The terminate decision: complete once empty; in a sweep, force after the budget, else wait
/// (with a heartbeat when due).
pub fn decide_terminate(
    evidence: &Evidence,
    had_work: bool,
    when: When,
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
    match when {
        When::Event => Step::Wait { heartbeat: false },
        When::Sweep {
            elapsed_secs,
            heartbeat_timeout_secs: t,
        } => match elapsed_secs {
            Some(e) if e >= effective_budget_secs(config.max_drain_secs, t) => Step::Complete {
                result: config.drain_timeout_result,
                reason: CompleteReason::DrainTimeout,
            },
            _ => Step::Wait {
                heartbeat: heartbeat_due(elapsed_secs, t),
            },
        },
    }
}

/// The launch decision.
pub fn decide_launch(
    into_warm_pool: bool,
    cluster: Option<&str>,
    joined: bool,
    when: When,
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
    match when {
        When::Event => Step::Wait { heartbeat: false },
        When::Sweep {
            elapsed_secs,
            heartbeat_timeout_secs: t,
        } => match elapsed_secs {
            Some(e) if e >= effective_budget_secs(config.launch_timeout_secs, t) => {
                Step::Complete {
                    result: config.launch_timeout_result,
                    reason: CompleteReason::LaunchTimeout,
                }
            }
            _ => Step::Wait {
                heartbeat: heartbeat_due(elapsed_secs, t),
            },
        },
    }
}

pub use fleetguard::reasons::{
    SPOT_RETURN_SECS, STALE_MARK_SECS, Undo, decide_undo, undo_may_be_due,
};

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
            decide_terminate(&e, true, When::Event, &config()),
            Step::Wait { heartbeat: false }
        );
        let e = Evidence {
            ecs: EcsEvidence::Tasks(vec![task("STOPPED"), task("STOPPED")]),
            registrations: vec![],
        };
        assert_eq!(
            decide_terminate(&e, true, When::Event, &config()),
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
            decide_terminate(&nothing, false, sweep(Some(10), 3600), &config()),
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
            decide_terminate(&busy, true, When::Event, &c),
            Step::Wait { heartbeat: false }
        );
        assert!(matches!(
            decide_terminate(&busy, true, sweep(Some(3599), 3600), &c),
            Step::Wait { .. }
        ));
        assert_eq!(
            decide_terminate(&busy, true, sweep(Some(3600), 3600), &c),
            Step::Complete {
                result: LifecycleActionResult::Abandon,
                reason: CompleteReason::DrainTimeout
            }
        );
    }

    fn sweep(elapsed_secs: Option<i64>, heartbeat_timeout_secs: i64) -> When {
        When::Sweep {
            elapsed_secs,
            heartbeat_timeout_secs,
        }
    }

    #[test]
    fn heartbeat_windows() {
        // A 300 s timeout: every sweep (the defect: 215 s into a drain with no heartbeat yet, the
        // sweep recorded none, and one late sweep let the hook expire).
        assert!(heartbeat_due(Some(215), 300));
        assert!((0..900).all(|e| heartbeat_due(Some(e), 300)));
        // An unknown start time: every sweep.
        assert!(heartbeat_due(None, 3600));
        // The hour default: the first five minutes of each half hour.
        assert!(heartbeat_due(Some(1810), 3600) && heartbeat_due(Some(2090), 3600));
        assert!(!heartbeat_due(Some(2110), 3600) && !heartbeat_due(Some(3500), 3600));
    }

    #[test]
    fn no_hook_expires_under_late_and_missed_sweeps() {
        // Sweeps every 60 s, each up to 45 s late, and any run of up to three missed in a row:
        // the gap between heartbeats always stays under the timeout. (Below five minutes no
        // minute sweep can promise that: such hooks need the sweep to run on time.)
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for timeout in [300, 360, 600, 900, 1800, 3600, 7200, 86_400] {
            for _ in 0..50 {
                let (mut last, mut missed) = (0i64, 0);
                for minute in 1..(timeout * 6 / 60).max(20) {
                    let at = minute * 60 + (next() % 46) as i64;
                    if missed < 3 && next() % 4 == 0 {
                        missed += 1;
                        continue;
                    }
                    missed = 0;
                    if heartbeat_due(Some(at), timeout) {
                        assert!(
                            at - last < timeout,
                            "timeout {timeout}: gap {} at {at}",
                            at - last
                        );
                        last = at;
                    }
                }
            }
        }
    }

    #[test]
    fn budget_is_held_under_the_hooks_global_limit() {
        assert_eq!(global_limit_secs(300), 30_000);
        assert_eq!(global_limit_secs(7200), 172_800);
        // MAX_DRAIN_SECONDS=48 h with a 300 s heartbeat timeout: forced before AWS's 30,000 s.
        let mut c = config();
        c.max_drain_secs = 172_800;
        let busy = Evidence {
            ecs: EcsEvidence::Busy {
                running: 1,
                pending: 0,
            },
            registrations: vec![],
        };
        assert!(matches!(
            decide_terminate(&busy, true, sweep(Some(30_000 - 180), 300), &c),
            Step::Complete {
                reason: CompleteReason::DrainTimeout,
                ..
            }
        ));
        assert!(matches!(
            decide_terminate(&busy, true, sweep(Some(29_000), 300), &c),
            Step::Wait { heartbeat: true }
        ));
    }

    #[test]
    fn launch_decisions() {
        let c = config();
        let done = |reason| Step::Complete {
            result: LifecycleActionResult::Continue,
            reason,
        };
        assert_eq!(
            decide_launch(true, Some("prod"), false, When::Event, &c),
            done(CompleteReason::IntoWarmPool)
        );
        assert_eq!(
            decide_launch(false, None, false, When::Event, &c),
            done(CompleteReason::NotEcs)
        );
        assert_eq!(
            decide_launch(false, Some("prod"), true, When::Event, &c),
            done(CompleteReason::Joined)
        );
        assert_eq!(
            decide_launch(false, Some("prod"), false, When::Event, &c),
            Step::Wait { heartbeat: false }
        );
        assert_eq!(
            decide_launch(false, Some("prod"), false, sweep(Some(600), 3600), &c),
            Step::Complete {
                result: LifecycleActionResult::Abandon,
                reason: CompleteReason::LaunchTimeout
            }
        );
    }

    #[test]
    fn hooks_and_clusters() {
        let c = config();
        assert!(c.owns_hook("fleetguard-drain") && c.owns_hook("fleetguard-join"));
        assert!(!c.owns_hook(ECS_MANAGED_DRAINING_HOOK));
        // Another tool's hook is never ours by default (the defect: a CodeDeploy launch hook was
        // completed at once).
        assert!(!c.owns_hook("CodeDeploy-managed-automatic-launch-deployment-hook-app-1a2b3c"));
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
