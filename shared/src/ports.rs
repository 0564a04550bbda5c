//! Ports: what the functions do to AWS, as small traits over plain domain types.
//!
//! Handlers are generic over these traits. The SDK adapters (`crate::adapters`, one Cargo feature
//! per AWS service) implement them for Lambda; `crate::testing` (feature `testing`) implements
//! them in memory so handler tests run in milliseconds and can inject AWS's failure modes.
//! Every method is one AWS operation (or a paginated listing of one), named in AWS's words.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use crate::ids::InstanceId;
use crate::notify::{Deadline, DeliveryError, DeliveryReport, Notification};

/// A failed AWS call: which operation, and the SDK's full error context (codes and messages,
/// never credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn other(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            message: message.into(),
        }
    }

    /// A service error with an AWS error code (fakes and adapters alike).
    pub fn service(operation: &'static str, code: &str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: Some(code.to_owned()),
            message: format!("{code}: {}", message.into()),
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)
    }
}

impl std::error::Error for AwsError {}

// ---------------------------------------------------------------------------------------------
// ECS

/// A container instance as ECS describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerInstance {
    pub cluster_arn: String,
    pub arn: String,
    pub ec2_instance_id: String,
    /// `ACTIVE`, `DRAINING`, …
    pub status: String,
    pub agent_connected: bool,
    pub running_tasks_count: i32,
    pub pending_tasks_count: i32,
    pub instance_type: Option<String>,
    pub availability_zone: Option<String>,
    /// Why fleetguard set it DRAINING, when the instance is expected back (its
    /// [`DRAIN_MARK_ATTRIBUTE`]).
    pub drain_mark: Option<DrainMark>,
}

pub use crate::reasons::{DRAIN_MARK_ATTRIBUTE, DrainMark, DrainReason, drain_needs};

/// `ECS_CLUSTERS=none`: a fleet without ECS (plain EC2 behind load balancers). No cluster is
/// searched and no ECS call is made, so the role needs no ECS permission at all.
pub const NO_ECS_CLUSTERS: &str = "none";

/// The clusters `configured` names, or `None` when every cluster of the account is meant.
pub fn configured_clusters(configured: &[String]) -> Option<Vec<String>> {
    match configured {
        [] => None,
        [only] if only == NO_ECS_CLUSTERS => Some(Vec::new()),
        _ => Some(configured.to_vec()),
    }
}

impl ContainerInstance {
    pub fn cluster_name(&self) -> &str {
        self.cluster_arn
            .rsplit('/')
            .next()
            .unwrap_or(&self.cluster_arn)
    }
}

/// A task, as much of it as the functions use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub arn: String,
    pub last_status: String,
    pub desired_status: String,
    /// `service:<name>` for service tasks.
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub task_definition_arn: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub containers: Vec<TaskContainer>,
    /// Epoch seconds.
    pub stopped_at: Option<i64>,
}

/// A container of a task, for why it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContainer {
    pub name: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub last_status: Option<String>,
}

impl Task {
    pub fn service_name(&self) -> Option<&str> {
        self.group.as_deref()?.strip_prefix("service:")
    }
}

/// Tasks per service (`service:<name>` group), standalone tasks under `(standalone)`.
pub fn count_by_service(tasks: &[Task]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in tasks {
        let key = t
            .service_name()
            .map(str::to_owned)
            .unwrap_or_else(|| "(standalone)".to_owned());
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

/// What a drain call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainResult {
    Drained,
    /// Set DRAINING, but fleetguard's mark could not be written (ECS allows 10 custom
    /// attributes): nothing will undo this drain. Told, never a reason not to drain.
    DrainedUnmarked,
    AlreadyDraining,
}

/// A service deployment, as `DescribeServices` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub task_definition_arn: String,
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub desired_count: i32,
    pub running_count: i32,
    pub failed_tasks: i32,
}

