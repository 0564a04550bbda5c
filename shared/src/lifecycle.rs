//! `asg-lifecycle`: drain before termination, hold launches until the instance joined its cluster.
//!
//! Stateless and event-driven: AWS holds the state (the instance's lifecycle state, its container
//! instance's status and tasks, its target health, the scaling activity's start time). The
//! lifecycle action event starts a drain; ECS state changes on a draining instance complete it the
//! moment the instance is empty; a scheduled sweep (every minute) completes what events missed,
//! records heartbeats and enforces `MAX_DRAIN_SECONDS`. Nothing waits inside an invocation.

use crate::adapters::AwsError;
use crate::adapters::autoscaling::{
    Completion, Group, GroupInstance, LifecycleActionResult, LifecycleHook,
};
use crate::adapters::ecs::{ContainerInstance, Task, count_by_service};
use crate::adapters::elbv2::Registration;
use crate::alarm_fanout::human_duration;
use crate::config::{ConfigError, parse_list, parse_target_group_arns};
use crate::events::LifecycleAction;
use crate::events::autoscaling::LifecycleTransition;
use crate::notify::{Notification, NotificationKind, Severity, console_host};
use crate::spot::{ManagedTag, SpotPorts as Ports};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The hook ECS creates for managed instance draining: ECS owns it, we never complete it.
pub const ECS_MANAGED_DRAINING_HOOK: &str = "ecs-managed-draining-termination-hook";
/// How often the sweep runs (the EventBridge schedule).
pub const SWEEP_INTERVAL_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// `ECS_CLUSTERS`: where container instances are looked for; empty means every cluster.
    pub clusters: Vec<String>,
    /// `TARGET_GROUP_ARNS`: empty means the target groups of the instance's group.
    pub target_group_arns: Vec<String>,
    /// `AUTO_SCALING_GROUPS`: the managed groups by name.
    pub groups: Vec<String>,
    /// `MANAGED_ASG_TAG`: the managed groups by tag.
    pub managed_tag: Option<ManagedTag>,
    /// `LIFECYCLE_HOOKS`: our hooks; empty means every hook but ECS's own.
    pub hooks: Vec<String>,
    pub max_drain_secs: i64,
    pub drain_timeout_result: LifecycleActionResult,
    pub launch_timeout_secs: i64,
    pub launch_timeout_result: LifecycleActionResult,
}

fn seconds(
    variable: &'static str,
    v: Option<String>,
    default: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (0..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError {
                variable,
                message: format!(
                    "expected whole seconds from 0 to {max}, got {:?}",
                    crate::text::shown(s, 40)
                ),
            }),
        },
    }
}

fn result(
    variable: &'static str,
    v: Option<String>,
    default: LifecycleActionResult,
) -> Result<LifecycleActionResult, ConfigError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => LifecycleActionResult::parse(s).ok_or_else(|| ConfigError {
            variable,
            message: format!(
                "expected CONTINUE or ABANDON, got {:?}",
                crate::text::shown(s, 40)
            ),
        }),
    }
}

impl LifecycleConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // 48 h is the longest any lifecycle action can be held.
        const MAX: i64 = 48 * 3600;
        Ok(Self {
            clusters: parse_list(lookup("ECS_CLUSTERS")),
            target_group_arns: parse_target_group_arns(lookup("TARGET_GROUP_ARNS"))?,
            groups: parse_list(lookup("AUTO_SCALING_GROUPS")),
            managed_tag: lookup("MANAGED_ASG_TAG").and_then(|s| ManagedTag::parse(&s)),
            hooks: parse_list(lookup("LIFECYCLE_HOOKS")),
            max_drain_secs: seconds("MAX_DRAIN_SECONDS", lookup("MAX_DRAIN_SECONDS"), 3600, MAX)?,
            drain_timeout_result: result(
                "DRAIN_TIMEOUT_RESULT",
                lookup("DRAIN_TIMEOUT_RESULT"),
                LifecycleActionResult::Continue,
            )?,
            launch_timeout_secs: seconds(
                "LAUNCH_TIMEOUT_SECONDS",
                lookup("LAUNCH_TIMEOUT_SECONDS"),
                600,
                MAX,
            )?,
            launch_timeout_result: result(
                "LAUNCH_TIMEOUT_RESULT",
                lookup("LAUNCH_TIMEOUT_RESULT"),
                LifecycleActionResult::Abandon,
            )?,
        })
    }

    /// Whether fleetguard manages this group: in `AUTO_SCALING_GROUPS` (when set) and carrying
    /// `MANAGED_ASG_TAG` (when set). With neither, every group whose events reach the function.
    pub fn manages(&self, group: &Group) -> bool {
        (self.groups.is_empty() || self.groups.contains(&group.name))
            && self
                .managed_tag
                .as_ref()
                .is_none_or(|t| t.matches(&group.tags))
    }

    /// Whether the hook is ours to complete. ECS's managed-draining hook never is.
    pub fn owns_hook(&self, name: &str) -> bool {
        name != ECS_MANAGED_DRAINING_HOOK
            && (self.hooks.is_empty() || self.hooks.iter().any(|h| h == name))
    }
}

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

