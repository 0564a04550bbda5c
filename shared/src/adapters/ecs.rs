//! ECS adapter (feature `ecs`): container instances, tasks, services and task definitions.

use super::sdk_error;
use crate::ids::InstanceId;
use crate::ports::{
    AwsError, ContainerDefinition, ContainerInstance, ContainerInstances, DRAIN_MARK_ATTRIBUTE,
    Deployment, DrainMark, DrainResult, Service, Services, Task, TaskContainer, TaskDefinition,
    drain_needs,
};
use aws_sdk_ecs::types::{Attribute, ContainerInstanceStatus, TargetType};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod services;

/// How long a listing of the account's clusters is used before it is read again.
pub const CLUSTER_LIST_MAX_AGE: Duration = Duration::from_secs(300);

/// One cluster's drain work: the container instances to set DRAINING, and the marks to write.
type ClusterDrains = (Vec<String>, Vec<(String, DrainMark)>);

/// The account's clusters, and when they were listed.
type ClusterList = (Instant, Vec<String>);

#[derive(Debug, Clone)]
pub struct Ecs {
    client: aws_sdk_ecs::Client,
    /// `ListClusters`, and when it was read.
    clusters: Arc<Mutex<Option<ClusterList>>>,
}

impl Ecs {
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        Self {
            client,
            clusters: Arc::default(),
        }
    }

    /// `UpdateContainerInstancesState` to DRAINING, ten a call; the ones that failed.
    async fn set_draining(&self, cluster: &str, arns: &[String]) -> BTreeMap<String, AwsError> {
        let mut failed = BTreeMap::new();
        for chunk in arns.chunks(10) {
            match self
                .client
                .update_container_instances_state()
                .cluster(cluster)
                .set_container_instances(Some(chunk.to_vec()))
                .status(ContainerInstanceStatus::Draining)
                .send()
                .await
            {
                Ok(out) => {
                    for x in out.failures() {
                        let arn = x.arn().unwrap_or_default().to_owned();
                        let e = update_failure(x);
                        // A failure that names no container instance fails them all.
                        if arn.is_empty() {
                            for a in chunk {
                                failed.entry(a.clone()).or_insert(e.clone());
                            }
                        } else {
                            failed.entry(arn).or_insert(e);
                        }
                    }
                }
                Err(e) => {
                    let e = sdk_error("UpdateContainerInstancesState", &e);
                    for a in chunk {
                        failed.entry(a.clone()).or_insert(e.clone());
                    }
                }
            }
        }
        failed
    }

    /// `PutAttributes` of the marks, ten a call; the ones that failed. A refused call of several
    /// is tried again one by one, so that one instance at ECS's attribute limit costs only its
    /// own mark.
    async fn put_marks(
        &self,
        cluster: &str,
        marks: &[(String, DrainMark)],
    ) -> BTreeMap<String, AwsError> {
        let mut failed = BTreeMap::new();
        for chunk in marks.chunks(10) {
            if let Err(e) = self.put_mark_call(cluster, chunk).await {
                if chunk.len() == 1 {
                    failed.insert(chunk[0].0.clone(), e);
                    continue;
                }
                for one in chunk {
                    if let Err(e) = self.put_mark_call(cluster, std::slice::from_ref(one)).await {
                        failed.insert(one.0.clone(), e);
                    }
                }
            }
        }
        failed
    }

    async fn put_mark_call(
        &self,
        cluster: &str,
        marks: &[(String, DrainMark)],
    ) -> Result<(), AwsError> {
        let attributes = marks
            .iter()
            .filter_map(|(arn, m)| {
                // By full ARN, so no target type is needed.
                Attribute::builder()
                    .name(DRAIN_MARK_ATTRIBUTE)
                    .value(m.value())
                    .target_id(arn)
                    .build()
                    .ok()
            })
            .collect();
        self.client
            .put_attributes()
            .cluster(cluster)
            .set_attributes(Some(attributes))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutAttributes", &e))
    }

    /// `DescribeTasks`, 100 at a time.
    pub async fn describe_tasks(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<Vec<Task>, AwsError> {
        let mut tasks = Vec::with_capacity(arns.len());
        for chunk in arns.chunks(100) {
            let d = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| sdk_error("DescribeTasks", &e))?;
            tasks.extend(d.tasks().iter().map(|t| {
                Task {
                    arn: t.task_arn().unwrap_or_default().to_owned(),
                    last_status: t.last_status().unwrap_or_default().to_owned(),
                    desired_status: t.desired_status().unwrap_or_default().to_owned(),
                    group: t.group().map(str::to_owned),
                    started_by: t.started_by().map(str::to_owned),
                    task_definition_arn: t.task_definition_arn().map(str::to_owned),
                    stop_code: t.stop_code().map(|c| c.as_str().to_owned()),
                    stopped_reason: t.stopped_reason().map(str::to_owned),
                    containers: t
                        .containers()
                        .iter()
                        .map(|c| TaskContainer {
                            name: c.name().unwrap_or_default().to_owned(),
                            exit_code: c.exit_code(),
                            reason: c.reason().map(str::to_owned),
                            last_status: c.last_status().map(str::to_owned),
                        })
                        .collect(),
                    stopped_at: t.stopped_at().map(|d| d.secs()),
                }
            }));
        }
        Ok(tasks)
    }
}

