//! `instance-maintenance`'s settings: `MAINTENANCE_ACTION`, `MAINTENANCE_LEAD_SECONDS`,
//! `SCHEDULER_ROLE_ARN`, `SCHEDULE_TARGET_ARN`, `SCHEDULE_GROUP`, and the scope every function
//! that takes instances out of service shares (`ECS_CLUSTERS`, `TARGET_GROUP_ARNS`,
//! `MANAGED_ASG_TAG`), and `LIFECYCLE_HOOKS` (asg-lifecycle's hooks: `replace` needs one).

use fleetguard::config::{ConfigError, NameRule, parse_arn, parse_checked, parse_names};
use fleetguard::out_of_service::Scope;

/// What is done about an instance AWS will retire, stop or reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceAction {
    /// Tell people; change nothing.
    Notify,
    /// Take it out of service before the window: container instance DRAINING, deregistered
    /// from its target groups.
    Drain,
    /// For an instance in an Auto Scaling group: drain it, then
    /// `TerminateInstanceInAutoScalingGroup` with the desired capacity kept, so the group
    /// launches a replacement before AWS takes the instance. Outside a group, and for reboots
    /// (the instance comes back), the same as `Drain`.
    Replace,
}

impl MaintenanceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Drain => "drain",
            Self::Replace => "replace",
        }
    }
}

/// The default lead: half an hour before the window, long enough for most drains.
pub const DEFAULT_LEAD_SECS: i64 = 1800;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceConfig {
    pub scope: Scope,
    pub action: MaintenanceAction,
    pub lead_secs: i64,
    /// The role EventBridge Scheduler assumes to invoke the function (required unless
    /// `MAINTENANCE_ACTION=notify`).
    pub scheduler_role_arn: Option<String>,
    /// The function's own ARN, the schedules' target (required unless `notify`).
    pub schedule_target_arn: Option<String>,
    /// `SCHEDULE_GROUP`, `default` when unset (Scheduler's rule: 1 to 64 of `0-9a-zA-Z-_.`).
    pub schedule_group: String,
    /// `FAILED_EVENTS_QUEUE_ARN`: the schedules' dead-letter queue (an SQS ARN), if any.
    pub failed_events_queue_arn: Option<String>,
    /// `LIFECYCLE_HOOKS`: the hooks `asg-lifecycle` drains under, as it reads them (unset, the
    /// module's two defaults; `none` when asg-lifecycle is not deployed). An instance is replaced
    /// through its group only when a terminate hook of these holds it until it is drained.
    pub hooks: Vec<String>,
}

/// `LIFECYCLE_HOOKS=none`: no hook is ours (asg-lifecycle is not deployed).
pub const NO_HOOKS: &str = "none";

/// The module's hook names with its default prefix, as asg-lifecycle reads an unset
/// `LIFECYCLE_HOOKS`.
pub const DEFAULT_HOOKS: [&str; 2] = ["fleetguard-drain", "fleetguard-join"];