/// A service: its deployments, circuit breaker and latest events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub cluster_arn: String,
    pub deployments: Vec<Deployment>,
    /// (enabled, rollback) of the deployment circuit breaker.
    pub circuit_breaker: Option<(bool, bool)>,
    /// Newest first: (epoch seconds, message).
    pub events: Vec<(Option<i64>, String)>,
}

/// A container definition: image and awslogs settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub essential: bool,
    /// (log group, region, stream prefix) with the awslogs driver.
    pub awslogs: Option<(String, Option<String>, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinition {
    pub arn: String,
    pub family: String,
    pub revision: i32,
    pub containers: Vec<ContainerDefinition>,
}

/// Container instances and their tasks (ECS on EC2).
pub trait ContainerInstances: Clone + Send + Sync + 'static {
    /// The configured clusters, or every cluster of the account (`ListClusters`, which an
    /// adapter may cache for a few minutes; `refresh` reads it now).
    fn clusters(
        &self,
        configured: &[String],
        refresh: bool,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// The container instance of `instance` in `cluster` (`ListContainerInstances` filtered by
    /// `ec2InstanceId`, then `DescribeContainerInstances`; the id is checked, never trusted).
    fn find_container_instance(
        &self,
        cluster: &str,
        instance: &InstanceId,
    ) -> impl Future<Output = Result<Option<ContainerInstance>, AwsError>> + Send;

    /// `DescribeContainerInstances`, 100 at a time.
    fn describe(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> impl Future<Output = Result<Vec<ContainerInstance>, AwsError>> + Send;

    /// Every container instance of the cluster with `status` (all when `None`).
    fn container_instances(
        &self,
        cluster: &str,
        status: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ContainerInstance>, AwsError>> + Send;

    /// Write each mark (`PutAttributes`, ten a call), then set DRAINING
    /// (`UpdateContainerInstancesState`, ten a call), as [`drain_needs`] says: already DRAINING
    /// makes no drain call. A drain whose first mark failed still happens (`DrainedUnmarked`); a
    /// mark of ours that could not be replaced fails. One result per container instance, by ARN.
    fn drain_all(
        &self,
        cis: Vec<(ContainerInstance, Option<DrainMark>)>,
    ) -> impl Future<Output = Vec<(String, Result<DrainResult, AwsError>)>> + Send;

    /// [`ContainerInstances::drain_all`] for one container instance.
    fn drain(
        &self,
        ci: &ContainerInstance,
        mark: Option<DrainMark>,
    ) -> impl Future<Output = Result<DrainResult, AwsError>> + Send {
        let ci = ci.clone();
        async move {
            match self.drain_all(vec![(ci, mark)]).await.pop() {
                Some((_, r)) => r,
                None => Ok(DrainResult::AlreadyDraining),
            }
        }
    }

    /// Keep the mark of a drain of an instance with no container instance (plain EC2: its
    /// deregistration), with the registrations to put back. No-op by default; kept in the table
    /// by [`crate::kept_marks::Marked`]. True when kept.
    fn keep_plain_mark(
        &self,
        instance: &str,
        mark: DrainMark,
        registrations: &[Registration],
    ) -> impl Future<Output = bool> + Send {
        let _ = (instance, mark, registrations);
        async { false }
    }

    /// The mark [`ContainerInstances::keep_plain_mark`] kept for `instance`, with its
    /// registrations.
    fn kept_plain_mark(
        &self,
        instance: &str,
    ) -> impl Future<Output = Option<(DrainMark, Vec<Registration>)>> + Send {
        let _ = instance;
        async { None }
    }

    /// Forget the plain mark of `instance` (its registrations were put back).
    fn drop_plain_mark(&self, instance: &str) -> impl Future<Output = ()> + Send {
        let _ = instance;
        async {}
    }

    /// Every plain instance's kept mark, with its registrations (for the sweep's backstop).
    fn plain_marks(
        &self,
    ) -> impl Future<Output = Vec<(String, DrainMark, Vec<Registration>)>> + Send {
        async { Vec::new() }
    }

    /// `ci` (as an event described it) with any mark kept elsewhere than its attributes read
    /// in ([`crate::kept_marks::Marked`]); as it is by default.
    fn with_kept_mark(
        &self,
        ci: ContainerInstance,
    ) -> impl Future<Output = ContainerInstance> + Send {
        async move { ci }
    }

    /// Undo a drain of ours: set ACTIVE (`UpdateContainerInstancesState`), then remove the mark
    /// (`DeleteAttributes`). Either step already done is not an error.
    fn activate(&self, ci: &ContainerInstance)
    -> impl Future<Output = Result<(), AwsError>> + Send;

    /// The container instances of `cluster` carrying our drain mark (`ListAttributes`), by ARN.
    fn marked(&self, cluster: &str) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// Every task on the container instance with desired status `desired` (`RUNNING` or
    /// `STOPPED`): all pages of `ListTasks`, described.
    fn tasks_on(
        &self,
        cluster: &str,
        container_instance: &str,
        desired: &str,
    ) -> impl Future<Output = Result<Vec<Task>, AwsError>> + Send;

    /// The latest `limit` events of each service (`DescribeServices`).
    fn service_events(
        &self,
        cluster: &str,
        services: &[String],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, Vec<String>)>, AwsError>> + Send;
}

/// Services, deployments, task definitions and stopped tasks (ECS).
pub trait Services: Clone + Send + Sync + 'static {
    fn service(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<Option<Service>, AwsError>> + Send;

    fn task_definition(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<TaskDefinition, AwsError>> + Send;

    /// The service's stopped tasks ECS still lists (about an hour), at most `max_pages` pages.
    fn stopped_tasks_of_service(
        &self,
        cluster: &str,
        service: &str,
        max_pages: usize,
    ) -> impl Future<Output = Result<Vec<Task>, AwsError>> + Send;
}

// ---------------------------------------------------------------------------------------------
// Elastic Load Balancing v2

/// One registration of an instance in a target group (an instance can be registered on several
/// ports, as ECS bridge-mode tasks are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub target_group_arn: String,
    pub port: Option<i32>,
    /// `initial`, `healthy`, `unhealthy`, `draining`, `unused`, …
    pub state: String,
}

/// Target groups: where an instance is registered, and deregistering it.
pub trait TargetGroups: Clone + Send + Sync + 'static {
    /// The instance's registrations in the target group, `unused` left out (`DescribeTargetHealth`).
    fn registrations(
        &self,
        target_group_arn: &str,
        instance_id: &str,
    ) -> impl Future<Output = Result<Vec<Registration>, AwsError>> + Send;

    /// Every registration of the target group that is not `unused`, by instance id.
    fn target_group_registrations(
        &self,
        target_group_arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<Registration>>, AwsError>> + Send;

    /// `DeregisterTargets`, one call per target group; a target already gone is not an error.
    fn deregister(
        &self,
        instance_id: &str,
        regs: &[Registration],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// `RegisterTargets`, one call per target group; registering again is not an error.
    fn register(
        &self,
        instance_id: &str,
        regs: &[Registration],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

// ---------------------------------------------------------------------------------------------
// Auto Scaling

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupInstance {
    pub instance_id: String,
    pub auto_scaling_group_name: String,
    pub availability_zone: Option<String>,
    pub instance_type: Option<String>,
    /// `InService`, `Terminating:Wait`, `Pending:Wait`, …
    pub lifecycle_state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub target_group_arns: Vec<String>,
}

/// A group with its instances and their lifecycle states (for the sweep), those of its warm pool
/// included (`Warmed:*` states).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDetail {
    pub group: Group,
    pub instances: Vec<GroupInstance>,
}

/// `CONTINUE` or `ABANDON`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleActionResult {
    Continue,
    Abandon,
}

impl LifecycleActionResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleActionResult::Continue => "CONTINUE",
            LifecycleActionResult::Abandon => "ABANDON",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "CONTINUE" => Some(Self::Continue),
            "ABANDON" => Some(Self::Abandon),
            _ => None,
        }
    }
}

impl fmt::Display for LifecycleActionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `CompleteLifecycleAction` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Completed,
    /// "No active Lifecycle Action found": completed before (by us, a retry, or a timeout).
    AlreadyComplete,
}

