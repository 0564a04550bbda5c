//! ECS: find an EC2 instance's container instance, set it DRAINING, list what runs on it.

use super::AwsError;
use crate::ids::InstanceId;
use aws_sdk_ecs::types::ContainerInstanceStatus;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// A container instance as ECS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInstance {
    pub cluster_arn: String,
    pub arn: String,
    pub ec2_instance_id: String,
    /// `ACTIVE`, `DRAINING`, …
    pub status: String,
    pub agent_connected: bool,
    pub running_tasks_count: i32,
    pub pending_tasks_count: i32,
    pub instance_type: Option<String>,
    pub availability_zone: Option<String>,
}

impl ContainerInstance {
    pub fn cluster_name(&self) -> &str {
        self.cluster_arn
            .rsplit('/')
            .next()
            .unwrap_or(&self.cluster_arn)
    }
}

/// A task, as much of it as the functions use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub arn: String,
    pub last_status: String,
    pub desired_status: String,
    /// `service:<name>` for service tasks.
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub task_definition_arn: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub containers: Vec<TaskContainer>,
    /// Epoch seconds.
    pub stopped_at: Option<i64>,
}

/// A container of a task, for why it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContainer {
    pub name: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub last_status: Option<String>,
}

impl Task {
    pub fn service_name(&self) -> Option<&str> {
        self.group.as_deref()?.strip_prefix("service:")
    }
}

/// What a drain call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainResult {
    Drained,
    AlreadyDraining,
}

#[derive(Debug, Clone)]
pub struct Ecs {
    client: aws_sdk_ecs::Client,
    /// `ListClusters`, once per execution environment.
    clusters: Arc<OnceCell<Vec<String>>>,
}

impl Ecs {
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        Self {
            client,
            clusters: Arc::new(OnceCell::new()),
        }
    }

    /// The configured clusters, or every cluster of the account (listed once and cached).
    pub async fn clusters(&self, configured: &[String]) -> Result<Vec<String>, AwsError> {
        if !configured.is_empty() {
            return Ok(configured.to_vec());
        }
        self.clusters
            .get_or_try_init(|| async {
                self.client
                    .list_clusters()
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .map_err(|e| AwsError::new("ListClusters", &e))
            })
            .await
            .cloned()
    }

    /// The container instance of `instance` in `cluster`: `ListContainerInstances` filtered by
    /// `ec2InstanceId`, then `DescribeContainerInstances`, whose `ec2InstanceId` is checked (a
    /// filter that is ignored, as moto does, must not make us drain the wrong instance).
    pub async fn find_container_instance(
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
            .map_err(|e| AwsError::new("ListContainerInstances", &e))?;
        let arns = listed.container_instance_arns().to_vec();
        if arns.is_empty() {
            return Ok(None);
        }
        let described = self.describe(cluster, arns).await?;
        Ok(described
            .into_iter()
            .find(|c| c.ec2_instance_id == instance.as_str()))
    }

    /// Search `clusters` in parallel; the first container instance found.
    pub async fn find_in_clusters(
        &self,
        clusters: &[String],
        instance: &InstanceId,
    ) -> Result<Option<ContainerInstance>, AwsError> {
        let mut set = tokio::task::JoinSet::new();
        for c in clusters {
            let (me, c, i) = (self.clone(), c.clone(), instance.clone());
            set.spawn(async move { me.find_container_instance(&c, &i).await });
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
        // A cluster we could not search may hold the instance: that is a failure, not "not found".
        match (found, first_error) {
            (Some(ci), _) => Ok(Some(ci)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    pub async fn describe(
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
                .map_err(|e| AwsError::new("DescribeContainerInstances", &e))?;
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
                });
            }
        }
        Ok(out)
    }

    /// Set DRAINING. Already DRAINING is a no-op and makes no call.
    pub async fn drain(&self, ci: &ContainerInstance) -> Result<DrainResult, AwsError> {
        if ci.status == "DRAINING" {
            return Ok(DrainResult::AlreadyDraining);
        }
        let out = self
            .client
            .update_container_instances_state()
            .cluster(&ci.cluster_arn)
            .container_instances(&ci.arn)
            .status(ContainerInstanceStatus::Draining)
            .send()
            .await
            .map_err(|e| AwsError::new("UpdateContainerInstancesState", &e))?;
        if let Some(f) = out.failures().first() {
            return Err(AwsError::other(
                "UpdateContainerInstancesState",
                format!(
                    "{}: {}",
                    f.reason().unwrap_or("failed"),
                    f.detail().or(f.arn()).unwrap_or_default()
                ),
            ));
        }
        Ok(DrainResult::Drained)
    }

    /// Every task on the container instance that ECS still lists with `desired`
    /// (`RUNNING`, or `STOPPED` for tasks being stopped): all pages, described 100 at a time.
    pub async fn tasks_on(
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
            .map_err(|e| AwsError::new("ListTasks", &e))?;
        self.describe_tasks(cluster, arns).await
    }

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
                .map_err(|e| AwsError::new("DescribeTasks", &e))?;
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

impl Ecs {
    /// Every container instance of the cluster with `status` (all when `None`): all pages, 100 a
    /// call, described 100 at a time. Callers check `status` again (moto ignores the filter).
    pub async fn container_instances(
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
            .map_err(|e| AwsError::new("ListContainerInstances", &e))?;
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        self.describe(cluster, arns).await
    }

