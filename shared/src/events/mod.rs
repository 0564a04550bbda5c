//! One parse entry, from the raw bytes Lambda hands over to a typed [`Event`].
//!
//! Lenient where AWS is loose (unknown fields, missing optional fields, new names, documentation
//! placeholders), strict where a mistake would act on the wrong thing (instance ids, tokens,
//! ARNs). Errors name the JSON path of the field at fault. Nothing here panics on any input.

pub mod alarm;
pub mod autoscaling;
pub mod ec2;
pub mod ecs;
pub mod envelope;
pub mod health;
pub mod lenient;
mod open_enum;
mod parse;

pub use alarm::{AlarmKind, AlarmStateChange, AlarmStateValue};
pub use autoscaling::{
    InstanceRefresh, LaunchUnsuccessful, LifecycleAction, LifecycleTransition, TestNotification,
    WarmPoolLocation,
};
pub use ec2::{
    InstanceAction, InstanceState, InstanceStateChange, RebalanceRecommendation,
    SpotInterruptionWarning,
};
pub use ecs::{
    ContainerInstanceStateChange, DeploymentStateChange, ServiceAction, TaskStateChange,
};
pub use envelope::{Envelope, Ingress};
pub use health::{HealthEvent, MaintenanceDue, MaintenanceKind, MaintenanceStep, TargetRef};
pub use parse::{parse_event, parse_value};

use crate::ids::{Arn, EcsServiceRef, InstanceId};
use crate::text::excerpt;
use crate::time::EventTime;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;

pub const SPOT_INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";
pub const LAUNCH_LIFECYCLE_ACTION: &str = "EC2 Instance-launch Lifecycle Action";
pub const TERMINATE_LIFECYCLE_ACTION: &str = "EC2 Instance-terminate Lifecycle Action";
pub const DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";
pub const SERVICE_ACTION: &str = "ECS Service Action";
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
pub const CONTAINER_INSTANCE_STATE_CHANGE: &str = "ECS Container Instance State Change";
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
pub const ALARM_CONTRIBUTOR_STATE_CHANGE: &str = "CloudWatch Alarm Contributor State Change";
pub const ALARM_CONFIGURATION_CHANGE: &str = "CloudWatch Alarm Configuration Change";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
pub const HEALTH_EVENT: &str = "AWS Health Event";
pub const INSTANCE_STATE_CHANGE: &str = "EC2 Instance State-change Notification";
pub const LAUNCH_UNSUCCESSFUL: &str = "EC2 Instance Launch Unsuccessful";
pub const INSTANCE_REFRESH_PREFIX: &str = "EC2 Auto Scaling Instance Refresh ";
/// The detail-type of a one-time schedule's payload (`source` [`MAINTENANCE_SOURCE`]).
pub const SCHEDULED_MAINTENANCE: &str = "Scheduled Maintenance";
pub const MAINTENANCE_SOURCE: &str = "fleetguard";
const TEST_NOTIFICATION_EVENT: &str = "autoscaling:TEST_NOTIFICATION";

/// A parsed event: where it came from and what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub envelope: Envelope,
    pub ingress: Ingress,
    pub detail: Detail,
}

