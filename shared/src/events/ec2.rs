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
