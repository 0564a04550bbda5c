//! Taking an instance out of service, shared by `spot-interruption` and `asg-lifecycle`: find the
//! EC2 instance's container instance (in the configured clusters, or every cluster, searched in
//! parallel) and its target-group registrations, then set DRAINING and deregister, in parallel.
//! Also the managed-group check (`MANAGED_ASG_TAG`, `AUTO_SCALING_GROUPS`: [`scope`]).

mod scope;
pub use scope::{ManagedTag, Scope};

use crate::ids::InstanceId;
use crate::ports::{
    AutoScalingGroups, AwsError, ContainerInstance, ContainerInstances, DrainMark, DrainResult,
    GroupInstance, Registration, TargetGroups, Task,
};
use std::collections::{BTreeMap, BTreeSet};

/// The ports an instance is taken out of service through.
#[derive(Debug, Clone)]
pub struct Fleet<E, T, A> {
    pub ecs: E,
    pub elbv2: T,
    pub autoscaling: A,
}

/// What was found about the instance, before acting.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub group: Option<GroupInstance>,
    pub group_tags: BTreeMap<String, String>,
    pub container_instance: Option<ContainerInstance>,
    pub registrations: Vec<Registration>,
    /// The Auto Scaling lookup that failed, when the search went on without it.
    pub group_error: Option<AwsError>,
}

impl Findings {
    /// The instance type, from its group, or else its container instance.
    pub fn instance_type(&self) -> Option<String> {
        self.group
            .as_ref()
            .and_then(|g| g.instance_type.clone())
            .or_else(|| self.container_instance.as_ref()?.instance_type.clone())
    }

    /// The Availability Zone, from its group, or else its container instance.
    pub fn availability_zone(&self) -> Option<String> {
        self.group
            .as_ref()
            .and_then(|g| g.availability_zone.clone())
            .or_else(|| self.container_instance.as_ref()?.availability_zone.clone())
    }

    /// The pool the instance belongs to, as the fleet metrics count it.
    pub fn pool(&self) -> crate::observe::Pool {
        crate::observe::Pool {
            instance_type: self.instance_type(),
            availability_zone: self.availability_zone(),
            group: self
                .group
                .as_ref()
                .map(|g| g.auto_scaling_group_name.clone()),
        }
    }

    /// Why the instance is not ours, or `None` when it is: its group as [`Scope::refuses_group`]
    /// says; in no group, only without `MANAGED_ASG_TAG` (no group carries the tag).
    pub fn unmanaged_because(&self, scope: &Scope) -> Option<String> {
        match (&self.group, &scope.managed_tag) {
            (Some(g), _) => scope.refuses_group(&g.auto_scaling_group_name, &self.group_tags),
            (None, Some(tag)) => Some(format!(
                "not in an Auto Scaling group tagged {} (in no group)",
                tag.key
            )),
            (None, None) => None,
        }
    }

    /// In a group the scope admits (see [`Findings::unmanaged_because`]).
    pub fn managed(&self, scope: &Scope) -> bool {
        self.unmanaged_because(scope).is_none()
    }
}

/// Registrations for people: `web port 80, api` (a target group ARN's name part).
pub fn target_list(regs: &[Registration]) -> String {
    let names: Vec<String> = regs
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
    names.join(", ")
}

/// How many clusters are searched at once.
pub const CLUSTER_SEARCH_CONCURRENCY: usize = 8;