/// A lifecycle hook of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleHook {
    pub name: String,
    /// `autoscaling:EC2_INSTANCE_LAUNCHING` or `…_TERMINATING`.
    pub transition: String,
    pub heartbeat_timeout_secs: i64,
    pub default_result: String,
    pub notification_metadata: Option<String>,
}

impl LifecycleHook {
    pub fn is_terminating(&self) -> bool {
        self.transition.ends_with("TERMINATING")
    }
}

/// Auto Scaling groups, their instances, hooks and lifecycle actions.
pub trait AutoScalingGroups: Clone + Send + Sync + 'static {
    /// The instance's group (`DescribeAutoScalingInstances`), `None` when in no group.
    fn instance(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = Result<Option<GroupInstance>, AwsError>> + Send;

    /// One group's tags and target groups (`DescribeAutoScalingGroups`).
    fn group(&self, name: &str) -> impl Future<Output = Result<Option<Group>, AwsError>> + Send;

    /// The named groups, or every group carrying `tag` (key, and value when given), or every
    /// group: all pages, each with its instances' lifecycle states.
    fn groups(
        &self,
        names: &[String],
        tag: Option<(&str, Option<&str>)>,
    ) -> impl Future<Output = Result<Vec<GroupDetail>, AwsError>> + Send;

    /// `DescribeLifecycleHooks`.
    fn hooks(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<LifecycleHook>, AwsError>> + Send;

    /// `CompleteLifecycleAction`, by the action's token when the caller has it (an event's: so a
    /// stale, retried event can never complete a later action of the same instance), else by
    /// instance id; "already complete" (or another action's token) is `AlreadyComplete`.
    fn complete(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
        token: Option<&str>,
        result: LifecycleActionResult,
    ) -> impl Future<Output = Result<Completion, AwsError>> + Send;

    /// `RecordLifecycleActionHeartbeat`; `false` when no action is pending any more.
    fn heartbeat(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;

    /// `TerminateInstanceInAutoScalingGroup` without decrementing the desired capacity, so the
    /// group launches a replacement (and its terminate hook drains the instance). An instance
    /// already terminating, or no longer in a group, is `false`.
    fn terminate_and_replace(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;

    /// When each instance's launch (`false`) or termination (`true`) started, from the group's
    /// scaling activities (`DescribeScalingActivities`), epoch seconds.
    fn activity_start_times(
        &self,
        group: &str,
        wanted: &[(String, bool)],
        max_pages: usize,
    ) -> impl Future<Output = Result<BTreeMap<String, i64>, AwsError>> + Send;
}

// ---------------------------------------------------------------------------------------------
// EventBridge Scheduler

/// A one-time schedule (`at(…)`, UTC) that invokes the function with `input`, and is deleted
/// after it ran. Its name is derived from what it is for, so writing it twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeSchedule {
    pub name: String,
    /// When it runs, epoch seconds (whole seconds: `at()` has no finer grain).
    pub at: i64,
    /// The payload the function is invoked with (JSON).
    pub input: String,
    pub description: String,
}

impl OneTimeSchedule {
    /// `at(yyyy-mm-ddThh:mm:ss)`, read in UTC.
    pub fn expression(&self) -> String {
        let t = chrono::DateTime::from_timestamp(self.at, 0).unwrap_or_default();
        format!("at({})", t.format("%Y-%m-%dT%H:%M:%S"))
    }

    /// The time of an `at(…)` expression back.
    pub fn parse_expression(e: &str) -> Option<i64> {
        let inner = e.trim().strip_prefix("at(")?.strip_suffix(')')?;
        chrono::NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|t| t.and_utc().timestamp())
    }
}

/// What writing a schedule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleWrite {
    Created,
    /// It existed with another time or payload: moved.
    Updated,
    /// It existed as it is.
    Unchanged,
}

