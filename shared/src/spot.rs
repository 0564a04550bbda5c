//! `spot-interruption`: get the instance out of service first, talk after.
//!
//! On a Spot two-minute warning: find the EC2 instance's container instance (configured clusters,
//! or every cluster, searched in parallel: two calls per cluster) and its target-group
//! registrations, set DRAINING and deregister, all before any enrichment or message; then count
//! the tasks being moved and send one notification. Rebalance recommendations are ignored,
//! notified or drained, by `REBALANCE_ACTION`.

use crate::adapters::AwsError;
use crate::adapters::autoscaling::{AutoScaling, GroupInstance};
use crate::adapters::ecs::{ContainerInstance, DrainResult, Ecs};
use crate::adapters::elbv2::{Elbv2, Registration};
use crate::config::{ConfigError, parse_list, parse_target_group_arns};
use crate::events::{Event, InstanceAction};
use crate::ids::InstanceId;
use crate::notify::{Notification, NotificationKind, Severity, console_host};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceAction {
    Ignore,
    Notify,
    Drain,
}

/// `MANAGED_ASG_TAG`: `key` (any value) or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedTag {
    pub key: String,
    pub value: Option<String>,
}

impl ManagedTag {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        Some(match s.split_once('=') {
            Some((k, v)) => Self {
                key: k.trim().to_owned(),
                value: Some(v.trim().to_owned()),
            },
            None => Self {
                key: s.to_owned(),
                value: None,
            },
        })
    }

    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        match (tags.get(&self.key), &self.value) {
            (Some(_), None) => true,
            (Some(v), Some(want)) => v == want,
            (None, _) => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotConfig {
    /// `ECS_CLUSTERS`: names or ARNs; empty means every cluster of the account.
    pub clusters: Vec<String>,
    /// `TARGET_GROUP_ARNS`: empty means the target groups of the instance's Auto Scaling group.
    pub target_group_arns: Vec<String>,
    pub managed_tag: Option<ManagedTag>,
    pub rebalance: RebalanceAction,
}

impl SpotConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let target_group_arns = parse_target_group_arns(lookup("TARGET_GROUP_ARNS"))?;
        let rebalance = match lookup("REBALANCE_ACTION")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("notify") => RebalanceAction::Notify,
            Some("ignore") => RebalanceAction::Ignore,
            Some("drain") => RebalanceAction::Drain,
            Some(other) => {
                return Err(ConfigError {
                    variable: "REBALANCE_ACTION",
                    message: format!(
                        "expected ignore, notify or drain, got {:?}",
                        crate::text::shown(other, 40)
                    ),
                });
            }
        };
        Ok(Self {
            clusters: parse_list(lookup("ECS_CLUSTERS")),
            target_group_arns,
            managed_tag: lookup("MANAGED_ASG_TAG").and_then(|s| ManagedTag::parse(&s)),
            rebalance,
        })
    }
}

/// What a Spot event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub instance_id: InstanceId,
    /// `None` for a rebalance recommendation.
    pub action: Option<InstanceAction>,
}

/// What was found about the instance, before acting.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub group: Option<GroupInstance>,
    pub group_tags: BTreeMap<String, String>,
    pub container_instance: Option<ContainerInstance>,
    pub registrations: Vec<Registration>,
}

/// The decision, from the event, what was found and the configuration. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not ours: acknowledged without a message.
    Ignore(String),
    /// Tell people, change nothing.
    NotifyOnly,
    /// Drain (or say what would be drained, in a dry run), then tell people.
    Drain {
        container_instance: bool,
        deregister: bool,
    },
}

pub fn decide(i: &Interruption, f: &Findings, config: &SpotConfig) -> Plan {
    if let Some(tag) = &config.managed_tag {
        let managed = f.group.is_some() && tag.matches(&f.group_tags);
        if !managed {
            return Plan::Ignore(format!(
                "{} is not in an Auto Scaling group tagged {}",
                i.instance_id, tag.key
            ));
        }
    }
    if f.container_instance.is_none() && f.registrations.is_empty() {
        return Plan::Ignore(format!(
            "{} is in no searched ECS cluster and no target group",
            i.instance_id
        ));
    }
    if i.action.is_none() {
        match config.rebalance {
            RebalanceAction::Ignore => {
                return Plan::Ignore(
                    "rebalance recommendations are ignored (REBALANCE_ACTION)".into(),
                );
            }
            RebalanceAction::Notify => return Plan::NotifyOnly,
            RebalanceAction::Drain => {}
        }
    }
    Plan::Drain {
        container_instance: f.container_instance.is_some(),
        deregister: !f.registrations.is_empty(),
    }
}

