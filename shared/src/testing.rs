//! In-memory fakes of every port (feature `testing`), for handler tests that run in milliseconds.
//!
//! [`FakeAws`] is one small world of container instances, tasks, services, target groups, Auto
//! Scaling groups, hooks and pending lifecycle actions, behind the port traits. It records every
//! call by operation name and can fail any operation on demand (throttling, 5xx, a missing
//! cluster), which moto cannot. [`FakeNotifier`] records what would have been delivered.

use crate::notify::{Deadline, DeliveryError, DeliveryReport, Notification};
use crate::ports::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The state behind [`FakeAws`]. Public so tests can arrange and inspect it directly.
#[derive(Debug, Default)]
pub struct World {
    /// Cluster ARNs.
    pub clusters: Vec<String>,
    /// What a cached cluster list still says (an adapter's cache from before a cluster was
    /// created or deleted): returned unless the caller asks for a refresh.
    pub stale_clusters: Option<Vec<String>>,
    pub container_instances: Vec<ContainerInstance>,
    /// (cluster ARN, container instance ARN, task).
    pub tasks: Vec<(String, String, Task)>,
    pub services: Vec<Service>,
    pub task_definitions: BTreeMap<String, TaskDefinition>,
    /// Stopped tasks by (cluster name, service name).
    pub stopped_tasks: BTreeMap<(String, String), Vec<Task>>,
    /// Registrations by target group ARN: (instance id, registration).
    pub targets: BTreeMap<String, Vec<(String, Registration)>>,
    pub groups: Vec<Group>,
    pub group_instances: Vec<GroupInstance>,
    pub hooks: BTreeMap<String, Vec<LifecycleHook>>,
    /// Pending lifecycle actions: (group, hook, instance id).
    pub pending: BTreeSet<(String, String, String)>,
    /// Each pending action's token.
    pub tokens: BTreeMap<(String, String, String), String>,
    /// When each (instance, terminating) activity started, epoch seconds.
    pub activity_starts: BTreeMap<(String, bool), i64>,
    /// Completed actions: (group, hook, instance id, result).
    pub completions: Vec<(String, String, String, LifecycleActionResult)>,
    /// Heartbeats: (group, hook, instance id).
    pub heartbeats: Vec<(String, String, String)>,
    /// Deregistrations: (target group ARN, instance id, port).
    pub deregistered: Vec<(String, String, Option<i32>)>,
    /// Container instances set ACTIVE again (ARNs), in order.
    pub activated: Vec<String>,
    /// Registrations made again: (target group ARN, instance id, port).
    pub registered: Vec<(String, String, Option<i32>)>,
    /// Instances terminated by `TerminateInstanceInAutoScalingGroup` (desired capacity kept).
    pub replaced: Vec<String>,
    /// One-time schedules by name.
    pub schedules: BTreeMap<String, OneTimeSchedule>,
    /// Deregistered targets stay `draining` (the target group's deregistration delay) until the
    /// test removes them; otherwise they are gone at once.
    pub deregistration_delay: bool,
    /// Each `UpdateContainerInstancesState` to DRAINING: (trace tick, container instance ARN),
    /// on the clock messages share (`notify::destinations::fake::tick`).
    pub drain_calls: Vec<(u64, String)>,
    /// Other tools' custom attributes on each container instance (by ARN): ECS refuses an
    /// 11th (`AttributeLimitExceededException`), for the whole `PutAttributes` call.
    pub custom_attributes: BTreeMap<String, usize>,
    /// Every call, by AWS operation name, in order.
    pub calls: Vec<&'static str>,
    /// Operations that fail: (operation, times left, error).
    pub failures: Vec<(&'static str, usize, AwsError)>,
}

impl World {
    /// ECS's answer for a cluster that does not exist (deleted, or never created).
    fn cluster_exists(&self, operation: &'static str, cluster: &str) -> Result<(), AwsError> {
        if self.clusters.iter().any(|c| same_cluster(c, cluster)) {
            Ok(())
        } else {
            Err(AwsError::service(
                operation,
                "ClusterNotFoundException",
                "Cluster not found.",
            ))
        }
    }
}

fn same_cluster(a: &str, b: &str) -> bool {
    a.rsplit('/').next() == b.rsplit('/').next()
}

/// An in-memory AWS behind every port. Clones share the same world.
#[derive(Debug, Clone, Default)]
pub struct FakeAws(Arc<Mutex<World>>);

impl FakeAws {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a call; the injected failure for it, if any is left. Each call first yields to the
    /// runtime, as a network call does, so concurrent invocations interleave between calls.
    async fn call(&self, op: &'static str) -> Result<MutexGuard<'_, World>, AwsError> {
        tokio::task::yield_now().await;
        let mut w = self.world();
        w.calls.push(op);
        if let Some(f) = w.failures.iter_mut().find(|f| f.0 == op && f.1 > 0) {
            f.1 -= 1;
            return Err(f.2.clone());
        }
        Ok(w)
    }

    /// One `PutAttributes` call of marks: all or nothing, as ECS answers it.
    async fn put_marks(&self, marks: &[(&str, DrainMark)]) -> Result<(), AwsError> {
        let mut w = self.call("PutAttributes").await?;
        for (arn, _) in marks {
            let others = w.custom_attributes.get(*arn).copied().unwrap_or(0);
            let ours = w
                .container_instances
                .iter()
                .any(|c| c.arn == *arn && c.drain_mark.is_some());
            if !ours && others >= 10 {
                return Err(AwsError::service(
                    "PutAttributes",
                    "AttributeLimitExceededException",
                    "You can apply up to 10 custom attributes for each resource.",
                ));
            }
        }
        for (arn, mark) in marks {
            for c in w.container_instances.iter_mut().filter(|c| c.arn == *arn) {
                c.drain_mark = Some(*mark);
            }
        }
        Ok(())
    }

    /// Fail the next `times` calls of `op` with `error`.
    pub fn fail(&self, op: &'static str, times: usize, error: AwsError) {
        self.world().failures.push((op, times, error));
    }

    /// Fail the next `times` calls of `op` as throttled, once the SDK's retries are spent.
    pub fn throttle(&self, op: &'static str, times: usize) {
        self.fail(
            op,
            times,
            AwsError::service(op, "Throttling", "Rate exceeded"),
        );
    }

    /// How many calls of `op` were made.
    pub fn calls_of(&self, op: &str) -> usize {
        self.world().calls.iter().filter(|c| **c == op).count()
    }

    // --- arranging the world -------------------------------------------------------------------

    /// A cluster (by name) and its ARN.
    pub fn cluster(&self, name: &str) -> String {
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:cluster/{name}");
        let mut w = self.world();
        if !w.clusters.contains(&arn) {
            w.clusters.push(arn.clone());
        }
        arn
    }

    /// An ACTIVE container instance of `instance` in `cluster` with `tasks` RUNNING service
    /// tasks of `service`; returns its ARN.
    pub fn container_instance(
        &self,
        cluster: &str,
        instance: &str,
        service: &str,
        tasks: usize,
    ) -> String {
        let cluster_arn = self.cluster(cluster);
        let arn =
            format!("arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/{instance}");
        let mut w = self.world();
        w.container_instances.push(ContainerInstance {
            cluster_arn: cluster_arn.clone(),
            arn: arn.clone(),
            ec2_instance_id: instance.to_owned(),
            status: "ACTIVE".into(),
            agent_connected: true,
            running_tasks_count: tasks as i32,
            pending_tasks_count: 0,
            instance_type: Some("m5.large".into()),
            availability_zone: Some("us-east-1a".into()),
            drain_mark: None,
        });
        for i in 0..tasks {
            w.tasks.push((
                cluster_arn.clone(),
                arn.clone(),
                Task {
                    arn: format!(
                        "arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{instance}-{i}"
                    ),
                    last_status: "RUNNING".into(),
                    desired_status: "RUNNING".into(),
                    group: Some(format!("service:{service}")),
                    started_by: Some("ecs-svc/1".into()),
                    task_definition_arn: None,
                    stop_code: None,
                    stopped_reason: None,
                    containers: vec![],
                    stopped_at: None,
                },
            ));
        }
        arn
    }

    /// Stop every task on the container instance of `instance`, as ECS does after DRAINING.
    pub fn stop_tasks_of(&self, instance: &str) {
        let mut w = self.world();
        let arns: Vec<String> = w
            .container_instances
            .iter()
            .filter(|c| c.ec2_instance_id == instance)
            .map(|c| c.arn.clone())
            .collect();
        for (_, ci, t) in w.tasks.iter_mut() {
            if arns.contains(ci) {
                t.last_status = "STOPPED".into();
                t.desired_status = "STOPPED".into();
            }
        }
        for c in w.container_instances.iter_mut() {
            if c.ec2_instance_id == instance {
                c.running_tasks_count = 0;
                c.pending_tasks_count = 0;
            }
        }
    }

    /// A target group (by name) with `instance` registered on `port`; returns its ARN.
    pub fn target(&self, target_group: &str, instance: &str, port: i32) -> String {
        let arn = format!(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{target_group}/0123456789abcdef"
        );
        self.world().targets.entry(arn.clone()).or_default().push((
            instance.to_owned(),
            Registration {
                target_group_arn: arn.clone(),
                port: Some(port),
                state: "healthy".into(),
            },
        ));
        arn
    }

    /// An Auto Scaling group with tags and target groups.
    pub fn group(&self, name: &str, tags: &[(&str, &str)], target_groups: &[String]) {
        self.world().groups.push(Group {
            name: name.to_owned(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            target_group_arns: target_groups.to_vec(),
        });
    }

    /// `instance` in `group`, in `lifecycle_state`.
    pub fn group_instance(&self, group: &str, instance: &str, lifecycle_state: &str) {
        let mut w = self.world();
        w.group_instances.retain(|i| i.instance_id != instance);
        w.group_instances.push(GroupInstance {
            instance_id: instance.to_owned(),
            auto_scaling_group_name: group.to_owned(),
            availability_zone: Some("us-east-1a".into()),
            instance_type: Some("m5.large".into()),
            lifecycle_state: lifecycle_state.to_owned(),
        });
    }

    /// A lifecycle hook of `group`.
    pub fn hook(
        &self,
        group: &str,
        name: &str,
        terminating: bool,
        heartbeat_timeout_secs: i64,
        metadata: Option<&str>,
    ) {
        self.world()
            .hooks
            .entry(group.to_owned())
            .or_default()
            .push(LifecycleHook {
                name: name.to_owned(),
                transition: if terminating {
                    "autoscaling:EC2_INSTANCE_TERMINATING".into()
                } else {
                    "autoscaling:EC2_INSTANCE_LAUNCHING".into()
                },
                heartbeat_timeout_secs,
                default_result: "ABANDON".into(),
                notification_metadata: metadata.map(str::to_owned),
            });
    }

    /// A pending lifecycle action of `hook` for `instance`, whose activity started at `started`.
    /// It has no token unless [`FakeAws::token`] gives it one (then only that token completes
    /// it).
    pub fn pending_action(
        &self,
        group: &str,
        hook: &str,
        instance: &str,
        terminating: bool,
        started: i64,
    ) {
        let mut w = self.world();
        let key = (group.to_owned(), hook.to_owned(), instance.to_owned());
        w.tokens.remove(&key);
        w.pending.insert(key);
        w.activity_starts
            .insert((instance.to_owned(), terminating), started);
    }

    /// The token of the pending action of `hook` for `instance`.
    pub fn token(&self, group: &str, hook: &str, instance: &str, token: &str) {
        self.world().tokens.insert(
            (group.to_owned(), hook.to_owned(), instance.to_owned()),
            token.to_owned(),
        );
    }
}

impl ContainerInstances for FakeAws {
    async fn clusters(
        &self,
        configured: &[String],
        refresh: bool,
    ) -> Result<Vec<String>, AwsError> {
        if let Some(named) = crate::ports::configured_clusters(configured) {
            return Ok(named);
        }
        let w = self.call("ListClusters").await?;
        match &w.stale_clusters {
            Some(stale) if !refresh => Ok(stale.clone()),
            _ => Ok(w.clusters.clone()),
        }
    }

    async fn find_container_instance(
        &self,
        cluster: &str,
        instance: &crate::ids::InstanceId,
    ) -> Result<Option<ContainerInstance>, AwsError> {
        let w = self.call("ListContainerInstances").await?;
        w.cluster_exists("ListContainerInstances", cluster)?;
        Ok(w.container_instances
            .iter()
            .find(|c| {
                same_cluster(&c.cluster_arn, cluster) && c.ec2_instance_id == instance.as_str()
            })
            .cloned())
    }

    async fn describe(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<Vec<ContainerInstance>, AwsError> {
        let w = self.call("DescribeContainerInstances").await?;
        w.cluster_exists("DescribeContainerInstances", cluster)?;
        Ok(w.container_instances
            .iter()
            .filter(|c| arns.contains(&c.arn))
            .cloned()
            .collect())
    }

    async fn container_instances(
        &self,
        cluster: &str,
        status: Option<&str>,
    ) -> Result<Vec<ContainerInstance>, AwsError> {
        let w = self.call("ListContainerInstances").await?;
        w.cluster_exists("ListContainerInstances", cluster)?;
        Ok(w.container_instances
            .iter()
            .filter(|c| same_cluster(&c.cluster_arn, cluster))
            .filter(|c| status.is_none_or(|s| c.status == s))
            .cloned()
            .collect())
    }

    async fn drain_all(
        &self,
        cis: Vec<(ContainerInstance, Option<DrainMark>)>,
    ) -> Vec<(String, Result<DrainResult, AwsError>)> {
        // As the adapter: ten a call per cluster, marks beside them.
        let mut out = Vec::new();
        let mut by_cluster: BTreeMap<String, Vec<(ContainerInstance, Option<DrainMark>)>> =
            BTreeMap::new();
        for (ci, mark) in cis {
            by_cluster
                .entry(ci.cluster_arn.clone())
                .or_default()
                .push((ci, mark));
        }
        for chunk in by_cluster.values().flat_map(|v| v.chunks(10)) {
            let wanted: Vec<(&ContainerInstance, bool, Option<DrainMark>)> = chunk
                .iter()
                .map(|(ci, m)| {
                    let (d, m) = drain_needs(ci, *m);
                    (ci, d, m)
                })
                .collect();
            // As the adapter: the marks first (a refused call of several tried again one by one).
            let marks: Vec<(&str, DrainMark)> = wanted
                .iter()
                .filter_map(|w| Some((w.0.arn.as_str(), w.2?)))
                .collect();
            let mut mark_failed: BTreeMap<&str, AwsError> = BTreeMap::new();
            if !marks.is_empty()
                && let Err(e) = self.put_marks(&marks).await
            {
                if marks.len() == 1 {
                    mark_failed.insert(marks[0].0, e);
                } else {
                    for one in &marks {
                        if let Err(e) = self.put_marks(std::slice::from_ref(one)).await {
                            mark_failed.insert(one.0, e);
                        }
                    }
                }
            }
            // Then the drain, whatever became of the marks.
            let to_drain: Vec<&str> = wanted
                .iter()
                .filter(|w| w.1)
                .map(|w| w.0.arn.as_str())
                .collect();
            let update = if to_drain.is_empty() {
                Ok(())
            } else {
                {
                    let t = crate::notify::destinations::fake::tick();
                    let mut w = self.world();
                    for arn in &to_drain {
                        w.drain_calls.push((t, (*arn).to_owned()));
                    }
                }
                self.call("UpdateContainerInstancesState")
                    .await
                    .map(|mut w| {
                        for c in w.container_instances.iter_mut() {
                            if to_drain.contains(&c.arn.as_str()) {
                                c.status = "DRAINING".into();
                            }
                        }
                    })
            };
            // As the adapter: a mark that failed other than at the limit is tried once more.
            let again: Vec<(&str, DrainMark)> = marks
                .iter()
                .filter(|(arn, _)| {
                    mark_failed.get(arn).is_some_and(|e| {
                        e.code.as_deref() != Some("AttributeLimitExceededException")
                    })
                })
                .copied()
                .collect();
            for one in &again {
                if self.put_marks(std::slice::from_ref(one)).await.is_ok() {
                    mark_failed.remove(one.0);
                }
            }
            for (ci, drain, mark) in wanted {
                let marked = match (mark, mark_failed.remove(ci.arn.as_str())) {
                    (Some(_), Some(e)) => Err(e),
                    _ => Ok(()),
                };
                let r = match (drain, &update, marked) {
                    (true, Err(e), _) => Err(e.clone()),
                    (true, Ok(()), Ok(())) => Ok(DrainResult::Drained),
                    (true, Ok(()), Err(_)) => Ok(DrainResult::DrainedUnmarked),
                    (false, _, Err(e))
                        if e.code.as_deref() == Some("AttributeLimitExceededException") =>
                    {
                        Ok(DrainResult::AlreadyDraining)
                    }
                    (false, _, Err(e)) => Err(e),
                    (false, _, Ok(())) => Ok(DrainResult::AlreadyDraining),
                };
                out.push((ci.arn.clone(), r));
            }
        }
        out
    }

    async fn activate(&self, ci: &ContainerInstance) -> Result<(), AwsError> {
        if ci.status != "ACTIVE" {
            let mut w = self.call("UpdateContainerInstancesState").await?;
            for c in w.container_instances.iter_mut().filter(|c| c.arn == ci.arn) {
                c.status = "ACTIVE".into();
            }
            w.activated.push(ci.arn.clone());
            drop(w);
        }
        let mut w = self.call("DeleteAttributes").await?;
        for c in w.container_instances.iter_mut().filter(|c| c.arn == ci.arn) {
            c.drain_mark = None;
        }
        Ok(())
    }

    async fn marked(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        let w = self.call("ListAttributes").await?;
        w.cluster_exists("ListAttributes", cluster)?;
        Ok(w.container_instances
            .iter()
            .filter(|c| same_cluster(&c.cluster_arn, cluster) && c.drain_mark.is_some())
            .map(|c| c.arn.clone())
            .collect())
    }

    async fn tasks_on(
        &self,
        cluster: &str,
        container_instance: &str,
        desired: &str,
    ) -> Result<Vec<Task>, AwsError> {
        let w = self.call("ListTasks").await?;
        Ok(w.tasks
            .iter()
            .filter(|(c, ci, t)| {
                same_cluster(c, cluster) && ci == container_instance && t.desired_status == desired
            })
            .map(|(_, _, t)| t.clone())
            .collect())
    }

    async fn service_events(
        &self,
        _cluster: &str,
        services: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, AwsError> {
        let w = self.call("DescribeServices").await?;
        Ok(w.services
            .iter()
            .filter(|s| services.contains(&s.name))
            .map(|s| {
                (
                    s.name.clone(),
                    s.events
                        .iter()
                        .take(limit)
                        .map(|(_, m)| m.clone())
                        .collect(),
                )
            })
            .collect())
    }
}

impl Services for FakeAws {
    async fn service(&self, cluster: &str, service: &str) -> Result<Option<Service>, AwsError> {
        let w = self.call("DescribeServices").await?;
        Ok(w.services
            .iter()
            .find(|s| s.name == service && same_cluster(&s.cluster_arn, cluster))
            .cloned())
    }

    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError> {
        let w = self.call("DescribeTaskDefinition").await?;
        w.task_definitions.get(arn).cloned().ok_or_else(|| {
            AwsError::service(
                "DescribeTaskDefinition",
                "ClientException",
                "Unable to describe task definition.",
            )
        })
    }

    async fn stopped_tasks_of_service(
        &self,
        cluster: &str,
        service: &str,
        _max_pages: usize,
    ) -> Result<Vec<Task>, AwsError> {
        let w = self.call("ListTasks").await?;
        let key = (
            cluster.rsplit('/').next().unwrap_or(cluster).to_owned(),
            service.to_owned(),
        );
        Ok(w.stopped_tasks.get(&key).cloned().unwrap_or_default())
    }
}

impl TargetGroups for FakeAws {
    async fn registrations(
        &self,
        target_group_arn: &str,
        instance_id: &str,
    ) -> Result<Vec<Registration>, AwsError> {
        let w = self.call("DescribeTargetHealth").await?;
        Ok(w.targets
            .get(target_group_arn)
            .map(|t| {
                t.iter()
                    .filter(|(i, _)| i == instance_id)
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn target_group_registrations(
        &self,
        target_group_arn: &str,
    ) -> Result<BTreeMap<String, Vec<Registration>>, AwsError> {
        let w = self.call("DescribeTargetHealth").await?;
        let mut out: BTreeMap<String, Vec<Registration>> = BTreeMap::new();
        for (i, r) in w.targets.get(target_group_arn).into_iter().flatten() {
            out.entry(i.clone()).or_default().push(r.clone());
        }
        Ok(out)
    }

    async fn deregister(&self, instance_id: &str, regs: &[Registration]) -> Result<(), AwsError> {
        let mut w = self.call("DeregisterTargets").await?;
        let delay = w.deregistration_delay;
        for r in regs {
            if let Some(t) = w.targets.get_mut(&r.target_group_arn) {
                if delay {
                    for (_, x) in t
                        .iter_mut()
                        .filter(|(i, x)| i == instance_id && x.port == r.port)
                    {
                        x.state = "draining".into();
                    }
                } else {
                    t.retain(|(i, x)| !(i == instance_id && x.port == r.port));
                }
            }
            w.deregistered
                .push((r.target_group_arn.clone(), instance_id.to_owned(), r.port));
        }
        Ok(())
    }

    async fn register(&self, instance_id: &str, regs: &[Registration]) -> Result<(), AwsError> {
        let mut w = self.call("RegisterTargets").await?;
        for r in regs {
            let t = w.targets.entry(r.target_group_arn.clone()).or_default();
            t.retain(|(i, x)| !(i == instance_id && x.port == r.port));
            t.push((
                instance_id.to_owned(),
                Registration {
                    target_group_arn: r.target_group_arn.clone(),
                    port: r.port,
                    state: "initial".into(),
                },
            ));
            w.registered
                .push((r.target_group_arn.clone(), instance_id.to_owned(), r.port));
        }
        Ok(())
    }
}

impl Schedules for FakeAws {
    async fn schedule(&self, name: &str) -> Result<Option<OneTimeSchedule>, AwsError> {
        let w = self.call("GetSchedule").await?;
        Ok(w.schedules.get(name).cloned())
    }

    async fn put(&self, s: &OneTimeSchedule) -> Result<ScheduleWrite, AwsError> {
        let mut w = self.call("CreateSchedule").await?;
        let out = match w.schedules.get(&s.name) {
            None => ScheduleWrite::Created,
            Some(old) if old.at == s.at && old.input == s.input => ScheduleWrite::Unchanged,
            Some(_) => ScheduleWrite::Updated,
        };
        if out == ScheduleWrite::Updated {
            w.calls.push("UpdateSchedule");
        }
        w.schedules.insert(s.name.clone(), s.clone());
        Ok(out)
    }

    async fn delete(&self, name: &str) -> Result<bool, AwsError> {
        let mut w = self.call("DeleteSchedule").await?;
        Ok(w.schedules.remove(name).is_some())
    }
}

impl AutoScalingGroups for FakeAws {
    async fn terminate_and_replace(&self, instance_id: &str) -> Result<bool, AwsError> {
        let mut w = self.call("TerminateInstanceInAutoScalingGroup").await?;
        let Some(i) = w
            .group_instances
            .iter_mut()
            .find(|i| i.instance_id == instance_id)
        else {
            return Ok(false);
        };
        if i.lifecycle_state.starts_with("Terminating") {
            return Ok(false);
        }
        i.lifecycle_state = "Terminating".into();
        w.replaced.push(instance_id.to_owned());
        Ok(true)
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<GroupInstance>, AwsError> {
        let w = self.call("DescribeAutoScalingInstances").await?;
        Ok(w.group_instances
            .iter()
            .find(|i| i.instance_id == instance_id)
            .cloned())
    }

    async fn group(&self, name: &str) -> Result<Option<Group>, AwsError> {
        let w = self.call("DescribeAutoScalingGroups").await?;
        Ok(w.groups.iter().find(|g| g.name == name).cloned())
    }

    async fn groups(
        &self,
        names: &[String],
        tag: Option<(&str, Option<&str>)>,
    ) -> Result<Vec<GroupDetail>, AwsError> {
        let w = self.call("DescribeAutoScalingGroups").await?;
        Ok(w.groups
            .iter()
            .filter(|g| names.is_empty() || names.contains(&g.name))
            .filter(|g| {
                !names.is_empty()
                    || tag.is_none_or(|(k, v)| {
                        g.tags.get(k).is_some_and(|x| v.is_none_or(|v| v == x))
                    })
            })
            .map(|g| GroupDetail {
                group: g.clone(),
                instances: w
                    .group_instances
                    .iter()
                    .filter(|i| i.auto_scaling_group_name == g.name)
                    .cloned()
                    .collect(),
            })
            .collect())
    }

    async fn hooks(&self, group: &str) -> Result<Vec<LifecycleHook>, AwsError> {
        let w = self.call("DescribeLifecycleHooks").await?;
        Ok(w.hooks.get(group).cloned().unwrap_or_default())
    }

    async fn complete(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
        token: Option<&str>,
        result: LifecycleActionResult,
    ) -> Result<Completion, AwsError> {
        let mut w = self.call("CompleteLifecycleAction").await?;
        let key = (group.to_owned(), hook.to_owned(), instance_id.to_owned());
        // A token names one action: another action of the same instance is not it.
        if token.is_some_and(|t| w.tokens.get(&key).is_some_and(|k| k != t)) {
            return Ok(Completion::AlreadyComplete);
        }
        if !w.pending.remove(&key) {
            return Ok(Completion::AlreadyComplete);
        }
        w.tokens.remove(&key);
        w.completions.push((key.0, key.1, key.2, result));
        // The last of the instance's pending actions lets it proceed.
        if !w.pending.iter().any(|(_, _, i)| i == instance_id) {
            for i in w
                .group_instances
                .iter_mut()
                .filter(|i| i.instance_id == instance_id)
            {
                i.lifecycle_state = i.lifecycle_state.replace(":Wait", ":Proceed");
            }
        }
        Ok(Completion::Completed)
    }

    async fn heartbeat(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
    ) -> Result<bool, AwsError> {
        let mut w = self.call("RecordLifecycleActionHeartbeat").await?;
        let key = (group.to_owned(), hook.to_owned(), instance_id.to_owned());
        if !w.pending.contains(&key) {
            return Ok(false);
        }
        w.heartbeats.push(key);
        Ok(true)
    }

    async fn activity_start_times(
        &self,
        _group: &str,
        wanted: &[(String, bool)],
        _max_pages: usize,
    ) -> Result<BTreeMap<String, i64>, AwsError> {
        let w = self.call("DescribeScalingActivities").await?;
        Ok(wanted
            .iter()
            .filter_map(|(i, t)| {
                w.activity_starts
                    .get(&(i.clone(), *t))
                    .map(|s| (i.clone(), *s))
            })
            .collect())
    }
}

/// A clock the test sets and moves.
#[derive(Debug, Clone, Default)]
pub struct FakeClock(Arc<std::sync::atomic::AtomicI64>);

impl FakeClock {
    pub fn at(epoch_secs: i64) -> Self {
        Self(Arc::new(std::sync::atomic::AtomicI64::new(epoch_secs)))
    }

    pub fn set(&self, epoch_secs: i64) {
        self.0
            .store(epoch_secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The real notification pipeline over an in-memory ledger (DynamoDB's semantics) and the fake
/// services, routed to one fake Slack webhook (`slack:default`). It also keeps the
/// notifications that reached it, for handler tests.
#[derive(Debug, Clone)]
pub struct FakeNotifier {
    pub pipeline: crate::notify::Notifier<
        crate::notify::ledger::MemoryLedger,
        crate::notify::destinations::fake::FakeServices,
    >,
    sent: Arc<Mutex<Vec<Notification>>>,
}

impl Default for FakeNotifier {
    fn default() -> Self {
        Self::over(crate::notify::ledger::MemoryLedger::local())
    }
}

impl FakeNotifier {
    /// Over this environment's memory (no table).
    pub fn new() -> Self {
        Self::default()
    }

    /// Over a table shared by every environment (`DEDUPE_TABLE`).
    pub fn with_dedupe() -> Self {
        Self::over(crate::notify::ledger::MemoryLedger::table(
            crate::time::now_epoch,
        ))
    }

    pub fn over(ledger: crate::notify::ledger::MemoryLedger) -> Self {
        Self::with_services(
            ledger,
            crate::notify::destinations::fake::FakeServices::default(),
        )
    }

    /// A table and services on a virtual clock (the simulator's).
    pub fn on_clock(clock: impl Fn() -> i64 + Clone + Send + Sync + 'static) -> Self {
        Self::with_services(
            crate::notify::ledger::MemoryLedger::table(clock.clone()),
            crate::notify::destinations::fake::FakeServices::new(clock),
        )
    }

    fn with_services(
        ledger: crate::notify::ledger::MemoryLedger,
        services: crate::notify::destinations::fake::FakeServices,
    ) -> Self {
        let dest = crate::notify::Destination::SlackSecret {
            secret_id: "default".into(),
        };
        Self {
            pipeline: crate::notify::Notifier::with(
                crate::notify::Rules::default(),
                vec![dest],
                ledger,
                services,
            ),
            sent: Arc::default(),
        }
    }

    /// The fake services behind the pipeline: what landed, faults to inject.
    pub fn services(&self) -> &crate::notify::destinations::fake::FakeServices {
        self.pipeline.services()
    }

    /// Every notification delivered so far (a duplicate the ledger refused is not).
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Make every call fail with a 500 (the destination down), or succeed again with `None`.
    pub fn fail_with(&self, destination: Option<&str>) {
        self.pipeline.services().set_down(destination.is_some());
    }
}

impl crate::ports::Notify for FakeNotifier {
    async fn send(
        &self,
        n: Notification,
        deadline: Deadline,
    ) -> Result<DeliveryReport, DeliveryError> {
        let report = self.pipeline.send(n.clone(), deadline).await?;
        if !report.delivered.is_empty() {
            self.sent.lock().unwrap_or_else(|e| e.into_inner()).push(n);
        }
        Ok(report)
    }

    async fn remember(&self, fact: &str, ttl: Duration) {
        self.pipeline.remember(fact, ttl).await
    }

    async fn remembered(&self, fact: &str) -> bool {
        self.pipeline.remembered(fact).await
    }

    async fn version(&self, key: &str) -> Option<(i64, String)> {
        self.pipeline.version(key).await
    }

    async fn keep_version(&self, key: &str, version: i64, label: &str, ttl: Duration) -> bool {
        self.pipeline.keep_version(key, version, label, ttl).await
    }

    async fn forget(&self, fact: &str) {
        self.pipeline.forget(fact).await
    }

    async fn stash(&self, key: &str, n: &Notification) -> bool {
        self.pipeline.stash(key, n).await
    }

    async fn stashed(&self, key: &str) -> Option<Notification> {
        self.pipeline.stashed(key).await
    }

    async fn unstash(&self, key: &str) {
        self.pipeline.unstash(key).await
    }

    async fn stashed_keys(&self) -> Vec<String> {
        self.pipeline.stashed_keys().await
    }
}

impl crate::kept_marks::MarkLedger for FakeNotifier {
    async fn keep_mark(&self, m: &crate::kept_marks::KeptMark) -> bool {
        self.pipeline.keep_mark(m).await
    }

    async fn kept_mark(&self, instance: &str) -> Option<crate::kept_marks::KeptMark> {
        self.pipeline.kept_mark(instance).await
    }

    async fn drop_mark(&self, place: &crate::kept_marks::MarkPlace) {
        self.pipeline.drop_mark(place).await
    }

    async fn kept_marks(&self) -> Vec<crate::kept_marks::MarkPlace> {
        self.pipeline.kept_marks().await
    }
}

/// A sample event from the repository's `events/` folder.
pub fn sample(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// [`invoke`], with the EMF lines the invocation emitted.
pub async fn invoke_observed<F: crate::serve::Function>(
    function: &F,
    event: &serde_json::Value,
) -> (
    Result<crate::serve::Summary, crate::serve::Error>,
    Vec<String>,
) {
    crate::serve::handle_observed(function, event, Deadline::after(Duration::from_secs(60))).await
}

/// Run one payload through the invocation envelope with a minute's budget.
pub async fn invoke<F: crate::serve::Function>(
    function: &F,
    event: &serde_json::Value,
) -> Result<crate::serve::Summary, crate::serve::Error> {
    crate::serve::handle(function, event, Deadline::after(Duration::from_secs(60))).await
}
