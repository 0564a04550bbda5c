//! Taking an instance out of service, shared by `spot-interruption` and `asg-lifecycle`: find the
//! EC2 instance's container instance (in the configured clusters, or every cluster, searched in
//! parallel) and its target-group registrations, then set DRAINING and deregister, in parallel.
//! Also the managed-group check (`MANAGED_ASG_TAG`).

use crate::ids::InstanceId;
use crate::ports::{
    AutoScalingGroups, AwsError, ContainerInstance, ContainerInstances, DrainResult, GroupInstance,
    Registration, TargetGroups, Task,
};
use std::collections::BTreeMap;

/// The ports an instance is taken out of service through.
#[derive(Debug, Clone)]
pub struct Fleet<E, T, A> {
    pub ecs: E,
    pub elbv2: T,
    pub autoscaling: A,
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

/// Where to look and what is ours: from `ECS_CLUSTERS`, `TARGET_GROUP_ARNS`, `MANAGED_ASG_TAG`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Names or ARNs; empty means every cluster of the account.
    pub clusters: Vec<String>,
    /// Empty means the target groups of the instance's Auto Scaling group.
    pub target_group_arns: Vec<String>,
    pub managed_tag: Option<ManagedTag>,
}

/// What was found about the instance, before acting.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub group: Option<GroupInstance>,
    pub group_tags: BTreeMap<String, String>,
    pub container_instance: Option<ContainerInstance>,
    pub registrations: Vec<Registration>,
}

impl Findings {
    /// In a group that `MANAGED_ASG_TAG` (when set) admits.
    pub fn managed(&self, scope: &Scope) -> bool {
        scope
            .managed_tag
            .as_ref()
            .is_none_or(|tag| self.group.is_some() && tag.matches(&self.group_tags))
    }
}

/// Search `clusters` in parallel; the first container instance found. A cluster that could not
/// be searched may hold the instance: then it is an error, not "not found".
pub async fn find_in_clusters<E: ContainerInstances>(
    ecs: &E,
    clusters: &[String],
    instance: &InstanceId,
) -> Result<Option<ContainerInstance>, AwsError> {
    let mut set = tokio::task::JoinSet::new();
    for c in clusters {
        let (ecs, c, i) = (ecs.clone(), c.clone(), instance.clone());
        set.spawn(async move { ecs.find_container_instance(&c, &i).await });
    }
    let mut found = None;
    let mut first_error = None;
    while let Some(res) = set.join_next().await {
        match res {
            Ok(Ok(Some(ci))) => found = found.or(Some(ci)),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => {
                first_error = first_error.or(Some(AwsError::other(
                    "ListContainerInstances",
                    e.to_string(),
                )))
            }
        }
    }
    match (found, first_error) {
        (Some(ci), _) => Ok(Some(ci)),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(None),
    }
}

/// Every task ECS still knows on the container instance, whatever its desired status: the ones
/// desired RUNNING and the ones being stopped (desired STOPPED, possibly still running).
pub async fn all_tasks_on<E: ContainerInstances>(
    ecs: &E,
    cluster: &str,
    container_instance: &str,
) -> Result<Vec<Task>, AwsError> {
    let (running, stopping) = tokio::join!(
        ecs.tasks_on(cluster, container_instance, "RUNNING"),
        ecs.tasks_on(cluster, container_instance, "STOPPED")
    );
    let mut all = running?;
    all.extend(stopping?);
    all.sort_by(|a, b| a.arn.cmp(&b.arn));
    all.dedup_by(|a, b| a.arn == b.arn);
    Ok(all)
}

/// Find everything about the instance. The group lookup and the cluster search run in parallel;
/// target groups are looked up once the group is known (unless configured). Not being able to
/// look is an error, never "not found".
pub async fn find<E, T, A>(
    fleet: &Fleet<E, T, A>,
    scope: &Scope,
    instance: &InstanceId,
) -> Result<Findings, AwsError>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
{
    let group_lookup = async {
        let Some(gi) = fleet.autoscaling.instance(instance.as_str()).await? else {
            return Ok::<_, AwsError>((None, None));
        };
        let group = fleet.autoscaling.group(&gi.auto_scaling_group_name).await?;
        Ok((Some(gi), group))
    };
    let cluster_search = async {
        let clusters = fleet.ecs.clusters(&scope.clusters).await?;
        find_in_clusters(&fleet.ecs, &clusters, instance).await
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
    if !findings.managed(scope) {
        return Ok(findings); // not managed: look no further
    }
    let target_groups = if scope.target_group_arns.is_empty() {
        details.map(|g| g.target_group_arns).unwrap_or_default()
    } else {
        scope.target_group_arns.clone()
    };
    let mut set = tokio::task::JoinSet::new();
    for tg in target_groups {
        let (elb, id) = (fleet.elbv2.clone(), instance.to_string());
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

/// What taking the instance out of service did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainOutcome {
    pub container_instance: Option<DrainResult>,
    pub deregistered: Vec<Registration>,
    pub errors: Vec<AwsError>,
}

/// Set DRAINING and deregister, in parallel. Every call is attempted; failures are collected.
pub async fn take_out_of_service<E, T, A>(
    fleet: &Fleet<E, T, A>,
    instance: &InstanceId,
    f: &Findings,
) -> DrainOutcome
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
{
    let ecs_call = async {
        match &f.container_instance {
            Some(ci) => Some(fleet.ecs.drain(ci).await),
            None => None,
        }
    };
    let elb_call = async {
        if f.registrations.is_empty() {
            None
        } else {
            Some(
                fleet
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_tag() {
        let tag = ManagedTag::parse("team=web").unwrap();
        assert!(tag.matches(&BTreeMap::from([("team".into(), "web".into())])));
        assert!(!tag.matches(&BTreeMap::from([("team".into(), "api".into())])));
        let any = ManagedTag::parse(" fleetguard ").unwrap();
        assert!(any.matches(&BTreeMap::from([("fleetguard".into(), String::new())])));
        assert!(ManagedTag::parse("  ").is_none());
    }
}