/// Search `clusters` in parallel (at most [`CLUSTER_SEARCH_CONCURRENCY`] at once); the first
/// container instance found ends the search. A cluster that no longer exists holds nothing; one
/// that could not be searched may hold the instance: then it is an error, not "not found".
pub async fn find_in_clusters<E: ContainerInstances>(
    ecs: &E,
    clusters: &[String],
    instance: &InstanceId,
) -> Result<Option<ContainerInstance>, AwsError> {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(CLUSTER_SEARCH_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for c in clusters {
        let (ecs, c, i, permits) = (ecs.clone(), c.clone(), instance.clone(), permits.clone());
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            ecs.find_container_instance(&c, &i).await
        });
    }
    let mut first_error = None;
    while let Some(res) = set.join_next().await {
        match res {
            Ok(Ok(Some(ci))) => {
                set.abort_all();
                return Ok(Some(ci));
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) if e.code.as_deref() == Some("ClusterNotFoundException") => {}
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => {
                first_error = first_error.or(Some(AwsError::other(
                    "ListContainerInstances",
                    e.to_string(),
                )))
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// The instance's container instance in the configured clusters, or in every cluster of the
/// account: the (possibly cached) list first, and on a miss the list read again and only the
/// clusters new to it searched, so a cluster created since the last listing is never missed.
pub async fn search_clusters<E: ContainerInstances>(
    ecs: &E,
    configured: &[String],
    instance: &InstanceId,
) -> Result<Option<ContainerInstance>, AwsError> {
    let known = ecs.clusters(configured, false).await?;
    let found = find_in_clusters(ecs, &known, instance).await?;
    if found.is_some() || !configured.is_empty() {
        return Ok(found);
    }
    let new: Vec<String> = ecs
        .clusters(configured, true)
        .await?
        .into_iter()
        .filter(|c| !known.contains(c))
        .collect();
    if new.is_empty() {
        return Ok(None);
    }
    find_in_clusters(ecs, &new, instance).await
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

/// Whether [`find`] sets the container instance DRAINING the moment it is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSight {
    /// Only after deciding (maintenance, stops: time enough).
    Wait,
    /// When nothing narrows the scope (no `MANAGED_ASG_TAG`, no `AUTO_SCALING_GROUPS`); else
    /// once the group is known. A Spot stop, hibernate or rebalance drain: the instance comes
    /// back, so one not ours is never drained on a guess.
    IfUnscoped,
    /// As `IfUnscoped`, and also when the scope cannot be checked because Auto Scaling did not
    /// answer: a Spot termination warning (the instance is going away for good).
    EvenUnscoped,
}

/// Find everything about the instance. The group lookup and the cluster search run in parallel;
/// target groups are looked up once the group is known (unless configured). Not being able to
/// look is an error, never "not found".
///
/// With `on_sight` other than `Wait` (a Spot warning) and no `MANAGED_ASG_TAG` nor
/// `AUTO_SCALING_GROUPS` to check first, the container instance is set DRAINING the moment it is
/// found, without waiting for Auto Scaling: in a mass reclaim that API throttles, and the two
/// minutes are not spent on it (with `EvenUnscoped`, also when the scope cannot be checked). A group lookup that
/// failed is then kept in `Findings::group_error` (the caller fails after acting, so Lambda's
/// retry finishes the rest) instead of failing the search.
///
/// `mark`: written with the drain when the instance is expected back (see [`DrainMark`]).
pub async fn find<E, T, A>(
    fleet: &Fleet<E, T, A>,
    scope: &Scope,
    instance: &InstanceId,
    on_sight: OnSight,
    mark: Option<DrainMark>,
) -> Result<(Findings, Option<Result<DrainResult, AwsError>>), AwsError>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
{
    let drain_on_sight = on_sight != OnSight::Wait && !scope.narrowed();
    let group_lookup = async {
        let Some(gi) = fleet.autoscaling.instance(instance.as_str()).await? else {
            return Ok::<_, AwsError>((None, None));
        };
        let group = fleet.autoscaling.group(&gi.auto_scaling_group_name).await?;
        Ok((Some(gi), group))
    };
    let cluster_search = async {
        let ci = search_clusters(&fleet.ecs, &scope.clusters, instance).await?;
        let drained = match &ci {
            Some(ci) if drain_on_sight => Some(fleet.ecs.drain(ci, mark).await),
            _ => None,
        };
        Ok::<_, AwsError>((ci, drained))
    };
    let (group, search) = tokio::join!(group_lookup, cluster_search);
    let (container_instance, mut drained) = search?;
    let (group, details, group_error) = match group {
        Ok((g, d)) => (g, d, None),
        Err(e) if drain_on_sight => {
            tracing::warn!(error = %e, "Auto Scaling lookup failed; the container instance was not held back");
            (None, None, Some(e))
        }
        // Whose it is cannot be told (Auto Scaling throttles in a mass reclaim), and the
        // instance is going away for good: a container instance in a searched cluster is drained
        // rather than let the warning's two minutes pass. The caller fails after acting, so the
        // retry finishes (or finds it is not ours: a drain of a terminating instance harms none).
        Err(e) if on_sight == OnSight::EvenUnscoped => {
            tracing::warn!(error = %e, "Auto Scaling lookup failed; the container instance is drained before its group is known");
            if let Some(ci) = &container_instance {
                drained = Some(fleet.ecs.drain(ci, mark).await);
            }
            (None, None, Some(e))
        }
        Err(e) => return Err(e),
    };
    let mut findings = Findings {
        group_tags: details.as_ref().map(|g| g.tags.clone()).unwrap_or_default(),
        group,
        container_instance,
        registrations: Vec::new(),
        group_error,
    };
    if !findings.managed(scope) {
        return Ok((findings, drained)); // not managed: look no further
    }
    // The configured target groups add to the group's own (an instance registered by hand in
    // a group outside its Auto Scaling group's list is still taken out).
    let mut target_groups = details.map(|g| g.target_group_arns).unwrap_or_default();
    for tg in &scope.target_group_arns {
        if !target_groups.contains(tg) {
            target_groups.push(tg.clone());
        }
    }
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
    Ok((findings, drained))
}

/// What taking the instance out of service did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainOutcome {
    pub container_instance: Option<DrainResult>,
    pub deregistered: Vec<Registration>,
    pub errors: Vec<AwsError>,
}

/// Set DRAINING and deregister, in parallel. Every call is attempted; failures are collected.
/// `ecs_done`: the container instance's drain already made while searching (see [`find`]);
/// `mark`: as in [`find`].
pub async fn take_out_of_service<E, T, A>(
    fleet: &Fleet<E, T, A>,
    instance: &InstanceId,
    f: &Findings,
    ecs_done: Option<Result<DrainResult, AwsError>>,
    mark: Option<DrainMark>,
) -> DrainOutcome
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
{
    let ecs_call = async {
        match (&f.container_instance, ecs_done) {
            (_, Some(done)) => Some(done),
            (Some(ci), None) => Some(fleet.ecs.drain(ci, mark).await),
            (None, None) => None,
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
    // A plain EC2 instance (no container instance) expected back: its mark, with what to
    // register again, lives in the table only. After the drain, never before it.
    if let (None, Some(m), false) = (&f.container_instance, mark, out.deregistered.is_empty())
        && !fleet
            .ecs
            .keep_plain_mark(instance.as_str(), m, &out.deregistered)
            .await
    {
        tracing::warn!(instance = %instance, "deregistered, but the mark to put it back could not be kept");
    }
    // Already deregistered by an earlier drain of ours (a rebalance, then its warning): the
    // stronger reason replaces the kept one, so that the weaker one's undo never puts back an
    // instance that is about to go. (The ledger keeps the stronger of the two.)
    if let (None, Some(m), true) = (&f.container_instance, mark, out.deregistered.is_empty()) {
        keep_stronger_plain_mark(&fleet.ecs, instance.as_str(), m).await;
    }
    out
}

/// A plain instance already out of service through an earlier drain of ours (its kept mark):
/// `m` replaces that mark when stronger (a rebalance drain, then its interruption warning), so
/// the weaker reason's undo never registers an instance that is about to go. True when `m` was
/// kept.
pub async fn keep_stronger_plain_mark<E: ContainerInstances>(
    ecs: &E,
    instance: &str,
    m: DrainMark,
) -> bool {
    let Some((kept, regs)) = ecs.kept_plain_mark(instance).await else {
        return false;
    };
    if !m.supersedes(&kept) {
        return false;
    }
    let ok = ecs.keep_plain_mark(instance, m, &regs).await;
    if !ok {
        tracing::warn!(
            instance,
            "the stronger reason could not be kept over an earlier drain's"
        );
    }
    ok
}

/// The message of a drain whose mark ECS refused: the instance is out of service, and nothing
/// will put it back. Deduplicated per container instance and day.
pub fn unmarked_drain_notice(ci: &ContainerInstance, now: i64) -> crate::notify::Notification {
    use crate::notify::{Notification, NotificationKind, Severity};
    let instance = ci.ec2_instance_id.as_str();
    Notification::new(
        NotificationKind::DrainStarted,
        Severity::Medium,
        format!("{instance} drained, but not marked to come back"),
        format!("unmarked-drain|{}|{}", ci.arn, now / 86_400),
    )
    .summary(format!(
        "Container instance {}: {}.",
        ci.arn,
        crate::text::UNMARKED_DRAIN
    ))
    .field("Instance", instance.to_owned())
    .field("Cluster", ci.cluster_name().to_owned())
    .field("Container instance", ci.arn.clone())
}

/// The message of a plain EC2 instance registered again where a drain of ours took it out: it
/// resolves the drain's incident. Deduplicated per drain (its mark's time).
pub fn plain_back_in_service(
    instance: &str,
    mark: DrainMark,
    registrations: &[Registration],
    dry_run: bool,
) -> crate::notify::Notification {
    use crate::notify::incident::{Phase, drain_key};
    use crate::notify::{Notification, NotificationKind, Severity};
    let mut n = Notification::new(
        NotificationKind::BackInService,
        Severity::Info,
        format!(
            "{}{instance} is back in service",
            if dry_run { "[dry run] " } else { "" }
        ),
        format!(
            "back-in-service|{instance}|{}{}",
            mark.at,
            if dry_run { "|dry-run" } else { "" }
        ),
    )
    .summary(format!(
        "The {} it was drained for is over: it is registered again in its target groups.",
        mark.reason.as_str()
    ))
    .field("Instance", instance.to_owned())
    .field(
        "Target groups",
        registrations
            .iter()
            .map(|r| r.target_group_arn.rsplit(':').next().unwrap_or_default())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", "),
    )
    .incident(drain_key(instance, dry_run), Phase::Resolved);
    n.dedupe_ttl = std::time::Duration::from_secs(48 * 3600);
    n
}