/// One-time schedules (EventBridge Scheduler), in the function's schedule group, invoking the
/// function through the scheduler's role.
pub trait Schedules: Clone + Send + Sync + 'static {
    /// `GetSchedule`; `None` when there is none (never created, ran and deleted, or deleted).
    fn schedule(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<OneTimeSchedule>, AwsError>> + Send;

    /// `CreateSchedule`; when one of that name exists, `UpdateSchedule` if its time or payload
    /// differ.
    fn put(
        &self,
        schedule: &OneTimeSchedule,
    ) -> impl Future<Output = Result<ScheduleWrite, AwsError>> + Send;

    /// `DeleteSchedule`; `false` when there was none.
    fn delete(&self, name: &str) -> impl Future<Output = Result<bool, AwsError>> + Send;
}

// ---------------------------------------------------------------------------------------------
// Time

/// The time, as the functions read it: the system clock in Lambda, a virtual one in the fleet
/// simulator (so timers, jitter and budgets can be driven deterministically).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

// ---------------------------------------------------------------------------------------------
// Notification delivery

/// The notification pipeline as the handlers see it (`crate::notify::Notifier` for Lambda).
pub trait Notify: Send + Sync + 'static {
    /// Route `n` and deliver it to every destination that does not have it yet.
    fn send(
        &self,
        n: Notification,
        deadline: Deadline,
    ) -> impl Future<Output = Result<DeliveryReport, DeliveryError>> + Send;

    /// Leave a fact for a later event (not a message). A no-op without a dedupe table.
    fn remember(&self, fact: &str, ttl: std::time::Duration) -> impl Future<Output = ()> + Send;

    /// Whether `remember` left this fact.
    fn remembered(&self, fact: &str) -> impl Future<Output = bool> + Send;

    /// Forget a fact `remember` left (it no longer holds).
    fn forget(&self, fact: &str) -> impl Future<Output = ()> + Send;

    /// The latest version [`Notify::keep_version`] recorded under `key`, with its label. `None`
    /// when nothing is recorded, or it cannot be read (then the caller acts: at least once).
    fn version(&self, key: &str) -> impl Future<Output = Option<(i64, String)>> + Send;

    /// Record `version` (labelled) under `key` unless a later version is recorded; true when
    /// recorded. A no-op (true) when it cannot be written.
    fn keep_version(
        &self,
        key: &str,
        version: i64,
        label: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = bool> + Send;

    /// Keep `n` under `key` before the action it announces (completing a lifecycle action),
    /// so a retry that finds the action done can still send it: in the dedupe table, or in
    /// this execution environment's memory without one. What is kept already stays: it is the
    /// message of the completion that happened. True when `n` was kept now.
    fn stash(&self, key: &str, n: &Notification) -> impl Future<Output = bool> + Send;

    /// The notification kept under `key`, if any.
    fn stashed(&self, key: &str) -> impl Future<Output = Option<Notification>> + Send;

    /// Forget `key`: its notification was delivered, or its action never happened.
    fn unstash(&self, key: &str) -> impl Future<Output = ()> + Send;

    /// Every key with a notification still stashed (for the sweep, whose retry cannot know
    /// which instances its failed run completed).
    fn stashed_keys(&self) -> impl Future<Output = Vec<String>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_clusters_every_none_or_named() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(configured_clusters(&[]), None);
        assert_eq!(configured_clusters(&s(&["none"])), Some(vec![]));
        assert_eq!(
            configured_clusters(&s(&["prod", "gpu"])),
            Some(s(&["prod", "gpu"]))
        );
    }
}