/// What an invocation did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub outcome: String,
    pub actions: Vec<String>,
    pub notifications: Vec<Notification>,
    /// Calls that failed; the invocation fails after everything else was tried.
    pub errors: Vec<AwsError>,
}

impl Outcome {
    fn new(outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            ..Self::default()
        }
    }
}

/// The `asg-lifecycle` logic over its ports.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub ports: Ports,
    pub config: LifecycleConfig,
    pub dry_run: bool,
}

fn is_terminating(state: &str) -> bool {
    state.ends_with("Terminating:Wait")
}

fn is_pending(state: &str) -> bool {
    state.ends_with("Pending:Wait")
}

impl Lifecycle {
    async fn clusters(&self, preferred: Option<&str>) -> Result<Vec<String>, AwsError> {
        match preferred {
            Some(c) => Ok(vec![c.to_owned()]),
            None => self.ports.ecs.clusters(&self.config.clusters).await,
        }
    }

    fn target_groups(&self, group: &Group) -> Vec<String> {
        if self.config.target_group_arns.is_empty() {
            group.target_group_arns.clone()
        } else {
            self.config.target_group_arns.clone()
        }
    }

    async fn registrations(
        &self,
        group: &Group,
        instance: &str,
    ) -> Result<Vec<Registration>, AwsError> {
        let mut out = Vec::new();
        for tg in self.target_groups(group) {
            out.extend(self.ports.elbv2.registrations(&tg, instance).await?);
        }
        Ok(out)
    }

    /// Complete every hook given; "already complete" counts as done. True when this call
    /// completed one (or would have, in a dry run) and none failed: only then is it announced,
    /// so a replayed event never sends a second message.
    async fn complete(
        &self,
        group: &str,
        hooks: &[&LifecycleHook],
        instance: &str,
        result: LifecycleActionResult,
        out: &mut Outcome,
    ) -> bool {
        let (mut ok, mut new) = (true, false);
        for h in hooks {
            if self.dry_run {
                out.actions.push(format!(
                    "dry run: would complete {} of {instance} with {result}",
                    h.name
                ));
                new = true;
                continue;
            }
            match self
                .ports
                .autoscaling
                .complete(group, &h.name, instance, result)
                .await
            {
                Ok(Completion::Completed) => {
                    new = true;
                    out.actions
                        .push(format!("completed {} of {instance} with {result}", h.name))
                }
                Ok(Completion::AlreadyComplete) => out
                    .actions
                    .push(format!("{} of {instance} was already complete", h.name)),
                Err(e) => {
                    ok = false;
                    out.errors.push(e);
                }
            }
        }
        ok && new
    }

    async fn heartbeat(
        &self,
        group: &str,
        hooks: &[&LifecycleHook],
        instance: &str,
        out: &mut Outcome,
    ) {
        for h in hooks {
            if self.dry_run {
                out.actions
                    .push(format!("dry run: would record a heartbeat for {instance}"));
                continue;
            }
            match self
                .ports
                .autoscaling
                .heartbeat(group, &h.name, instance)
                .await
            {
                Ok(true) => out
                    .actions
                    .push(format!("heartbeat for {} of {instance}", h.name)),
                Ok(false) => {}
                Err(e) => out.errors.push(e),
            }
        }
    }

