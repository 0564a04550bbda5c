//! The one message per instance and interruption. Pure.

use crate::decide::{Interruption, Plan};
use fleetguard::events::Event;
use fleetguard::notify::{Notification, NotificationKind, Phase, Severity, console_host};
use fleetguard::out_of_service::{DrainOutcome, Findings, target_list};
use fleetguard::ports::DrainResult;
use fleetguard::time::human_duration;
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything the one message says, gathered after the drain calls.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub interruption: &'a Interruption,
    pub findings: &'a Findings,
    pub plan: &'a Plan,
    /// None when nothing was changed (dry run, or not draining).
    pub outcome: Option<&'a DrainOutcome>,
    /// Running tasks per service on the container instance, when they could be listed.
    pub tasks: Option<&'a BTreeMap<String, usize>>,
    pub dry_run: bool,
    pub seconds_left: Option<i64>,
}

/// The one message per instance and interruption.
pub fn render(r: &Report<'_>, event: &Event) -> Notification {
    let Report {
        interruption: i,
        findings: f,
        plan,
        outcome,
        tasks,
        dry_run,
        seconds_left: left_secs,
    } = *r;
    let what = match &i.action {
        Some(a) => format!("Spot interruption ({a})"),
        None => "Rebalance recommendation".to_owned(),
    };
    let verb = match (plan, dry_run) {
        (Plan::Drain { .. }, false) => "drained",
        (Plan::Drain { .. }, true) => "would drain (dry run)",
        _ => "not drained",
    };
    let title = format!("{what}: {} {verb}", i.instance_id);
    let (kind, severity, key) = match &i.action {
        Some(a) => (
            NotificationKind::SpotInterruption,
            Severity::High,
            format!("spot|{}|{a}", i.instance_id),
        ),
        None => (
            NotificationKind::RebalanceRecommendation,
            Severity::Medium,
            format!("rebalance|{}|{}", i.instance_id, event.envelope.id),
        ),
    };
    let ci = f.container_instance.as_ref();
    let mut summary = match (&i.action, plan, dry_run) {
        (Some(a), Plan::Drain { .. }, false) => format!(
            "EC2 will {a} {} about two minutes after the warning. It was taken out of service at once.",
            i.instance_id
        ),
        (Some(a), Plan::Drain { .. }, true) => format!(
            "EC2 will {a} {}. DRY_RUN is set: nothing was changed.",
            i.instance_id
        ),
        (None, Plan::Drain { .. }, _) => format!(
            "EC2 recommends replacing {}: its Spot capacity is at elevated risk. REBALANCE_ACTION=drain.",
            i.instance_id
        ),
        _ => format!(
            "EC2 recommends replacing {}: its Spot capacity is at elevated risk of interruption.",
            i.instance_id
        ),
    };
    if let Some(secs) = left_secs.filter(|_| i.action.is_some()) {
        summary.push_str(&if secs > 0 {
            format!(" About {} left.", human_duration(secs))
        } else {
            " The two-minute warning period is over.".to_owned()
        });
    }
    let mut n = Notification::new(kind, severity, title, key).summary(summary);
    if matches!(plan, Plan::Drain { .. }) {
        // The start of the instance's drain: asg-lifecycle's "drained" resolves it.
        n = n.incident(
            fleetguard::notify::incident::drain_key(&i.instance_id.to_string(), dry_run),
            Phase::Opened,
        );
    }
    n.resource_name = Some(i.instance_id.to_string());
    n.state = i.action.as_ref().map(|a| a.to_string());
    let instance_type = f.instance_type();
    let az = f.availability_zone();
    n = n
        .field("Instance", i.instance_id.to_string())
        .field("Instance type", instance_type.unwrap_or_default())
        .field("Availability Zone", az.unwrap_or_default())
        .field(
            "Auto Scaling group",
            f.group
                .as_ref()
                .map(|g| g.auto_scaling_group_name.clone())
                .unwrap_or_default(),
        );
    if let Some(ci) = ci {
        let status = match outcome.and_then(|o| o.container_instance) {
            Some(DrainResult::Drained) => "ACTIVE → DRAINING",
            Some(DrainResult::AlreadyDraining) => "already DRAINING",
            Some(DrainResult::DrainedUnmarked) => fleetguard::text::UNMARKED_DRAIN,
            None if dry_run && matches!(plan, Plan::Drain { .. }) => "would set DRAINING",
            None => ci.status.as_str(),
        };
        n = n
            .field("Cluster", ci.cluster_name().to_owned())
            .field("Container instance", format!("{} ({status})", ci.arn));
    }
    if let Some(tasks) = tasks {
        let total: usize = tasks.values().sum();
        let per: Vec<String> = tasks.iter().map(|(s, c)| format!("{s}: {c}")).collect();
        n = n.field(
            "Tasks being moved",
            if total == 0 {
                "none".to_owned()
            } else {
                format!("{total} ({})", per.join(", "))
            },
        );
    }
    if !f.registrations.is_empty() {
        let done = outcome.is_some_and(|o| !o.deregistered.is_empty());
        n = n.field(
            if done {
                "Deregistered from"
            } else if dry_run {
                "Would deregister from"
            } else {
                "Target groups"
            },
            target_list(&f.registrations),
        );
    }
    let region = &event.envelope.region;
    if !region.is_empty() {
        let host = console_host("aws", region);
        n = n.link(
            "Instance",
            format!(
                "https://{host}/ec2/home?region={region}#InstanceDetails:instanceId={}",
                i.instance_id
            ),
        );
        if let Some(ci) = ci {
            n = n.link(
                "Cluster",
                format!(
                    "https://{host}/ecs/v2/clusters/{}/infrastructure?region={region}",
                    ci.cluster_name()
                ),
            );
        }
    }
    n.dedupe_ttl = Duration::from_secs(24 * 3600);
    n
}