/// The ports a handler acts through, built once.
#[derive(Debug, Clone)]
pub struct SpotPorts {
    pub ecs: Ecs,
    pub elbv2: Elbv2,
    pub autoscaling: AutoScaling,
}

/// Find everything about the instance. The group lookup and the cluster search run in parallel;
/// target groups are looked up once the group is known (unless configured).
pub async fn find(
    ports: &SpotPorts,
    config: &SpotConfig,
    instance: &InstanceId,
) -> Result<Findings, AwsError> {
    let group_lookup = async {
        let Some(gi) = ports.autoscaling.instance(instance.as_str()).await? else {
            return Ok::<_, AwsError>((None, None));
        };
        let group = ports.autoscaling.group(&gi.auto_scaling_group_name).await?;
        Ok((Some(gi), group))
    };
    let cluster_search = async {
        let clusters = ports.ecs.clusters(&config.clusters).await?;
        ports.ecs.find_in_clusters(&clusters, instance).await
    };
    let (group, container_instance) = tokio::join!(group_lookup, cluster_search);
    let (group, details) = group?;
    let container_instance = container_instance?;
    let mut findings = Findings {
        group_tags: details.as_ref().map(|g| g.tags.clone()).unwrap_or_default(),
        group,
        container_instance,
        registrations: Vec::new(),
    };
    if let Some(tag) = &config.managed_tag
        && !(findings.group.is_some() && tag.matches(&findings.group_tags))
    {
        return Ok(findings); // not managed: look no further
    }
    let target_groups = if config.target_group_arns.is_empty() {
        details.map(|g| g.target_group_arns).unwrap_or_default()
    } else {
        config.target_group_arns.clone()
    };
    let mut set = tokio::task::JoinSet::new();
    for tg in target_groups {
        let (elb, id) = (ports.elbv2.clone(), instance.to_string());
        set.spawn(async move { elb.registrations(&tg, &id).await });
    }
    while let Some(r) = set.join_next().await {
        let regs = r.map_err(|e| AwsError::other("DescribeTargetHealth", e.to_string()))??;
        findings.registrations.extend(regs);
    }
    findings
        .registrations
        .sort_by(|a, b| (&a.target_group_arn, a.port).cmp(&(&b.target_group_arn, b.port)));
    Ok(findings)
}

/// What the drain did, for the summary and the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainOutcome {
    pub container_instance: Option<DrainResult>,
    pub deregistered: Vec<Registration>,
    pub errors: Vec<AwsError>,
}

/// Issue the drain calls, in parallel. Every call is attempted; failures are collected.
pub async fn drain(ports: &SpotPorts, instance: &InstanceId, f: &Findings) -> DrainOutcome {
    let ecs_call = async {
        match &f.container_instance {
            Some(ci) => Some(ports.ecs.drain(ci).await),
            None => None,
        }
    };
    let elb_call = async {
        if f.registrations.is_empty() {
            None
        } else {
            Some(
                ports
                    .elbv2
                    .deregister(instance.as_str(), &f.registrations)
                    .await,
            )
        }
    };
    let (ecs, elb) = tokio::join!(ecs_call, elb_call);
    let mut out = DrainOutcome::default();
    match ecs {
        Some(Ok(r)) => out.container_instance = Some(r),
        Some(Err(e)) => out.errors.push(e),
        None => {}
    }
    match elb {
        Some(Ok(())) => out.deregistered = f.registrations.clone(),
        Some(Err(e)) => out.errors.push(e),
        None => {}
    }
    out
}

