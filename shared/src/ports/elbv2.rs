//! Elastic Load Balancing v2: target group registrations.

use super::*;

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