    /// Set DRAINING (unless ECS drains it itself, or it already is) and deregister targets that
    /// are not already draining. Idempotent.
    async fn start_drain(
        &self,
        ci: Option<&ContainerInstance>,
        managed_draining: bool,
        instance: &str,
        registrations: &[Registration],
        out: &mut Outcome,
    ) {
        if let Some(ci) = ci {
            if managed_draining {
                out.actions
                    .push("ECS managed draining drains it: DRAINING left to ECS".into());
            } else if ci.status == "ACTIVE" {
                if self.dry_run {
                    out.actions
                        .push(format!("dry run: would set {} DRAINING", ci.arn));
                } else {
                    match self.ports.ecs.drain(ci).await {
                        Ok(_) => out
                            .actions
                            .push(format!("container instance {} DRAINING", ci.arn)),
                        Err(e) => out.errors.push(e),
                    }
                }
            }
        }
        let active: Vec<Registration> = registrations
            .iter()
            .filter(|r| r.state != "draining")
            .cloned()
            .collect();
        if !active.is_empty() {
            if self.dry_run {
                out.actions.push(format!(
                    "dry run: would deregister {instance} from {} target group(s)",
                    active.len()
                ));
            } else {
                match self.ports.elbv2.deregister(instance, &active).await {
                    Ok(()) => {
                        for r in &active {
                            out.actions
                                .push(format!("deregistered from {}", r.target_group_arn));
                        }
                    }
                    Err(e) => out.errors.push(e),
                }
            }
        }
    }

    async fn evidence_for(
        &self,
        ci: Option<&ContainerInstance>,
        registrations: Vec<Registration>,
    ) -> Result<Evidence, AwsError> {
        let ecs = match ci {
            None => EcsEvidence::NotInCluster,
            Some(ci) => EcsEvidence::Tasks(
                self.ports
                    .ecs
                    .all_tasks_on(&ci.cluster_arn, &ci.arn)
                    .await?,
            ),
        };
        Ok(Evidence { ecs, registrations })
    }

    /// A lifecycle action event.
    pub async fn on_action(&self, a: &LifecycleAction, region: &str) -> Result<Outcome, AwsError> {
        let group_name = a.auto_scaling_group_name.as_str();
        let Some(group) = self.ports.autoscaling.group(group_name).await? else {
            return Ok(Outcome::new(format!(
                "ignored: group {group_name} no longer exists"
            )));
        };
        if !self.config.manages(&group) {
            return Ok(Outcome::new(format!(
                "ignored: group {group_name} is not managed"
            )));
        }
        if !self.config.owns_hook(&a.lifecycle_hook_name) {
            return Ok(Outcome::new(format!(
                "ignored: hook {} is not ours",
                a.lifecycle_hook_name
            )));
        }
        let hook = LifecycleHook {
            name: a.lifecycle_hook_name.clone(),
            transition: a.transition.to_string(),
            heartbeat_timeout_secs: 3600,
            default_result: String::new(),
            notification_metadata: a.notification_metadata.raw.clone(),
        };
        let instance = a.instance_id.as_str();
        // A replayed or late event: the action is no longer pending, nothing to do or say.
        let state = self
            .ports
            .autoscaling
            .instance(instance)
            .await?
            .map(|gi| gi.lifecycle_state);
        let pending = match a.transition {
            LifecycleTransition::Launching => state.as_deref().is_some_and(is_pending),
            _ => state.as_deref().is_some_and(is_terminating),
        };
        if !pending {
            return Ok(Outcome::new(format!(
                "ignored: {instance} has no pending lifecycle action ({})",
                state.as_deref().unwrap_or("not in a group")
            )));
        }
        let cluster = expected_cluster(a.notification_metadata.raw.as_deref());
        match a.transition {
            LifecycleTransition::Launching => {
                let joined_now = match (&cluster, a.is_into_warm_pool()) {
                    (Some(c), false) => self
                        .ports
                        .ecs
                        .find_container_instance(c, &a.instance_id)
                        .await?
                        .is_some_and(|ci| joined(&ci, c)),
                    _ => false,
                };
                let step = decide_launch(
                    a.is_into_warm_pool(),
                    cluster.as_deref(),
                    joined_now,
                    None,
                    3600,
                    &self.config,
                );
                let mut out = Outcome::new("");
                match step {
                    Step::Complete { result, reason } => {
                        self.complete(group_name, &[&hook], instance, result, &mut out)
                            .await;
                        out.outcome = format!(
                            "launch completed: {}",
                            launch_reason(reason, cluster.as_deref())
                        );
                    }
                    Step::Wait { .. } => {
                        out.outcome = format!(
                            "waiting for {instance} to join ECS cluster {}",
                            cluster.as_deref().unwrap_or_default()
                        );
                    }
                }
                Ok(out)
            }
            LifecycleTransition::Terminating => {
                let hooks = self.ports.autoscaling.hooks(group_name).await?;
                let managed_draining = hooks.iter().any(|h| h.name == ECS_MANAGED_DRAINING_HOOK);
                let clusters = self.clusters(cluster.as_deref()).await?;
                let (ci, regs) = tokio::join!(
                    self.ports.ecs.find_in_clusters(&clusters, &a.instance_id),
                    self.registrations(&group, instance)
                );
                let (ci, regs) = (ci?, regs?);
                let had_work = ci.is_some() || !regs.is_empty();
                let mut out = Outcome::new("");
                self.start_drain(ci.as_ref(), managed_draining, instance, &regs, &mut out)
                    .await;
                if !out.errors.is_empty() {
                    out.outcome = "drain failed".into();
                    return Ok(out);
                }
                // Read back: the targets after deregistration (gone, or draining for the delay).
                let regs = if had_work && !regs.is_empty() && !self.dry_run {
                    self.registrations(&group, instance).await?
                } else {
                    regs
                };
                let evidence = self.evidence_for(ci.as_ref(), regs).await?;
                let step = decide_terminate(&evidence, had_work, None, 3600, &self.config);
                let ctx = Render {
                    group: &group,
                    instance,
                    region,
                    dry_run: self.dry_run,
                    ci: ci.as_ref(),
                    managed_draining,
                };
                match step {
                    Step::Complete { result, reason } => {
                        if self
                            .complete(group_name, &[&hook], instance, result, &mut out)
                            .await
                            && had_work
                        {
                            out.notifications.push(render_drain_completed(
                                &ctx,
                                &evidence,
                                Some(0),
                            ));
                        }
                        out.outcome = match reason {
                            CompleteReason::NothingToDrain => "completed: nothing to drain".into(),
                            _ => "completed: already empty".into(),
                        };
                    }
                    Step::Wait { .. } => {
                        out.notifications
                            .push(render_drain_started(&ctx, &evidence, &self.config));
                        out.outcome = format!(
                            "draining: {} task(s) and {} target registration(s) left",
                            match &evidence.ecs {
                                EcsEvidence::Busy { running, pending } =>
                                    (running + pending) as usize,
                                _ => evidence.remaining_tasks().len(),
                            },
                            evidence.registrations.len()
                        );
                    }
                }
                Ok(out)
            }
            LifecycleTransition::Other(_) => {
                Ok(Outcome::new("ignored: unknown lifecycle transition"))
            }
        }
    }