/// Time left before the interruption: the warning comes about two minutes ahead of it.
pub fn time_left(event: &Event, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let t = event.envelope.time.at()?;
    Some((t + chrono::Duration::seconds(120) - now).num_seconds())
}

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
            format!(" About {} left.", crate::alarm_fanout::human_duration(secs))
        } else {
            " The two-minute warning period is over.".to_owned()
        });
    }
    let mut n = Notification::new(kind, severity, title, key).summary(summary);
    n.resource_name = Some(i.instance_id.to_string());
    n.state = i.action.as_ref().map(|a| a.to_string());
    let instance_type = f
        .group
        .as_ref()
        .and_then(|g| g.instance_type.clone())
        .or(ci.and_then(|c| c.instance_type.clone()));
    let az = f
        .group
        .as_ref()
        .and_then(|g| g.availability_zone.clone())
        .or(ci.and_then(|c| c.availability_zone.clone()));
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
        let regs: Vec<String> = f
            .registrations
            .iter()
            .map(|r| {
                // `arn:…:targetgroup/<name>/<id>`
                let name = r
                    .target_group_arn
                    .split('/')
                    .nth(1)
                    .unwrap_or(&r.target_group_arn);
                match r.port {
                    Some(p) => format!("{name} port {p}"),
                    None => name.to_owned(),
                }
            })
            .collect();
        n = n.field(
            if done {
                "Deregistered from"
            } else if dry_run {
                "Would deregister from"
            } else {
                "Target groups"
            },
            regs.join(", "),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ci() -> ContainerInstance {
        ContainerInstance {
            cluster_arn: "arn:aws:ecs:eu-west-1:1:cluster/prod".into(),
            arn: "arn:aws:ecs:eu-west-1:1:container-instance/prod/abc".into(),
            ec2_instance_id: "i-0a1b2c3d4e5f60718".into(),
            status: "ACTIVE".into(),
            agent_connected: true,
            running_tasks_count: 2,
            pending_tasks_count: 0,
            instance_type: Some("m5.large".into()),
            availability_zone: Some("eu-west-1a".into()),
        }
    }

    fn interruption(action: Option<InstanceAction>) -> Interruption {
        Interruption {
            instance_id: InstanceId::parse("i-0a1b2c3d4e5f60718").unwrap(),
            action,
        }
    }

    fn config(lookup: &[(&str, &str)]) -> SpotConfig {
        SpotConfig::from_lookup(|k| {
            lookup
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap()
    }

    #[test]
    fn drains_what_was_found() {
        let f = Findings {
            container_instance: Some(ci()),
            ..Findings::default()
        };
        let p = decide(&interruption(Some(InstanceAction::Stop)), &f, &config(&[]));
        assert_eq!(
            p,
            Plan::Drain {
                container_instance: true,
                deregister: false
            }
        );
    }

    #[test]
    fn unknown_and_unmanaged_instances_are_ignored() {
        let p = decide(
            &interruption(Some(InstanceAction::Terminate)),
            &Findings::default(),
            &config(&[]),
        );
        assert!(matches!(p, Plan::Ignore(_)));
        let f = Findings {
            container_instance: Some(ci()),
            ..Findings::default()
        };
        let p = decide(
            &interruption(Some(InstanceAction::Terminate)),
            &f,
            &config(&[("MANAGED_ASG_TAG", "fleetguard")]),
        );
        assert!(matches!(p, Plan::Ignore(why) if why.contains("tagged fleetguard")));
    }

    #[test]
    fn rebalance_follows_its_setting() {
        let f = Findings {
            container_instance: Some(ci()),
            ..Findings::default()
        };
        let i = interruption(None);
        assert_eq!(decide(&i, &f, &config(&[])), Plan::NotifyOnly);
        assert!(matches!(
            decide(&i, &f, &config(&[("REBALANCE_ACTION", "ignore")])),
            Plan::Ignore(_)
        ));
        assert!(matches!(
            decide(&i, &f, &config(&[("REBALANCE_ACTION", "drain")])),
            Plan::Drain { .. }
        ));
    }

    #[test]
    fn config_is_validated() {
        let e = SpotConfig::from_lookup(|k| (k == "REBALANCE_ACTION").then(|| "maybe".into()))
            .unwrap_err();
        assert_eq!(e.variable, "REBALANCE_ACTION");
        let e = SpotConfig::from_lookup(|k| (k == "TARGET_GROUP_ARNS").then(|| "tg-1".into()))
            .unwrap_err();
        assert_eq!(e.variable, "TARGET_GROUP_ARNS");
        let c = config(&[("ECS_CLUSTERS", "a, b,,"), ("MANAGED_ASG_TAG", "team=web")]);
        assert_eq!(c.clusters, vec!["a", "b"]);
        let tag = c.managed_tag.unwrap();
        assert!(tag.matches(&BTreeMap::from([("team".into(), "web".into())])));
        assert!(!tag.matches(&BTreeMap::from([("team".into(), "api".into())])));
    }
}
