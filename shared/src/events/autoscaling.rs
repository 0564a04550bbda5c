//! `aws.autoscaling` lifecycle actions, in their EventBridge form and their SNS/SQS
//! notification-body form, and the `autoscaling:TEST_NOTIFICATION` sent when a hook is created.

use crate::ids::{AutoScalingGroupName, InstanceId, LifecycleActionToken};
use serde::{Deserialize, Serialize};
use serde_json::Value;

crate::open_enum!(
    LifecycleTransition {
        Launching = "autoscaling:EC2_INSTANCE_LAUNCHING",
        Terminating = "autoscaling:EC2_INSTANCE_TERMINATING",
    }
);

crate::open_enum!(
    /// Where a warm-pool instance comes from or goes to (`Origin`, `Destination`).
    WarmPoolLocation {
        Ec2 = "EC2",
        AutoScalingGroup = "AutoScalingGroup",
        WarmPool = "WarmPool",
    }
);

/// A pending lifecycle action: the instance waits in `Pending:Wait` or `Terminating:Wait`
/// until it is completed or its heartbeat times out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleAction {
    #[serde(rename = "LifecycleActionToken")]
    pub token: LifecycleActionToken,
    #[serde(rename = "AutoScalingGroupName")]
    pub auto_scaling_group_name: AutoScalingGroupName,
    #[serde(rename = "LifecycleHookName")]
    pub lifecycle_hook_name: String,
    #[serde(rename = "EC2InstanceId")]
    pub instance_id: InstanceId,
    #[serde(rename = "LifecycleTransition")]
    pub transition: LifecycleTransition,
    #[serde(rename = "NotificationMetadata", default)]
    pub notification_metadata: NotificationMetadata,
    #[serde(rename = "Origin", default)]
    pub origin: Option<WarmPoolLocation>,
    #[serde(rename = "Destination", default)]
    pub destination: Option<WarmPoolLocation>,
}

impl LifecycleAction {
    /// A transition into the warm pool, rather than into or out of service.
    pub fn is_into_warm_pool(&self) -> bool {
        self.destination == Some(WarmPoolLocation::WarmPool)
    }
}

/// The hook's `NotificationMetadata`: free text set on the hook. Kept raw, and parsed when it is
/// a JSON object (users put settings such as the ECS cluster there).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct NotificationMetadata {
    pub raw: Option<String>,
    pub json: Option<serde_json::Map<String, Value>>,
}

impl<'de> Deserialize<'de> for NotificationMetadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => {
                let json = match serde_json::from_str::<Value>(&s) {
                    Ok(Value::Object(m)) => Some(m),
                    _ => None,
                };
                NotificationMetadata { raw: Some(s), json }
            }
            Value::Null => NotificationMetadata::default(),
            // Already an object (hand-written test events): keep both forms.
            Value::Object(m) => NotificationMetadata {
                raw: Some(Value::Object(m.clone()).to_string()),
                json: Some(m),
            },
            other => NotificationMetadata {
                raw: Some(other.to_string()),
                json: None,
            },
        })
    }
}

/// `autoscaling:TEST_NOTIFICATION`, sent once to a hook's SNS/SQS target when the hook is
/// created. Recognised so that it is acknowledged and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestNotification {
    #[serde(rename = "AutoScalingGroupName", default)]
    pub auto_scaling_group_name: Option<String>,
    #[serde(rename = "RequestId", default)]
    pub request_id: Option<String>,
}

/// `EC2 Instance Launch Unsuccessful`: the group could not launch an instance (no capacity in
/// a pool, a bad launch template, a quota). Lenient: only the group is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchUnsuccessful {
    #[serde(rename = "AutoScalingGroupName")]
    pub auto_scaling_group_name: AutoScalingGroupName,
    #[serde(
        rename = "StatusMessage",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    pub status_message: Option<String>,
    #[serde(
        rename = "Cause",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    pub cause: Option<String>,
    #[serde(
        rename = "ActivityId",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    pub activity_id: Option<String>,
    #[serde(
        rename = "Description",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    pub description: Option<String>,
    #[serde(rename = "Details", default)]
    pub details: Option<Value>,
}

impl LaunchUnsuccessful {
    fn detail(&self, key: &str) -> Option<&str> {
        self.details.as_ref()?.get(key)?.as_str()
    }

    pub fn availability_zone(&self) -> Option<&str> {
        self.detail("Availability Zone")
    }

    pub fn subnet_id(&self) -> Option<&str> {
        self.detail("Subnet ID")
    }
}

/// An instance refresh event: `EC2 Auto Scaling Instance Refresh <status>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRefresh {
    #[serde(rename = "AutoScalingGroupName")]
    pub auto_scaling_group_name: AutoScalingGroupName,
    #[serde(
        rename = "InstanceRefreshId",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    pub instance_refresh_id: Option<String>,
    /// What the detail-type says after `EC2 Auto Scaling Instance Refresh `: `Failed`,
    /// `Cancelled`, `Started`, a rollback's, …
    #[serde(skip_deserializing, default)]
    pub status: String,
}

impl InstanceRefresh {
    /// Failed, cancelled or rolled back: worth a message. Started, succeeded and checkpoints
    /// are acknowledged.
    pub fn went_wrong(&self) -> bool {
        let s = self.status.to_ascii_lowercase();
        s.contains("fail") || s.contains("cancel") || s.contains("rollback")
    }
}