    /// An ECS state change about a container instance (from a task or container-instance event).
    /// Counters above zero prove the instance is not empty yet, so most wake-ups cost no call.
    pub async fn on_container_instance(
        &self,
        ci: ContainerInstance,
        region: &str,
    ) -> Result<Outcome, AwsError> {
        if ci.status == "DRAINING" && (ci.running_tasks_count > 0 || ci.pending_tasks_count > 0) {
            return Ok(Outcome::new(format!(
                "not empty yet: {} running, {} pending",
                ci.running_tasks_count, ci.pending_tasks_count
            )));
        }
        if ci.status != "DRAINING" && !(ci.status == "ACTIVE" && ci.agent_connected) {
            return Ok(Outcome::new(format!(
                "ignored: container instance is {}",
                ci.status
            )));
        }
        let Some(gi) = self.ports.autoscaling.instance(&ci.ec2_instance_id).await? else {
            return Ok(Outcome::new("ignored: not in an Auto Scaling group"));
        };
        let terminating = is_terminating(&gi.lifecycle_state);
        let wanted = if ci.status == "DRAINING" {
            terminating
        } else {
            is_pending(&gi.lifecycle_state)
        };
        if !wanted {
            return Ok(Outcome::new(format!(
                "ignored: {} is {}, no pending lifecycle action",
                ci.ec2_instance_id, gi.lifecycle_state
            )));
        }
        let Some(group) = self
            .ports
            .autoscaling
            .group(&gi.auto_scaling_group_name)
            .await?
        else {
            return Ok(Outcome::new("ignored: group no longer exists"));
        };
        if !self.config.manages(&group) {
            return Ok(Outcome::new(format!(
                "ignored: group {} is not managed",
                group.name
            )));
        }
        let hooks = self.ports.autoscaling.hooks(&group.name).await?;
        let mut out = Outcome::new("");
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
            let now = chrono::Utc::now().timestamp();
            if self
                .complete(
                    &group.name,
                    &ours,
                    &ci.ec2_instance_id,
                    LifecycleActionResult::Continue,
                    &mut out,
                )
                .await
            {
                let ctx = Render {
                    group: &group,
                    instance: &ci.ec2_instance_id,
                    region,
                    dry_run: self.dry_run,
                    ci: Some(&ci),
                    managed_draining: hooks.iter().any(|h| h.name == ECS_MANAGED_DRAINING_HOOK),
                };
                let took = started.get(&gi.instance_id).map(|s| now - s);
                out.notifications
                    .push(render_drain_completed(&ctx, &evidence, took));
            }
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
                return Ok(Outcome::new(
                    "ignored: no launch hook waits for this cluster",
                ));
            }
            self.complete(
                &group.name,
                &ours,
                &ci.ec2_instance_id,
                LifecycleActionResult::Continue,
                &mut out,
            )
            .await;
            out.outcome = format!("launch completed: joined {}", cluster_name(&ci.cluster_arn));
        }
        Ok(out)
    }

    async fn start_times(&self, group: &str, wanted: &[(String, bool)]) -> BTreeMap<String, i64> {
        match self
            .ports
            .autoscaling
            .activity_start_times(group, wanted, 20)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "could not read scaling activities");
                BTreeMap::new()
            }
        }
    }

    /// The scheduled sweep: every managed group's instances in `Terminating:Wait` and
    /// `Pending:Wait`, in batches.
    pub async fn sweep(&self, region: &str) -> Result<Outcome, AwsError> {
        let tag = self
            .config
            .managed_tag
            .as_ref()
            .map(|t| (t.key.as_str(), t.value.as_deref()));
        let groups = self
            .ports
            .autoscaling
            .groups(&self.config.groups, tag)
            .await?;
        let groups: Vec<_> = groups
            .into_iter()
            .filter(|g| self.config.manages(&g.group))
            .collect();
        let waiting_count: usize = groups
            .iter()
            .map(|g| {
                g.instances
                    .iter()
                    .filter(|i| {
                        is_terminating(&i.lifecycle_state) || is_pending(&i.lifecycle_state)
                    })
                    .count()
            })
            .sum();
        if waiting_count == 0 {
            return Ok(Outcome::new(format!(
                "nothing waiting in {} managed group(s)",
                groups.len()
            )));
        }
        let now = chrono::Utc::now().timestamp();
        let mut out = Outcome::new("");
        // Per group: its hooks and when each waiting instance's activity started.
        let mut per_group = Vec::new();
        for g in &groups {
            let waiting: Vec<&GroupInstance> = g
                .instances
                .iter()
                .filter(|i| is_terminating(&i.lifecycle_state) || is_pending(&i.lifecycle_state))
                .collect();
            if waiting.is_empty() {
                continue;
            }
            let hooks = self.ports.autoscaling.hooks(&g.group.name).await?;
            let wanted: Vec<(String, bool)> = waiting
                .iter()
                .map(|i| (i.instance_id.clone(), is_terminating(&i.lifecycle_state)))
                .collect();
            let started = self.start_times(&g.group.name, &wanted).await;
            per_group.push((g, waiting, hooks, started));
        }
        // ECS: every container instance of the clusters concerned, listed and described in
        // batches of 100, by EC2 instance id.
        let mut clusters: BTreeSet<String> = self
            .ports
            .ecs
            .clusters(&self.config.clusters)
            .await?
            .into_iter()
            .collect();
        for (_, _, hooks, _) in &per_group {
            clusters.extend(
                hooks
                    .iter()
                    .filter_map(|h| expected_cluster(h.notification_metadata.as_deref())),
            );
        }
        let mut by_instance: BTreeMap<String, ContainerInstance> = BTreeMap::new();
        for c in &clusters {
            for ci in self.ports.ecs.container_instances(c, None).await? {
                by_instance.insert(ci.ec2_instance_id.clone(), ci);
            }
        }
        // Target groups of groups with terminating instances, one call each.
        let mut tg_regs: BTreeMap<String, Vec<Registration>> = BTreeMap::new();
        let mut tgs: BTreeSet<String> = BTreeSet::new();
        for (g, waiting, _, _) in &per_group {
            if waiting.iter().any(|i| is_terminating(&i.lifecycle_state)) {
                tgs.extend(self.target_groups(&g.group));
            }
        }
        for tg in &tgs {
            for (id, regs) in self.ports.elbv2.target_group_registrations(tg).await? {
                tg_regs.entry(id).or_default().extend(regs);
            }
        }
        let (mut completed, mut forced, mut heartbeats, mut draining) = (0, 0, 0, 0);
        for (g, waiting, hooks, started) in &per_group {
            let managed_draining = hooks.iter().any(|h| h.name == ECS_MANAGED_DRAINING_HOOK);
            for gi in waiting {
                let id = gi.instance_id.as_str();
                let our_hooks: Vec<&LifecycleHook> = hooks
                    .iter()
                    .filter(|h| {
                        h.is_terminating() == is_terminating(&gi.lifecycle_state)
                            && self.config.owns_hook(&h.name)
                    })
                    .collect();
                let started_at = started.get(id).copied();
                if our_hooks.is_empty() {
                    continue;
                }
                let elapsed = started_at.map(|s| (now - s).max(0));
                let heartbeat_timeout = our_hooks
                    .iter()
                    .map(|h| h.heartbeat_timeout_secs)
                    .min()
                    .unwrap_or(3600);
                if is_terminating(&gi.lifecycle_state) {
                    let ci = by_instance.get(id);
                    let regs = tg_regs.get(id).cloned().unwrap_or_default();
                    // Backstop for a missed lifecycle event: start the drain.
                    let before = out.errors.len();
                    self.start_drain(ci, managed_draining, id, &regs, &mut out)
                        .await;
                    if out.errors.len() > before {
                        continue;
                    }
                    let had_work = ci.is_some() || !regs.is_empty();
                    let ecs = match ci {
                        None => EcsEvidence::NotInCluster,
                        Some(c) if c.running_tasks_count > 0 || c.pending_tasks_count > 0 => {
                            EcsEvidence::Busy {
                                running: c.running_tasks_count,
                                pending: c.pending_tasks_count,
                            }
                        }
                        Some(c) => {
                            match self.ports.ecs.all_tasks_on(&c.cluster_arn, &c.arn).await {
                                Ok(t) => EcsEvidence::Tasks(t),
                                Err(e) => {
                                    out.errors.push(e);
                                    continue;
                                }
                            }
                        }
                    };
                    let evidence = Evidence {
                        ecs,
                        registrations: regs,
                    };
                    let step = decide_terminate(
                        &evidence,
                        had_work,
                        elapsed,
                        heartbeat_timeout,
                        &self.config,
                    );
                    let ctx = Render {
                        group: &g.group,
                        instance: id,
                        region,
                        dry_run: self.dry_run,
                        ci,
                        managed_draining,
                    };
                    match step {
                        Step::Complete { result, reason } => {
                            if reason == CompleteReason::DrainTimeout {
                                // Name what is still running and why, before letting it go.
                                let (tasks, events) = self.why_not_empty(ci).await;
                                if self
                                    .complete(&g.group.name, &our_hooks, id, result, &mut out)
                                    .await
                                {
                                    forced += 1;
                                    out.notifications.push(render_drain_forced(
                                        &ctx,
                                        &evidence,
                                        &tasks,
                                        &events,
                                        elapsed.unwrap_or_default(),
                                        result,
                                    ));
                                }
                            } else if self
                                .complete(&g.group.name, &our_hooks, id, result, &mut out)
                                .await
                            {
                                completed += 1;
                                if had_work {
                                    out.notifications
                                        .push(render_drain_completed(&ctx, &evidence, elapsed));
                                }
                            }
                        }
                        Step::Wait { heartbeat } => {
                            draining += 1;
                            if heartbeat {
                                heartbeats += 1;
                                self.heartbeat(&g.group.name, &our_hooks, id, &mut out)
                                    .await;
                            }
                        }
                    }
                } else {
                    let cluster = our_hooks
                        .iter()
                        .find_map(|h| expected_cluster(h.notification_metadata.as_deref()));
                    let warm = gi.lifecycle_state.starts_with("Warmed:");
                    let joined_now = cluster
                        .as_deref()
                        .is_some_and(|c| by_instance.get(id).is_some_and(|ci| joined(ci, c)));
                    match decide_launch(
                        warm,
                        cluster.as_deref(),
                        joined_now,
                        elapsed,
                        heartbeat_timeout,
                        &self.config,
                    ) {
                        Step::Complete { result, reason } => {
                            if self
                                .complete(&g.group.name, &our_hooks, id, result, &mut out)
                                .await
                            {
                                completed += 1;
                                if reason == CompleteReason::LaunchTimeout {
                                    out.notifications.push(render_launch_timeout(
                                        &g.group,
                                        id,
                                        region,
                                        cluster.as_deref().unwrap_or_default(),
                                        by_instance.get(id),
                                        elapsed.unwrap_or_default(),
                                        result,
                                        self.dry_run,
                                    ));
                                }
                            }
                        }
                        Step::Wait { heartbeat } => {
                            if heartbeat {
                                heartbeats += 1;
                                self.heartbeat(&g.group.name, &our_hooks, id, &mut out)
                                    .await;
                            }
                        }
                    }
                }
            }
        }
        out.outcome = format!(
            "swept {waiting_count} waiting instance(s): {completed} completed, {forced} forced, {draining} still draining, {heartbeats} heartbeat(s)"
        );
        Ok(out)
    }

    /// The tasks still running on a container instance and the recent events of their services.
    async fn why_not_empty(
        &self,
        ci: Option<&ContainerInstance>,
    ) -> (Vec<Task>, Vec<(String, Vec<String>)>) {
        let Some(ci) = ci else {
            return (Vec::new(), Vec::new());
        };
        let tasks = match self.ports.ecs.all_tasks_on(&ci.cluster_arn, &ci.arn).await {
            Ok(t) => t
                .into_iter()
                .filter(|t| t.last_status != "STOPPED")
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "could not list the remaining tasks");
                Vec::new()
            }
        };
        let services: Vec<String> = count_by_service(&tasks)
            .into_keys()
            .filter(|s| s != "(standalone)")
            .collect();
        let events = if services.is_empty() {
            Vec::new()
        } else {
            self.ports
                .ecs
                .service_events(&ci.cluster_arn, &services, 3)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not read service events");
                    Vec::new()
                })
        };
        (tasks, events)
    }
}

