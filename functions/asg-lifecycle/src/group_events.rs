//! A group's own events: launches that failed (no capacity in a pool, a quota, a bad launch
//! template) and instance refreshes that failed, were cancelled or rolled back. One message
//! each; for failed launches, one per group in `LAUNCH_FAILURE_WINDOW_SECONDS`.

use crate::drain::{FleetSample, Handled, Lifecycle};
use fleetguard::events::{InstanceRefresh, LaunchUnsuccessful};
use fleetguard::notify::{Notification, NotificationKind, Severity, console_host, url_encode};
use fleetguard::observe::{FleetMetric, Pool};
use fleetguard::ports::{AutoScalingGroups, AwsError, ContainerInstances, Notify, TargetGroups};
use std::time::Duration;

/// What to do about a failed launch, from AWS's status message. Pure.
pub fn launch_advice(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("limit") || m.contains("quota") || m.contains("maxspotinstancecountexceeded") {
        "An account limit stopped the launch. Request a Service Quotas increase for this instance family (On-Demand or Spot vCPUs), or launch in another family."
    } else if m.contains("capacity") || m.contains("unfulfillable") {
        "The pool has no capacity for this instance type in this Availability Zone. Give the group more instance types (a mixed instances policy or attribute-based selection) and more Availability Zones, and prefer the price-capacity-optimized Spot allocation strategy."
    } else if m.contains("ami") || m.contains("launch template") || m.contains("invalid") {
        "The launch configuration is at fault. Check the launch template's AMI, instance profile, security groups and subnets."
    } else {
        "Check the group's activity history for the cause; the group keeps retrying."
    }
}

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// Whether the group is one we manage (by name and tag); looked up only with a tag set.
    async fn group_is_ours(&self, name: &str) -> Result<bool, AwsError> {
        // By name first: no Auto Scaling call for a group not named.
        let groups = &self.config.scope.groups;
        if !groups.is_empty() && !groups.iter().any(|g| g == name) {
            return Ok(false);
        }
        if self.config.scope.managed_tag.is_none() {
            return Ok(true);
        }
        Ok(match self.fleet.autoscaling.group(name).await? {
            Some(g) => self.config.manages(&g),
            None => false,
        })
    }

    pub async fn on_launch_unsuccessful(
        &self,
        l: &LaunchUnsuccessful,
        region: &str,
    ) -> Result<Handled, AwsError> {
        let group = l.auto_scaling_group_name.to_string();
        if !self.group_is_ours(&group).await? {
            return Ok(Handled::new(format!(
                "ignored: {group} is not managed here"
            )));
        }
        let mut out = Handled::new(format!("launch failure in {group} reported"));
        let az = l.availability_zone().map(str::to_owned);
        out.fleet.push(FleetSample {
            metric: FleetMetric::LaunchFailures,
            pool: Pool {
                instance_type: None,
                availability_zone: az.clone(),
                group: Some(group.clone()),
            },
            seconds: None,
        });
        let cause = l
            .status_message
            .clone()
            .or(l.cause.clone())
            .unwrap_or_else(|| "(AWS gave no cause)".into());
        let window = self.config.launch_failure_window_secs;
        let mut n = Notification::new(
            NotificationKind::LaunchFailed,
            Severity::High,
            format!("{group} could not launch an instance"),
            // One per group in the window: later failures of the same group are the same news.
            format!("launch-failed|{group}"),
        )
        .summary(format!(
            "{}\n\nWhat to do: {}",
            fleetguard::text::excerpt(&cause, 1000),
            launch_advice(&format!(
                "{cause} {}",
                l.description.as_deref().unwrap_or("")
            ))
        ))
        .field("Auto Scaling group", group.clone())
        .field("Availability Zone", az.unwrap_or_default())
        .field("Subnet", l.subnet_id().unwrap_or_default())
        .field(
            "Repeats",
            format!(
                "further failures within {} are not announced again",
                fleetguard::time::human_duration(window)
            ),
        );
        n.resource_name = Some(group.clone());
        if !region.is_empty() {
            n = n.link(
                "Activity history",
                format!(
                    "https://{}/ec2/home?region={region}#AutoScalingGroupDetails:id={};view=activity",
                    console_host("aws", region),
                    url_encode(&group)
                ),
            );
        }
        n.dedupe_ttl = Duration::from_secs(window.max(60) as u64);
        out.notifications.push(n);
        Ok(out)
    }

    pub async fn on_instance_refresh(
        &self,
        r: &InstanceRefresh,
        region: &str,
    ) -> Result<Handled, AwsError> {
        let group = r.auto_scaling_group_name.to_string();
        if !r.went_wrong() {
            return Ok(Handled::new(format!(
                "ignored: instance refresh {}",
                r.status.to_ascii_lowercase()
            )));
        }
        if !self.group_is_ours(&group).await? {
            return Ok(Handled::new(format!(
                "ignored: {group} is not managed here"
            )));
        }
        let status = r.status.to_ascii_lowercase();
        let id = r.instance_refresh_id.clone().unwrap_or_default();
        let mut out = Handled::new(format!("instance refresh {status} reported"));
        let (severity, what) = if status.contains("rollback") {
            (
                Severity::High,
                "The refresh is being rolled back: instances return to the configuration from before it.",
            )
        } else if status.contains("cancel") {
            (
                Severity::Medium,
                "The refresh was cancelled: the group runs a mix of old and new instances until another refresh.",
            )
        } else {
            (
                Severity::High,
                "The refresh failed: the group runs a mix of old and new instances. Its status reason names why (instances that failed health checks, or a launch that failed).",
            )
        };
        let mut n = Notification::new(
            NotificationKind::InstanceRefreshFailed,
            severity,
            format!("Instance refresh of {group}: {}", r.status),
            format!("refresh|{group}|{id}|{status}"),
        )
        .summary(what)
        .field("Auto Scaling group", group.clone())
        .field("Instance refresh", id);
        n.resource_name = Some(group.clone());
        n.state = Some(r.status.clone());
        if !region.is_empty() {
            n = n.link(
                "Instance refreshes",
                format!(
                    "https://{}/ec2/home?region={region}#AutoScalingGroupDetails:id={};view=instanceRefresh",
                    console_host("aws", region),
                    url_encode(&group)
                ),
            );
        }
        out.notifications.push(n);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_follows_the_cause() {
        assert!(launch_advice("We currently do not have sufficient m5.large capacity in the Availability Zone you requested. InsufficientInstanceCapacity").contains("more instance types"));
        assert!(
            launch_advice("You have requested more vCPU capacity than your current vCPU limit")
                .contains("Service Quotas")
        );
        assert!(
            launch_advice("The image id '[ami-1]' does not exist. Invalid AMI")
                .contains("launch template")
        );
        assert!(launch_advice("something else").contains("activity history"));
    }
}