impl MaintenanceConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let action = match get("MAINTENANCE_ACTION")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("replace") => MaintenanceAction::Replace,
            Some("drain") => MaintenanceAction::Drain,
            Some("notify") => MaintenanceAction::Notify,
            Some(other) => {
                return Err(ConfigError {
                    variable: "MAINTENANCE_ACTION",
                    message: format!(
                        "expected notify, drain or replace, got {:?}",
                        fleetguard::text::shown(other, 40)
                    ),
                });
            }
        };
        let lead_secs = match get("MAINTENANCE_LEAD_SECONDS") {
            None => DEFAULT_LEAD_SECS,
            Some(v) => match v.parse::<i64>() {
                // A week at most: Health announces most windows about two weeks ahead.
                Ok(n) if (60..=7 * 86_400).contains(&n) => n,
                _ => {
                    return Err(ConfigError {
                        variable: "MAINTENANCE_LEAD_SECONDS",
                        message: format!(
                            "expected whole seconds from 60 to 604800, got {:?}",
                            fleetguard::text::shown(&v, 40)
                        ),
                    });
                }
            },
        };
        let scheduler_role_arn = get("SCHEDULER_ROLE_ARN");
        let schedule_target_arn = get("SCHEDULE_TARGET_ARN");
        if action != MaintenanceAction::Notify {
            for (variable, v, what) in [
                ("SCHEDULER_ROLE_ARN", &scheduler_role_arn, ":role/"),
                ("SCHEDULE_TARGET_ARN", &schedule_target_arn, ":function:"),
            ] {
                match v {
                    Some(a) if a.starts_with("arn:") && a.contains(what) => {}
                    Some(a) => {
                        return Err(ConfigError {
                            variable,
                            message: format!(
                                "not an ARN with {what}: {:?}",
                                fleetguard::text::shown(a, 80)
                            ),
                        });
                    }
                    None => {
                        return Err(ConfigError {
                            variable,
                            message: format!(
                                "required with MAINTENANCE_ACTION={}: the one-time schedules need it",
                                action.as_str()
                            ),
                        });
                    }
                }
            }
        }
        Ok(Self {
            scope: Scope::from_lookup(&lookup)?,
            action,
            lead_secs,
            scheduler_role_arn,
            schedule_target_arn,
            schedule_group: schedule_group(get("SCHEDULE_GROUP"))?,
            failed_events_queue_arn: parse_arn(
                "FAILED_EVENTS_QUEUE_ARN",
                "sqs",
                lookup("FAILED_EVENTS_QUEUE_ARN"),
            )?,
            hooks: match parse_names("LIFECYCLE_HOOKS", NameRule::Hook, lookup("LIFECYCLE_HOOKS"))?
            {
                h if h.is_empty() => DEFAULT_HOOKS.iter().map(|h| (*h).to_owned()).collect(),
                h if h == [NO_HOOKS] => Vec::new(),
                h => h,
            },
        })
    }
}

/// `SCHEDULE_GROUP` as EventBridge Scheduler names groups: 1 to 64 of `0-9a-zA-Z-_.`.
fn schedule_group(value: Option<String>) -> Result<String, ConfigError> {
    let group = parse_checked(
        "SCHEDULE_GROUP",
        value,
        |g| {
            g.len() <= 64
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        },
        "1 to 64 of 0-9 a-z A-Z - _ .",
    )?;
    Ok(group.unwrap_or_else(|| "default".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/fg-scheduler";
    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:fg-instance-maintenance";

    #[test]
    fn defaults_and_validation() {
        let ok = MaintenanceConfig::from_lookup(fleetguard::config::lookup_in(&[
            ("SCHEDULER_ROLE_ARN", ROLE),
            ("SCHEDULE_TARGET_ARN", FUNCTION),
        ]))
        .unwrap();
        assert_eq!(ok.action, MaintenanceAction::Replace);
        assert_eq!(ok.lead_secs, 1800);
        assert_eq!(ok.schedule_group, "default");
        // Scheduling needs the role and the target; notifying does not.
        let e = MaintenanceConfig::from_lookup(|_| None).unwrap_err();
        assert_eq!(e.variable, "SCHEDULER_ROLE_ARN");
        let notify = MaintenanceConfig::from_lookup(fleetguard::config::lookup_in(&[(
            "MAINTENANCE_ACTION",
            "Notify",
        )]))
        .unwrap();
        assert_eq!(notify.action, MaintenanceAction::Notify);
        for (k, v) in [
            ("MAINTENANCE_ACTION", "stop"),
            ("MAINTENANCE_LEAD_SECONDS", "10"),
            ("MAINTENANCE_LEAD_SECONDS", "half an hour"),
            ("SCHEDULE_TARGET_ARN", "instance-maintenance"),
        ] {
            let pairs = [
                ("SCHEDULER_ROLE_ARN", ROLE),
                ("SCHEDULE_TARGET_ARN", FUNCTION),
                (k, v),
            ];
            let lookup = |key: &str| {
                pairs
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == key)
                    .map(|(_, v)| (*v).to_owned())
            };
            assert_eq!(
                MaintenanceConfig::from_lookup(lookup).unwrap_err().variable,
                k
            );
        }
    }
}
