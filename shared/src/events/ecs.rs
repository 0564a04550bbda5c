//! `aws.ecs` events: deployment state changes, service actions, task and container-instance
//! state changes.

use crate::events::lenient;
use crate::ids::{Arn, EcsServiceRef, InstanceId};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};

crate::open_enum!(
    /// `eventType` of deployment and service-action events.
    EcsEventType {
        Info = "INFO",
        Warn = "WARN",
        Error = "ERROR",
    }
);

crate::open_enum!(
    DeploymentEventName {
        InProgress = "SERVICE_DEPLOYMENT_IN_PROGRESS",
        Completed = "SERVICE_DEPLOYMENT_COMPLETED",
        Failed = "SERVICE_DEPLOYMENT_FAILED",
    }
);

crate::open_enum!(
    /// The list keeps growing; unknown names are kept.
    ServiceActionName {
        SteadyState = "SERVICE_STEADY_STATE",
        TaskStartImpaired = "SERVICE_TASK_START_IMPAIRED",
        DiscoveryInstanceUnhealthy = "SERVICE_DISCOVERY_INSTANCE_UNHEALTHY",
        CapacityProviderSteadyState = "CAPACITY_PROVIDER_STEADY_STATE",
        TaskPlacementFailure = "SERVICE_TASK_PLACEMENT_FAILURE",
        TaskConfigurationFailure = "SERVICE_TASK_CONFIGURATION_FAILURE",
        DaemonPlacementConstraintViolated = "SERVICE_DAEMON_PLACEMENT_CONSTRAINT_VIOLATED",
        EcsOperationThrottled = "ECS_OPERATION_THROTTLED",
        ServiceDiscoveryOperationThrottled = "SERVICE_DISCOVERY_OPERATION_THROTTLED",
        TasksStopped = "SERVICE_TASKS_STOPPED",
    }
);

crate::open_enum!(
    TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
        Deleted = "DELETED",
    }
);

crate::open_enum!(
    StopCode {
        TaskFailedToStart = "TaskFailedToStart",
        EssentialContainerExited = "EssentialContainerExited",
        UserInitiated = "UserInitiated",
        ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
        SpotInterruption = "SpotInterruption",
        TerminationNotice = "TerminationNotice",
    }
);

crate::open_enum!(
    ContainerInstanceStatus {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Registering = "REGISTERING",
        Deregistering = "DEREGISTERING",
        RegistrationFailed = "REGISTRATION_FAILED",
        Inactive = "INACTIVE",
    }
);

/// `ECS Deployment State Change`. The service and cluster come from `resources[0]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentStateChange {
    pub service: EcsServiceRef,
    pub detail: DeploymentDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentDetail {
    pub event_type: EcsEventType,
    pub event_name: DeploymentEventName,
    pub deployment_id: String,
    #[serde(default)]
    pub updated_at: EventTime,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reason: Option<String>,
}

impl DeploymentDetail {
    /// The circuit breaker announces a rollback as an IN_PROGRESS event with this reason.
    pub fn is_rollback(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| r.contains("circuit breaker: rolling back"))
    }
}

/// `ECS Service Action`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceAction {
    pub service: EcsServiceRef,
    pub detail: ServiceActionDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceActionDetail {
    pub event_type: EcsEventType,
    pub event_name: ServiceActionName,
    #[serde(default)]
    pub cluster_arn: Option<Arn>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub container_instance_arns: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub capacity_provider_arns: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub task_arns: Vec<String>,
    #[serde(default)]
    pub created_at: EventTime,
}

/// `ECS Task State Change`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    pub task_arn: Arn,
    pub cluster_arn: Arn,
    #[serde(default)]
    pub container_instance_arn: Option<Arn>,
    #[serde(default)]
    pub task_definition_arn: Option<Arn>,
    pub last_status: TaskStatus,
    #[serde(default)]
    pub desired_status: Option<TaskStatus>,
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub stopped_reason: Option<String>,
    /// For service tasks, the deployment id (`ecs-svc/…`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub started_by: Option<String>,
    /// `service:<name>` for service tasks, `family:<name>` for standalone ones.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub group: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub launch_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub capacity_provider_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub stopped_at: EventTime,
    #[serde(default)]
    pub updated_at: EventTime,
    /// Per-task version: orders out-of-order deliveries for the same task.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub version: Option<i64>,
}

impl TaskStateChange {
    /// The service name when the task belongs to one (`group` = `service:<name>`).
    pub fn service_name(&self) -> Option<&str> {
        self.group.as_deref()?.strip_prefix("service:")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub image: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub last_status: Option<String>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub exit_code: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reason: Option<String>,
}

/// `ECS Container Instance State Change`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceStateChange {
    pub container_instance_arn: Arn,
    pub cluster_arn: Arn,
    /// Absent for external (ECS Anywhere) instances.
    #[serde(default)]
    pub ec2_instance_id: Option<InstanceId>,
    pub status: ContainerInstanceStatus,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub agent_connected: Option<bool>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub running_tasks_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub pending_tasks_count: Option<i64>,
    #[serde(default)]
    pub updated_at: EventTime,
    /// Per-container-instance version: orders out-of-order deliveries.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub version: Option<i64>,
    /// When the container instance registered with its cluster.
    #[serde(default)]
    pub registered_at: EventTime,
    /// `[{"name": …, "value": …}]`, kept as sent: only fleetguard's drain mark is read from it,
    /// and an odd shape elsewhere must not reject the event.
    #[serde(default)]
    pub attributes: serde_json::Value,
}

impl ContainerInstanceStateChange {
    /// The value of the attribute `name`, when the event carries it.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .as_array()?
            .iter()
            .find(|a| a.get("name").and_then(|n| n.as_str()) == Some(name))?
            .get("value")?
            .as_str()
    }
}