    /// Every task ECS still knows on the container instance, whatever its desired status: the
    /// ones desired RUNNING and the ones being stopped (desired STOPPED, possibly still running).
    pub async fn all_tasks_on(
        &self,
        cluster: &str,
        container_instance: &str,
    ) -> Result<Vec<Task>, AwsError> {
        let (running, stopping) = tokio::join!(
            self.tasks_on(cluster, container_instance, "RUNNING"),
            self.tasks_on(cluster, container_instance, "STOPPED")
        );
        let mut all = running?;
        all.extend(stopping?);
        all.sort_by(|a, b| a.arn.cmp(&b.arn));
        all.dedup_by(|a, b| a.arn == b.arn);
        Ok(all)
    }

    /// The latest `limit` events of each service (newest first), 10 services a call.
    pub async fn service_events(
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
                .map_err(|e| AwsError::new("DescribeServices", &e))?;
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

/// A service deployment, as `DescribeServices` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub task_definition_arn: String,
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub desired_count: i32,
    pub running_count: i32,
    pub failed_tasks: i32,
}

/// A service: its deployments, circuit breaker and latest events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub cluster_arn: String,
    pub deployments: Vec<Deployment>,
    /// (enabled, rollback) of the deployment circuit breaker.
    pub circuit_breaker: Option<(bool, bool)>,
    /// Newest first: (epoch seconds, message).
    pub events: Vec<(Option<i64>, String)>,
}

/// A container definition: image and awslogs settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub essential: bool,
    /// (log group, region, stream prefix) with the awslogs driver.
    pub awslogs: Option<(String, Option<String>, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinition {
    pub arn: String,
    pub family: String,
    pub revision: i32,
    pub containers: Vec<ContainerDefinition>,
}

impl Ecs {
    pub async fn service(&self, cluster: &str, service: &str) -> Result<Option<Service>, AwsError> {
        let d = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| AwsError::new("DescribeServices", &e))?;
        Ok(d.services().first().map(|s| Service {
            name: s.service_name().unwrap_or_default().to_owned(),
            cluster_arn: s.cluster_arn().unwrap_or(cluster).to_owned(),
            deployments: s
                .deployments()
                .iter()
                .map(|d| Deployment {
                    id: d.id().unwrap_or_default().to_owned(),
                    status: d.status().unwrap_or_default().to_owned(),
                    task_definition_arn: d.task_definition().unwrap_or_default().to_owned(),
                    rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                    rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
                    desired_count: d.desired_count(),
                    running_count: d.running_count(),
                    failed_tasks: d.failed_tasks(),
                })
                .collect(),
            circuit_breaker: s
                .deployment_configuration()
                .and_then(|c| c.deployment_circuit_breaker())
                .map(|b| (b.enable(), b.rollback())),
            events: s
                .events()
                .iter()
                .map(|e| {
                    (
                        e.created_at().map(|d| d.secs()),
                        e.message().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        }))
    }

    pub async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError> {
        let d = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| AwsError::new("DescribeTaskDefinition", &e))?;
        let td = d.task_definition().ok_or_else(|| {
            AwsError::other("DescribeTaskDefinition", "no task definition returned")
        })?;
        Ok(TaskDefinition {
            arn: td.task_definition_arn().unwrap_or(arn).to_owned(),
            family: td.family().unwrap_or_default().to_owned(),
            revision: td.revision(),
            containers: td
                .container_definitions()
                .iter()
                .map(|c| ContainerDefinition {
                    name: c.name().unwrap_or_default().to_owned(),
                    image: c.image().unwrap_or_default().to_owned(),
                    essential: c.essential().unwrap_or(true),
                    awslogs: c
                        .log_configuration()
                        .filter(|l| l.log_driver().as_str() == "awslogs")
                        .and_then(|l| {
                            let o = l.options()?;
                            Some((
                                o.get("awslogs-group")?.clone(),
                                o.get("awslogs-region").cloned(),
                                o.get("awslogs-stream-prefix").cloned(),
                            ))
                        }),
                })
                .collect(),
        })
    }

    /// The service's stopped tasks ECS still lists (about an hour), newest pages first, at most
    /// `max_pages` pages of 100, described.
    pub async fn stopped_tasks_of_service(
        &self,
        cluster: &str,
        service: &str,
        max_pages: usize,
    ) -> Result<Vec<Task>, AwsError> {
        let mut arns = Vec::new();
        let mut token = None;
        for _ in 0..max_pages {
            let out = self
                .client
                .list_tasks()
                .cluster(cluster)
                .service_name(service)
                .desired_status("STOPPED".into())
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| AwsError::new("ListTasks", &e))?;
            arns.extend(out.task_arns().iter().cloned());
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        self.describe_tasks(cluster, arns).await
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

/// Tasks per service (`service:<name>` group), standalone tasks under `(standalone)`.
pub fn count_by_service(tasks: &[Task]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for t in tasks {
        let key = t
            .service_name()
            .map(str::to_owned)
            .unwrap_or_else(|| "(standalone)".to_owned());
        *m.entry(key).or_insert(0) += 1;
    }
    m
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