/// Every kind of event the suite consumes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail")]
pub enum Detail {
    SpotInterruptionWarning(SpotInterruptionWarning),
    RebalanceRecommendation(RebalanceRecommendation),
    LifecycleAction(LifecycleAction),
    /// Sent when a hook with an SNS/SQS target is created: acknowledged and ignored.
    AutoScalingTestNotification(TestNotification),
    DeploymentStateChange(DeploymentStateChange),
    ServiceAction(ServiceAction),
    TaskStateChange(Box<TaskStateChange>),
    ContainerInstanceStateChange(ContainerInstanceStateChange),
    AlarmStateChange(Box<AlarmStateChange>),
    AlarmContributorStateChange(Box<AlarmStateChange>),
    /// Alarm created/updated/deleted: acknowledged and ignored.
    AlarmConfigurationChange {
        alarm_name: Option<String>,
    },
    /// An EventBridge schedule (the lifecycle sweep). `rules` are the schedule rule ARNs.
    Scheduled {
        rules: Vec<String>,
    },
    /// `AWS Health Event` (an EC2 scheduled change is acted on; the rest acknowledged).
    HealthEvent(Box<HealthEvent>),
    /// `EC2 Instance State-change Notification`.
    InstanceStateChange(InstanceStateChange),
    /// `EC2 Instance Launch Unsuccessful`.
    LaunchUnsuccessful(LaunchUnsuccessful),
    /// `EC2 Auto Scaling Instance Refresh …`.
    InstanceRefresh(InstanceRefresh),
    /// A one-time schedule of `instance-maintenance` has come due.
    MaintenanceDue(Box<MaintenanceDue>),
    /// Anything else: acknowledged and logged, never retried.
    Unrecognised {
        source: String,
        detail_type: Option<String>,
    },
}

