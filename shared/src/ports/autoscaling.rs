//! Auto Scaling: groups, their instances, lifecycle hooks and actions.

use super::*;

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
