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

#[path = "testing_aws.rs"]
mod aws;
#[path = "testing_ecs.rs"]
mod ecs;
#[path = "testing_notifier.rs"]
mod notifier;
pub use notifier::FakeNotifier;

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
    /// EC2 instances terminated: ELBv2 refuses to register them (`InvalidTarget`).
    pub terminated: BTreeSet<String>,
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