impl ContainerInstances for Ecs {
    /// The configured clusters, or every cluster of the account: listed at most every
    /// [`CLUSTER_LIST_MAX_AGE`] (the minute sweep keeps an execution environment warm for hours,
    /// and clusters come and go), or now when `refresh`.
    async fn clusters(
        &self,
        configured: &[String],
        refresh: bool,
    ) -> Result<Vec<String>, AwsError> {
        if let Some(named) = crate::ports::configured_clusters(configured) {
            return Ok(named);
        }
        if !refresh {
            let cached = self
                .clusters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some((at, list)) = cached
                && at.elapsed() < CLUSTER_LIST_MAX_AGE
            {
                return Ok(list);
            }
        }
        let list = self
            .client
            .list_clusters()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| sdk_error("ListClusters", &e))?;
        *self.clusters.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// The container instance of `instance` in `cluster`: `ListContainerInstances` filtered by
    /// `ec2InstanceId`, then `DescribeContainerInstances`, whose `ec2InstanceId` is checked (a
    /// filter that is ignored, as moto does, must not make us drain the wrong instance).
    async fn find_container_instance(
        &self,
        cluster: &str,
        instance: &InstanceId,
    ) -> Result<Option<ContainerInstance>, AwsError> {
        let listed = self
            .client
            .list_container_instances()
            .cluster(cluster)
            .filter(format!("ec2InstanceId == {instance}"))
            .max_results(100)
            .send()
            .await
            .map_err(|e| sdk_error("ListContainerInstances", &e))?;
        let arns = listed.container_instance_arns().to_vec();
        if arns.is_empty() {
            return Ok(None);
        }
        let described = self.describe(cluster, arns).await?;
        Ok(described
            .into_iter()
            .find(|c| c.ec2_instance_id == instance.as_str()))
    }

