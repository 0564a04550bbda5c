//! `asg-lifecycle`'s settings, and which groups and hooks are ours.

use fleetguard::config::{ConfigError, NameRule, parse_names};
use fleetguard::out_of_service::Scope;
use fleetguard::ports::{Group, LifecycleActionResult};

/// The hook ECS creates for managed instance draining: ECS owns it, we never complete it.
pub const ECS_MANAGED_DRAINING_HOOK: &str = "ecs-managed-draining-termination-hook";

/// The hooks the Terraform module creates (`<name_prefix>-drain`, `<name_prefix>-join`) with its
/// default prefix: what `LIFECYCLE_HOOKS` means when unset.
pub const DEFAULT_HOOKS: [&str; 2] = ["fleetguard-drain", "fleetguard-join"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// `ECS_CLUSTERS`, `TARGET_GROUP_ARNS`, and the managed groups by name
    /// (`AUTO_SCALING_GROUPS`) and by tag (`MANAGED_ASG_TAG`): as every function that drains
    /// reads them.
    pub scope: Scope,
    /// `LIFECYCLE_HOOKS`: the hooks fleetguard completes, by name; unset, the two the Terraform
    /// module creates with its default prefix ([`DEFAULT_HOOKS`]). Never every hook: another
    /// tool's hook (CodeDeploy's, a bootstrap script's) is not ours to complete.
    pub hooks: Vec<String>,
    pub max_drain_secs: i64,
    pub drain_timeout_result: LifecycleActionResult,
    pub launch_timeout_secs: i64,
    pub launch_timeout_result: LifecycleActionResult,
    /// `REBALANCE_UNDO_SECONDS`: how long a drain for a rebalance recommendation is held when no
    /// interruption follows, before the container instance is set ACTIVE again.
    pub rebalance_undo_secs: i64,
    /// `LAUNCH_FAILURE_WINDOW_SECONDS`: one message per group about failed launches in this
    /// long (with `DEDUPE_TABLE`; without it, every failure is announced).
    pub launch_failure_window_secs: i64,
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
                    fleetguard::text::shown(s, 40)
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
                fleetguard::text::shown(s, 40)
            ),
        }),
    }
}

impl LifecycleConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // 48 h is the longest any lifecycle action can be held.
        const MAX: i64 = 48 * 3600;
        Ok(Self {
            scope: Scope::from_lookup(&lookup)?,
            hooks: match parse_names("LIFECYCLE_HOOKS", NameRule::Hook, lookup("LIFECYCLE_HOOKS"))?
            {
                h if h.is_empty() => DEFAULT_HOOKS.iter().map(|h| (*h).to_owned()).collect(),
                h => h,
            },
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
            rebalance_undo_secs: seconds(
                "REBALANCE_UNDO_SECONDS",
                lookup("REBALANCE_UNDO_SECONDS"),
                3600,
                MAX,
            )?,
            launch_failure_window_secs: seconds(
                "LAUNCH_FAILURE_WINDOW_SECONDS",
                lookup("LAUNCH_FAILURE_WINDOW_SECONDS"),
                3600,
                MAX,
            )?,
        })
    }

    /// Whether fleetguard manages this group: in `AUTO_SCALING_GROUPS` (when set) and carrying
    /// `MANAGED_ASG_TAG` (when set). With neither, every group whose events reach the function.
    pub fn manages(&self, group: &Group) -> bool {
        self.scope.refuses_group(&group.name, &group.tags).is_none()
    }

    /// Whether the hook is ours to complete. ECS's managed-draining hook never is.
    pub fn owns_hook(&self, name: &str) -> bool {
        name != ECS_MANAGED_DRAINING_HOOK && self.hooks.iter().any(|h| h == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LifecycleConfig {
        LifecycleConfig::from_lookup(|_| None).unwrap()
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
}
