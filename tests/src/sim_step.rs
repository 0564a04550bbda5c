//! One event of the fleet's timeline, applied.

use super::*;

impl Sim {
    pub(super) async fn step(&mut self, t: i64, ev: Ev) {
        self.expire_hooks(t);
        self.now = t.max(self.now);
        self.fire_schedules();
        match ev {
            Ev::ScaleIn(i) => {
                let (id, group) = (
                    self.instances[i].id.clone(),
                    self.instances[i].group.clone(),
                );
                self.instances[i].terminating_since = Some(self.now);
                let warm = self.instances[i].warm;
                self.aws.group_instance(
                    &group,
                    &id,
                    if warm {
                        "Warmed:Pending:Wait"
                    } else {
                        "Terminating:Wait"
                    },
                );
                let token = self.start_our_action(i, OUR_HOOK, true);
                if group == "g1" {
                    self.aws
                        .pending_action(&group, FOREIGN_HOOK, &id, true, self.now);
                    let t = self.now + self.rng.random_range(20..400);
                    self.at(t, Ev::ForeignComplete(i));
                    if self.managed_draining {
                        self.aws
                            .pending_action(&group, MANAGED_HOOK, &id, true, self.now);
                        let t = self.now + self.rng.random_range(1..30);
                        self.at(t, Ev::EcsManaged(i));
                    }
                }
                let mut detail = json!({
                    "LifecycleActionToken": token,
                    "AutoScalingGroupName": group, "LifecycleHookName": OUR_HOOK,
                    "EC2InstanceId": id,
                    "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                    "NotificationMetadata": "{\"cluster\": \"prod\"}",
                });
                if self.late_cluster && group == "g1" {
                    detail["NotificationMetadata"] = Value::Null;
                }
                if warm {
                    detail["Origin"] = json!("AutoScalingGroup");
                    detail["Destination"] = json!("WarmPool");
                }
                let e = self.envelope(
                    "EC2 Instance-terminate Lifecycle Action",
                    "aws.autoscaling",
                    detail,
                );
                self.emit(e);
                // Some of them get a Spot warning on the way out too.
                if !warm && self.rng.random_bool(0.2) {
                    let t = self.now + self.rng.random_range(0..30);
                    self.at(t, Ev::SpotWarning(i));
                }
            }
            Ev::Spot(j, step) => self.spot_step(j, step).await,
            Ev::Maint(j, step) => self.maintenance_step(j, step).await,
            Ev::MaintTasksStop(j) => {
                self.maintenance_tasks_stopped(j);
                self.observe();
            }
            Ev::Invoke(payload, attempt) => self.invoke(&payload, attempt).await,
            Ev::InvokeTogether(payload) => self.invoke_together(&payload).await,
            Ev::TargetGone(i) => {
                let id = self.instances[i].id.clone();
                for t in self.aws.world().targets.values_mut() {
                    t.retain(|(x, r)| !(x == &id && r.state == "draining"));
                }
                self.terminate_what_proceeds();
            }
            Ev::Return(i) => {
                let (id, group) = (
                    self.instances[i].id.clone(),
                    self.instances[i].group.clone(),
                );
                self.instances[i].returned_at = Some(self.now);
                self.stats.warm_pool_returns += 1;
                self.aws.group_instance(&group, &id, "Pending:Wait");
                let token = self.start_our_action(i, JOIN_HOOK, false);
                // The instance starts; the agent reconnects (its container instance is as it
                // was left) and Auto Scaling puts it back in its target group.
                self.set_agent(&id, true);
                if self.instances[i].target {
                    self.aws.target("web", &id, 80);
                }
                let e = self.container_instance_event(i);
                self.emit(e);
                let e = self.envelope(
                    "EC2 Instance-launch Lifecycle Action",
                    "aws.autoscaling",
                    json!({
                        "LifecycleActionToken": token,
                        "AutoScalingGroupName": group, "LifecycleHookName": JOIN_HOOK,
                        "EC2InstanceId": id,
                        "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                        "NotificationMetadata": "{\"cluster\": \"prod\"}",
                        "Origin": "WarmPool", "Destination": "AutoScalingGroup",
                    }),
                );
                self.emit(e);
            }
            Ev::Sweep => {
                // Now and then a sweep does not run at all, but never three in a row: no
                // stateless heartbeat survives a sweep that stops for longer than the timeout.
                let skip = self.skipped_sweeps < 2 && self.rng.random_bool(0.05);
                self.skipped_sweeps = if skip { self.skipped_sweeps + 1 } else { 0 };
                if !skip {
                    let e = self.envelope("Scheduled Event", "aws.events", json!({}));
                    self.invoke(&e.to_string(), 0).await;
                }
                // The next minute, late by up to 45 s (EventBridge's schedules jitter).
                let next = (self.now - T0) / 60 * 60 + T0 + 60 + self.rng.random_range(0..45);
                self.at(next, Ev::Sweep);
            }
            Ev::TaskStops(i, k) => {
                let id = self.instances[i].id.clone();
                if self.instances[i].terminated {
                    return;
                }
                let task_arn = {
                    let mut w = self.aws.world();
                    let mut arn = None;
                    let mut n = 0;
                    for (cluster, ci, t) in w.tasks.iter_mut() {
                        if ci.ends_with(&format!("/{id}")) {
                            if n == k && t.last_status != "STOPPED" {
                                t.last_status = "STOPPED".into();
                                t.desired_status = "STOPPED".into();
                                arn = Some((t.arn.clone(), ci.clone(), cluster.clone()));
                            }
                            n += 1;
                        }
                    }
                    if arn.is_some()
                        && let Some(c) = w
                            .container_instances
                            .iter_mut()
                            .find(|c| c.ec2_instance_id == id)
                    {
                        c.running_tasks_count = (c.running_tasks_count - 1).max(0);
                    }
                    arn
                };
                if let Some((task, ci, cluster)) = task_arn {
                    let e = self.envelope(
                        "ECS Task State Change",
                        "aws.ecs",
                        json!({
                            "clusterArn": cluster,
                            "containerInstanceArn": ci, "taskArn": task,
                            "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
                            "group": "service:checkout-api", "launchType": "EC2",
                            "stopCode": "ServiceSchedulerInitiated",
                            "stoppedReason": "Task stopped because its container instance is draining",
                            "containers": [{"name": "app", "lastStatus": "STOPPED", "exitCode": 143}],
                            "version": self.seq,
                            "updatedAt": "2026-11-20T10:05:12.733Z",
                        }),
                    );
                    self.emit_task_event(e);
                    let e = self.container_instance_event(i);
                    self.emit(e);
                }
            }
            Ev::EcsManaged(i) => {
                let id = self.instances[i].id.clone();
                if self.instances[i].terminated {
                    return;
                }
                self.stats.managed_draining += 1;
                let (set, empty) = {
                    let mut w = self.aws.world();
                    let mut set = false;
                    let mut empty = true;
                    for c in w
                        .container_instances
                        .iter_mut()
                        .filter(|c| c.ec2_instance_id == id)
                    {
                        if c.status == "ACTIVE" {
                            c.status = "DRAINING".into();
                            set = true;
                        }
                        empty &= c.running_tasks_count == 0 && c.pending_tasks_count == 0;
                    }
                    (set, empty)
                };
                if set {
                    let e = self.container_instance_event_of(&id);
                    self.emit(e);
                }
                if empty {
                    self.aws
                        .world()
                        .pending
                        .retain(|(_, h, x)| !(x == &id && h == MANAGED_HOOK));
                    self.terminate_what_proceeds();
                } else {
                    self.at(self.now + 30, Ev::EcsManaged(i));
                }
                self.observe();
            }
            Ev::ForeignComplete(i) => {
                let id = self.instances[i].id.clone();
                self.aws
                    .world()
                    .pending
                    .retain(|(_, h, x)| !(x == &id && h == FOREIGN_HOOK));
                self.terminate_what_proceeds();
            }
            Ev::SpotWarning(i) => {
                if self.instances[i].terminated {
                    return;
                }
                self.stats.spot_warnings += 1;
                self.clock.set(self.now);
                // A mass reclaim: Auto Scaling throttles.
                if self.rng.random_bool(0.5) {
                    self.aws.throttle("DescribeAutoScalingInstances", 1);
                }
                let id = self.instances[i].id.clone();
                let e = self.envelope(
                    "EC2 Spot Instance Interruption Warning",
                    "aws.ec2",
                    json!({"instance-id": id, "instance-action": "terminate"}),
                );
                // Slack down too, now and then: telling must never hold back the drain.
                let slack_down = self.rng.random_bool(0.3);
                self.spot
                    .notifier
                    .fail_with(slack_down.then_some("slack:default"));
                let _ = fleetguard::testing::invoke(&self.spot, &e).await;
                self.spot.notifier.fail_with(None);
                self.aws.world().failures.clear();
                let status = self
                    .aws
                    .world()
                    .container_instances
                    .iter()
                    .find(|c| c.ec2_instance_id == id)
                    .map(|c| c.status.clone());
                if status.as_deref() == Some("ACTIVE") {
                    self.violations.push(format!(
                        "t+{}: Spot warning for {id}: container instance still ACTIVE after the invocation",
                        self.now - T0
                    ));
                }
                self.observe();
            }
        }
    }
}