/// The variant's name, for logs, metrics and the sample-event manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    SpotInterruptionWarning,
    RebalanceRecommendation,
    LaunchLifecycleAction,
    TerminateLifecycleAction,
    OtherLifecycleAction,
    AutoScalingTestNotification,
    DeploymentStateChange,
    ServiceAction,
    TaskStateChange,
    ContainerInstanceStateChange,
    AlarmStateChange,
    AlarmContributorStateChange,
    AlarmConfigurationChange,
    Scheduled,
    HealthEvent,
    InstanceStateChange,
    LaunchUnsuccessful,
    InstanceRefresh,
    MaintenanceDue,
    Unrecognised,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SpotInterruptionWarning => "SpotInterruptionWarning",
            EventKind::RebalanceRecommendation => "RebalanceRecommendation",
            EventKind::LaunchLifecycleAction => "LaunchLifecycleAction",
            EventKind::TerminateLifecycleAction => "TerminateLifecycleAction",
            EventKind::OtherLifecycleAction => "OtherLifecycleAction",
            EventKind::AutoScalingTestNotification => "AutoScalingTestNotification",
            EventKind::DeploymentStateChange => "DeploymentStateChange",
            EventKind::ServiceAction => "ServiceAction",
            EventKind::TaskStateChange => "TaskStateChange",
            EventKind::ContainerInstanceStateChange => "ContainerInstanceStateChange",
            EventKind::AlarmStateChange => "AlarmStateChange",
            EventKind::AlarmContributorStateChange => "AlarmContributorStateChange",
            EventKind::AlarmConfigurationChange => "AlarmConfigurationChange",
            EventKind::Scheduled => "Scheduled",
            EventKind::HealthEvent => "HealthEvent",
            EventKind::InstanceStateChange => "InstanceStateChange",
            EventKind::LaunchUnsuccessful => "LaunchUnsuccessful",
            EventKind::InstanceRefresh => "InstanceRefresh",
            EventKind::MaintenanceDue => "MaintenanceDue",
            EventKind::Unrecognised => "Unrecognised",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Detail {
    pub fn kind(&self) -> EventKind {
        match self {
            Detail::SpotInterruptionWarning(_) => EventKind::SpotInterruptionWarning,
            Detail::RebalanceRecommendation(_) => EventKind::RebalanceRecommendation,
            Detail::LifecycleAction(a) => match a.transition {
                LifecycleTransition::Launching => EventKind::LaunchLifecycleAction,
                LifecycleTransition::Terminating => EventKind::TerminateLifecycleAction,
                LifecycleTransition::Other(_) => EventKind::OtherLifecycleAction,
            },
            Detail::AutoScalingTestNotification(_) => EventKind::AutoScalingTestNotification,
            Detail::DeploymentStateChange(_) => EventKind::DeploymentStateChange,
            Detail::ServiceAction(_) => EventKind::ServiceAction,
            Detail::TaskStateChange(_) => EventKind::TaskStateChange,
            Detail::ContainerInstanceStateChange(_) => EventKind::ContainerInstanceStateChange,
            Detail::AlarmStateChange(_) => EventKind::AlarmStateChange,
            Detail::AlarmContributorStateChange(_) => EventKind::AlarmContributorStateChange,
            Detail::AlarmConfigurationChange { .. } => EventKind::AlarmConfigurationChange,
            Detail::Scheduled { .. } => EventKind::Scheduled,
            Detail::HealthEvent(_) => EventKind::HealthEvent,
            Detail::InstanceStateChange(_) => EventKind::InstanceStateChange,
            Detail::LaunchUnsuccessful(_) => EventKind::LaunchUnsuccessful,
            Detail::InstanceRefresh(_) => EventKind::InstanceRefresh,
            Detail::MaintenanceDue(_) => EventKind::MaintenanceDue,
            Detail::Unrecognised { .. } => EventKind::Unrecognised,
        }
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.detail.kind()
    }

    /// The AWS resource the event is about, in AWS's words: an instance id, `cluster/service`,
    /// a task or container instance ARN, an alarm name.
    pub fn subject(&self) -> String {
        match &self.detail {
            Detail::SpotInterruptionWarning(d) => d.instance_id.to_string(),
            Detail::RebalanceRecommendation(d) => d.instance_id.to_string(),
            Detail::LifecycleAction(a) => {
                format!("{} in {}", a.instance_id, a.auto_scaling_group_name)
            }
            Detail::AutoScalingTestNotification(t) => {
                t.auto_scaling_group_name.clone().unwrap_or_default()
            }
            Detail::DeploymentStateChange(d) => service_subject(&d.service),
            Detail::ServiceAction(s) => service_subject(&s.service),
            Detail::TaskStateChange(t) => t.task_arn.to_string(),
            Detail::ContainerInstanceStateChange(c) => match &c.ec2_instance_id {
                Some(i) => format!("{} ({i})", c.container_instance_arn),
                None => c.container_instance_arn.to_string(),
            },
            Detail::AlarmStateChange(a) | Detail::AlarmContributorStateChange(a) => {
                a.alarm_name.clone()
            }
            Detail::AlarmConfigurationChange { alarm_name } => {
                alarm_name.clone().unwrap_or_default()
            }
            Detail::Scheduled { rules } => rules.first().cloned().unwrap_or_default(),
            Detail::HealthEvent(h) => {
                let ids: Vec<&str> = h.instances.iter().map(InstanceId::as_str).collect();
                if ids.is_empty() {
                    h.event_type_code.clone()
                } else {
                    format!("{} ({})", h.event_type_code, excerpt(&ids.join(", "), 200))
                }
            }
            Detail::InstanceStateChange(c) => format!("{} ({})", c.instance_id, c.state),
            Detail::LaunchUnsuccessful(l) => l.auto_scaling_group_name.to_string(),
            Detail::InstanceRefresh(r) => r.auto_scaling_group_name.to_string(),
            Detail::MaintenanceDue(m) => m.instance_id.to_string(),
            Detail::Unrecognised {
                source,
                detail_type,
            } => {
                format!(
                    "{source} / {}",
                    detail_type.as_deref().unwrap_or("(no detail-type)")
                )
            }
        }
    }
}

fn service_subject(s: &EcsServiceRef) -> String {
    match &s.cluster {
        Some(c) => format!("{c}/{}", s.service),
        None => s.service.clone(),
    }
}

/// Why an input could not be turned into an [`Event`]. One clear line, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    NotJson {
        line: usize,
        column: usize,
        message: String,
    },
    /// A JSON value, but not a shape any AWS source sends us.
    UnknownShape(String),
    /// A field is missing or invalid. `path` is a JSON path such as `detail.EC2InstanceId`.
    Field { path: String, message: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotJson {
                line,
                column,
                message,
            } => {
                write!(
                    f,
                    "input is not valid JSON (line {line}, column {column}): {message}"
                )
            }
            ParseError::UnknownShape(what) => write!(f, "unrecognised payload: {what}"),
            ParseError::Field { path, message } => write!(f, "invalid event: {path}: {message}"),
        }
    }
}

impl std::error::Error for ParseError {}