    async fn describe(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<Vec<ContainerInstance>, AwsError> {
        let mut out = Vec::new();
        for chunk in arns.chunks(100) {
            let d = self
                .client
                .describe_container_instances()
                .cluster(cluster)
                .set_container_instances(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| sdk_error("DescribeContainerInstances", &e))?;
            for c in d.container_instances() {
                let attr = |name: &str| {
                    c.attributes()
                        .iter()
                        .find(|a| a.name() == name)
                        .and_then(|a| a.value())
                        .map(str::to_owned)
                };
                out.push(ContainerInstance {
                    cluster_arn: cluster_arn(
                        cluster,
                        c.container_instance_arn().unwrap_or_default(),
                    ),
                    arn: c.container_instance_arn().unwrap_or_default().to_owned(),
                    ec2_instance_id: c.ec2_instance_id().unwrap_or_default().to_owned(),
                    status: c.status().unwrap_or_default().to_owned(),
                    agent_connected: c.agent_connected(),
                    running_tasks_count: c.running_tasks_count(),
                    pending_tasks_count: c.pending_tasks_count(),
                    instance_type: attr("ecs.instance-type"),
                    availability_zone: attr("ecs.availability-zone"),
                    drain_mark: attr(DRAIN_MARK_ATTRIBUTE).and_then(|v| DrainMark::parse(&v)),
                });
            }
        }
        Ok(out)
    }

    /// Write the marks, then set DRAINING, ten container instances a call per cluster. The drain
    /// never fails with its bookkeeping: a container instance whose first mark could not be
    /// written (ECS allows 10 custom attributes) is still set DRAINING, as `DrainedUnmarked`:
    /// nothing will undo it, and the caller says so. A mark of ours that could not be replaced
    /// fails, so the retry writes it.
    async fn drain_all(
        &self,
        cis: Vec<(ContainerInstance, Option<DrainMark>)>,
    ) -> Vec<(String, Result<DrainResult, AwsError>)> {
        // By cluster: what to set DRAINING, and what to mark.
        let mut work: BTreeMap<String, ClusterDrains> = BTreeMap::new();
        for (ci, mark) in &cis {
            let (drain, mark) = drain_needs(ci, *mark);
            let w = work.entry(ci.cluster_arn.clone()).or_default();
            if drain {
                w.0.push(ci.arn.clone());
            }
            if let Some(m) = mark {
                w.1.push((ci.arn.clone(), m));
            }
        }
        let mut drain_failed: BTreeMap<String, AwsError> = BTreeMap::new();
        let mut mark_failed: BTreeMap<String, AwsError> = BTreeMap::new();
        for (cluster, (drain, marks)) in &work {
            // The mark first: an invocation that dies between the two calls then leaves a marked
            // ACTIVE instance (the retry drains it), never an unmarked drain of ours that
            // nothing would undo (found by the fleet simulator, 9 seeds in 1,000).
            let failed = self.put_marks(cluster, marks).await;
            drain_failed.extend(self.set_draining(cluster, drain).await);
            // A mark that failed gets a second chance once the drain is made (a throttled call,
            // past the SDK's retries); a limit refusal is refused again.
            let again: Vec<(String, DrainMark)> = marks
                .iter()
                .filter(|(arn, _)| failed.contains_key(arn) && !is_limit(&failed[arn]))
                .cloned()
                .collect();
            let again_failed = self.put_marks(cluster, &again).await;
            mark_failed.extend(
                failed
                    .into_iter()
                    .filter(|(arn, e)| is_limit(e) || again_failed.contains_key(arn)),
            );
        }
        cis.into_iter()
            .map(|(ci, mark)| {
                let (drain, mark) = drain_needs(&ci, mark);
                let marked = match (mark, mark_failed.remove(&ci.arn)) {
                    (Some(_), Some(e)) => Err(e),
                    _ => Ok(()),
                };
                let r = match (drain, drain_failed.remove(&ci.arn), marked) {
                    (true, Some(e), _) => Err(e),
                    (true, None, Ok(())) => Ok(DrainResult::Drained),
                    (true, None, Err(e)) => {
                        tracing::warn!(error = %e, container_instance = %ci.arn, "DRAINING without fleetguard's mark: it will not be undone");
                        Ok(DrainResult::DrainedUnmarked)
                    }
                    // At the limit, retrying changes nothing: the drain stands, unmarked.
                    (false, _, Err(e)) if is_limit(&e) => Ok(DrainResult::AlreadyDraining),
                    (false, _, Err(e)) => Err(e),
                    (false, _, Ok(())) => Ok(DrainResult::AlreadyDraining),
                };
                (ci.arn, r)
            })
            .collect()
    }

    /// ACTIVE again, then the mark removed: a failure between the two leaves an ACTIVE instance
    /// with a stale mark, which the next look removes.
    async fn activate(&self, ci: &ContainerInstance) -> Result<(), AwsError> {
        if ci.status != "ACTIVE" {
            let out = self
                .client
                .update_container_instances_state()
                .cluster(&ci.cluster_arn)
                .container_instances(&ci.arn)
                .status(ContainerInstanceStatus::Active)
                .send()
                .await
                .map_err(|e| sdk_error("UpdateContainerInstancesState", &e))?;
            if let Some(f) = out.failures().first() {
                return Err(update_failure(f));
            }
        }
        // A custom attribute is deleted by name and target, without its value.
        let attribute = Attribute::builder()
            .name(DRAIN_MARK_ATTRIBUTE)
            .target_id(&ci.arn)
            .build()
            .map_err(|e| AwsError::other("DeleteAttributes", e.to_string()))?;
        match self
            .client
            .delete_attributes()
            .cluster(&ci.cluster_arn)
            .attributes(attribute)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = sdk_error("DeleteAttributes", &e);
                if e.code.as_deref() == Some("TargetNotFoundException") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// All pages of `ListAttributes` for our mark, by container instance ARN.
    async fn marked(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        let attributes = self
            .client
            .list_attributes()
            .cluster(cluster)
            .target_type(TargetType::ContainerInstance)
            .attribute_name(DRAIN_MARK_ATTRIBUTE)
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| sdk_error("ListAttributes", &e))?;
        Ok(attributes
            .iter()
            .filter(|a| a.name() == DRAIN_MARK_ATTRIBUTE)
            .filter_map(|a| a.target_id().map(str::to_owned))
            .collect())
    }

    /// Every task on the container instance that ECS still lists with `desired`
    /// (`RUNNING`, or `STOPPED` for tasks being stopped): all pages, described 100 at a time.
    async fn tasks_on(
        &self,
        cluster: &str,
        container_instance: &str,
        desired: &str,
    ) -> Result<Vec<Task>, AwsError> {
        let arns = self
            .client
            .list_tasks()
            .cluster(cluster)
            .container_instance(container_instance)
            .desired_status(desired.into())
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| sdk_error("ListTasks", &e))?;
        self.describe_tasks(cluster, arns).await
    }

