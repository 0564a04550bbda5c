//! `aws.ec2` events: the Spot two-minute warning and the rebalance recommendation.

use crate::ids::InstanceId;
use serde::{Deserialize, Serialize};

crate::open_enum!(
    /// What EC2 will do to the Spot instance (`instance-action`).
    InstanceAction {
        Terminate = "terminate",
        Stop = "stop",
        Hibernate = "hibernate",
    }
);

/// `EC2 Spot Instance Interruption Warning`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotInterruptionWarning {
    #[serde(rename = "instance-id")]
    pub instance_id: InstanceId,
    /// Missing in no real event; defaults to terminate, the most common and the safest to assume.
    #[serde(rename = "instance-action", default = "default_action")]
    pub instance_action: InstanceAction,
}

fn default_action() -> InstanceAction {
    InstanceAction::Terminate
}

/// `EC2 Instance Rebalance Recommendation`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebalanceRecommendation {
    #[serde(rename = "instance-id")]
    pub instance_id: InstanceId,
}

crate::open_enum!(
    /// An instance's state (`EC2 Instance State-change Notification`).
    InstanceState {
        Pending = "pending",
        Running = "running",
        Stopping = "stopping",
        Stopped = "stopped",
        ShuttingDown = "shutting-down",
        Terminated = "terminated",
    }
);

/// `EC2 Instance State-change Notification`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStateChange {
    #[serde(rename = "instance-id")]
    pub instance_id: InstanceId,
    pub state: InstanceState,
}

impl InstanceStateChange {
    /// On its way out: stopping, or shutting down before termination.
    pub fn is_going_away(&self) -> bool {
        matches!(
            self.state,
            InstanceState::Stopping | InstanceState::ShuttingDown
        )
    }
}
