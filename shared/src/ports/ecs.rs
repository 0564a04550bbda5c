//! ECS: container instances, tasks, services.

use super::*;

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