fn launch_reason(reason: CompleteReason, cluster: Option<&str>) -> String {
    match reason {
        CompleteReason::IntoWarmPool => "into the warm pool".into(),
        CompleteReason::NotEcs => "not an ECS group, nothing to wait for".into(),
        CompleteReason::Joined => format!("joined ECS cluster {}", cluster.unwrap_or_default()),
        _ => format!("{reason:?}"),
    }
}

/// What every lifecycle message shows.
struct Render<'a> {
    group: &'a Group,
    instance: &'a str,
    region: &'a str,
    dry_run: bool,
    ci: Option<&'a ContainerInstance>,
    managed_draining: bool,
}

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
    let key = format!(
        "{}|{}|{}{}",
        kind.as_str(),
        ctx.group.name,
        ctx.instance,
        if ctx.dry_run { "|dry-run" } else { "" }
    );
    let mut n = Notification::new(kind, severity, title, key)
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
                    crate::notify::url_encode(&ctx.group.name)
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

fn render_drain_started(ctx: &Render<'_>, e: &Evidence, config: &LifecycleConfig) -> Notification {
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

fn render_drain_completed(ctx: &Render<'_>, e: &Evidence, took: Option<i64>) -> Notification {
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

fn render_drain_forced(
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
fn render_launch_timeout(
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn config_defaults_and_errors() {
        let c = config();
        assert_eq!(c.max_drain_secs, 3600);
        assert_eq!(c.drain_timeout_result, LifecycleActionResult::Continue);
        assert_eq!(c.launch_timeout_secs, 600);
        assert_eq!(c.launch_timeout_result, LifecycleActionResult::Abandon);
        let e = LifecycleConfig::from_lookup(|k| {
            (k == "MAX_DRAIN_SECONDS").then(|| "two hours".into())
        })
        .unwrap_err();
        assert_eq!(e.variable, "MAX_DRAIN_SECONDS");
        let e =
            LifecycleConfig::from_lookup(|k| (k == "MAX_DRAIN_SECONDS").then(|| "999999".into()))
                .unwrap_err();
        assert!(e.message.contains("172800"));
        let e = LifecycleConfig::from_lookup(|k| {
            (k == "LAUNCH_TIMEOUT_RESULT").then(|| "retry".into())
        })
        .unwrap_err();
        assert_eq!(e.variable, "LAUNCH_TIMEOUT_RESULT");
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