    /// Every container instance of the cluster with `status` (all when `None`): all pages, 100 a
    /// call, described 100 at a time. Callers check `status` again (moto ignores the filter).
    async fn container_instances(
        &self,
        cluster: &str,
        status: Option<&str>,
    ) -> Result<Vec<ContainerInstance>, AwsError> {
        let arns = self
            .client
            .list_container_instances()
            .cluster(cluster)
            .set_status(status.map(Into::into))
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| sdk_error("ListContainerInstances", &e))?;
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        self.describe(cluster, arns).await
    }

    /// The latest `limit` events of each service (newest first), 10 services a call.
    async fn service_events(
        &self,
        cluster: &str,
        services: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, AwsError> {
        let mut out = Vec::new();
        for chunk in services.chunks(10) {
            let d = self
                .client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| sdk_error("DescribeServices", &e))?;
            for s in d.services() {
                out.push((
                    s.service_name().unwrap_or_default().to_owned(),
                    s.events()
                        .iter()
                        .take(limit)
                        .filter_map(|e| e.message().map(str::to_owned))
                        .collect(),
                ));
            }
        }
        Ok(out)
    }
}

/// The cluster's ARN: given, or built from the container instance's ARN
/// (`arn:aws:ecs:region:account:container-instance/cluster/id`).
fn cluster_arn(cluster: &str, container_instance_arn: &str) -> String {
    if cluster.starts_with("arn:") {
        return cluster.to_owned();
    }
    match container_instance_arn.split_once(":container-instance/") {
        Some((prefix, _)) => format!("{prefix}:cluster/{cluster}"),
        None => cluster.to_owned(),
    }
}

/// A container instance `UpdateContainerInstancesState` reports as failed (HTTP 200 with a
/// `failures` entry): an error naming its reason.
/// ECS's answer to an 11th custom attribute on a resource.
fn is_limit(e: &AwsError) -> bool {
    e.code.as_deref() == Some("AttributeLimitExceededException")
}

fn update_failure(f: &aws_sdk_ecs::types::Failure) -> AwsError {
    AwsError::other(
        "UpdateContainerInstancesState",
        format!(
            "{}: {}",
            f.reason().unwrap_or("failed"),
            f.detail().or(f.arn()).unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_arn_from_container_instance_arn() {
        assert_eq!(
            cluster_arn(
                "prod",
                "arn:aws:ecs:eu-west-1:1:container-instance/prod/abc"
            ),
            "arn:aws:ecs:eu-west-1:1:cluster/prod"
        );
        assert_eq!(
            cluster_arn("arn:aws:ecs:eu-west-1:1:cluster/x", ""),
            "arn:aws:ecs:eu-west-1:1:cluster/x"
        );
    }
}
