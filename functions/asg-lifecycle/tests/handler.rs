//! The handler's main paths over the in-memory fakes: the lifecycle of a drain and of a launch,
//! driven by the same events AWS sends, with the clock set through the scaling activities.

use asg_lifecycle::config::LifecycleConfig;
use asg_lifecycle::{Handler, Lifecycle};
use fleetguard::config::CommonConfig;
use fleetguard::notify::Deadline;
use fleetguard::notify::NotificationKind;
use fleetguard::out_of_service::Fleet;
use fleetguard::ports::{DRAIN_MARK_ATTRIBUTE, DrainMark, DrainReason, LifecycleActionResult};
use fleetguard::testing::{FakeAws, FakeNotifier, invoke, sample};
use serde_json::{Value, json};

const GROUP: &str = "prod-ecs-spot-asg";
const DRAIN_HOOK: &str = "fleetguard-drain";
const JOIN_HOOK: &str = "fleetguard-join";
const INSTANCE: &str = "i-0a1b2c3d4e5f60718";
const LAUNCHING: &str = "i-07f3e9b2c4d5a6180";

type Asg = Handler<FakeAws, FakeAws, FakeAws, FakeNotifier>;

fn handler(aws: &FakeAws, env: &[(&str, &str)]) -> Asg {
    let lookup = fleetguard::config::lookup_in(env);
    let common = CommonConfig::from_lookup(&lookup).unwrap();
    Handler {
        lifecycle: Lifecycle {
            fleet: Fleet {
                ecs: aws.clone(),
                elbv2: aws.clone(),
                autoscaling: aws.clone(),
            },
            config: LifecycleConfig::from_lookup(lookup).unwrap(),
            dry_run: common.dry_run,
            clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
            starts: Default::default(),
            notifier: FakeNotifier::new(),
        },
        common,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A group with our two hooks (heartbeat timeout 300 s) and `INSTANCE` terminating, its drain
/// started `started_secs_ago`, on a container instance with `tasks` running tasks.
fn terminating(tasks: usize, started_secs_ago: i64) -> (FakeAws, String) {
    let aws = FakeAws::new();
    aws.group(GROUP, &[], &[]);
    aws.hook(
        GROUP,
        DRAIN_HOOK,
        true,
        300,
        Some(r#"{"cluster": "prod-ecs"}"#),
    );
    aws.hook(
        GROUP,
        JOIN_HOOK,
        false,
        300,
        Some(r#"{"cluster": "prod-ecs"}"#),
    );
    aws.group_instance(GROUP, INSTANCE, "Terminating:Wait");
    aws.pending_action(GROUP, DRAIN_HOOK, INSTANCE, true, now() - started_secs_ago);
    let ci = aws.container_instance("prod-ecs", INSTANCE, "checkout-api", tasks);
    (aws, ci)
}

/// An ECS container-instance event as ECS sends it for the fake's container instance.
fn container_instance_event(aws: &FakeAws, instance: &str) -> Value {
    let ci = aws
        .world()
        .container_instances
        .iter()
        .find(|c| c.ec2_instance_id == instance)
        .cloned()
        .unwrap();
    let mut e = sample("ecs/container-instance-drained.json");
    let d = &mut e["detail"];
    d["clusterArn"] = json!(ci.cluster_arn);
    d["containerInstanceArn"] = json!(ci.arn);
    d["ec2InstanceId"] = json!(instance);
    d["status"] = json!(ci.status);
    d["agentConnected"] = json!(ci.agent_connected);
    d["runningTasksCount"] = json!(ci.running_tasks_count);
    d["pendingTasksCount"] = json!(ci.pending_tasks_count);
    d["registeredAt"] = json!(chrono::Utc::now().to_rfc3339());
    d["attributes"] = match ci.drain_mark {
        Some(m) => json!([{"name": "ecs.os-type", "value": "linux"},
                          {"name": DRAIN_MARK_ATTRIBUTE, "value": m.value()}]),
        None => json!([{"name": "ecs.os-type", "value": "linux"}]),
    };
    e
}

fn kinds(h: &Asg) -> Vec<NotificationKind> {
    h.lifecycle.notifier.sent().iter().map(|n| n.kind).collect()
}

#[tokio::test]
async fn terminate_drains_then_completes_once_on_the_emptying_event() {
    let (aws, ci) = terminating(2, 10);
    let h = handler(&aws, &[]);

    let out = invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    assert!(
        out.outcome.starts_with("draining: 2 task(s)"),
        "{}",
        out.outcome
    );
    assert!(
        out.actions
            .contains(&format!("container instance {ci} DRAINING"))
    );
    assert!(aws.world().completions.is_empty());
    assert_eq!(kinds(&h), [NotificationKind::DrainStarted]);

    // A wake-up whose counters say tasks remain costs no AWS call.
    let before = aws.world().calls.len();
    let out = invoke(&h, &container_instance_event(&aws, INSTANCE))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("not empty yet"), "{}", out.outcome);
    assert_eq!(aws.world().calls.len(), before);

    // ECS stops the tasks; the emptying event completes the action.
    aws.stop_tasks_of(INSTANCE);
    let emptied = container_instance_event(&aws, INSTANCE);
    let out = invoke(&h, &emptied).await.unwrap();
    assert_eq!(out.outcome, "completed: drained");
    assert_eq!(
        aws.world().completions,
        [(
            GROUP.into(),
            DRAIN_HOOK.into(),
            INSTANCE.into(),
            LifecycleActionResult::Continue
        )]
    );
    assert_eq!(
        kinds(&h),
        [
            NotificationKind::DrainStarted,
            NotificationKind::DrainCompleted
        ]
    );
    // One incident: the drain of the instance, opened then resolved.
    let incidents: Vec<_> = h
        .lifecycle
        .notifier
        .sent()
        .iter()
        .map(|n| n.incident.clone().unwrap())
        .collect();
    assert_eq!(incidents[0].key, format!("drain|{INSTANCE}"));
    assert_eq!(incidents[1].key, incidents[0].key);
    assert_eq!(
        (incidents[0].phase, incidents[1].phase),
        (
            fleetguard::notify::Phase::Opened,
            fleetguard::notify::Phase::Resolved
        )
    );

    // A replay changes nothing and says nothing.
    let out = invoke(&h, &emptied).await.unwrap();
    assert!(out.outcome.starts_with("ignored"), "{}", out.outcome);
    assert_eq!(aws.world().completions.len(), 1);
    assert_eq!(h.lifecycle.notifier.sent().len(), 2);
}

#[tokio::test]
async fn a_task_still_stopping_keeps_the_action_pending() {
    let (aws, _) = terminating(1, 10);
    let h = handler(&aws, &[]);
    invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    // The counters read zero, but ECS still lists the task as not STOPPED.
    for c in aws.world().container_instances.iter_mut() {
        c.running_tasks_count = 0;
    }
    let out = invoke(&h, &container_instance_event(&aws, INSTANCE))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("not empty yet"), "{}", out.outcome);
    assert!(aws.world().completions.is_empty());
}

#[tokio::test]
async fn sweep_heartbeats_a_long_drain_then_forces_it_after_the_budget() {
    // 200 s into a drain under a 300 s heartbeat timeout: the sweep records a heartbeat.
    let (aws, _) = terminating(2, 200);
    let mut h = handler(&aws, &[]);
    invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("1 heartbeat(s)"), "{}", out.outcome);
    assert_eq!(
        aws.world().heartbeats,
        [(GROUP.into(), DRAIN_HOOK.into(), INSTANCE.into())]
    );
    assert!(aws.world().completions.is_empty());

    // Past MAX_DRAIN_SECONDS with tasks still running: forced, with a message saying so. (The
    // start time moves back instead of the clock forward: a new execution environment, which
    // reads it again.)
    aws.world()
        .activity_starts
        .insert((INSTANCE.into(), true), now() - 3700);
    h.lifecycle.starts = Default::default();
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("1 forced"), "{}", out.outcome);
    assert_eq!(
        aws.world().completions,
        [(
            GROUP.into(),
            DRAIN_HOOK.into(),
            INSTANCE.into(),
            LifecycleActionResult::Continue
        )]
    );
    let forced = h.lifecycle.notifier.sent().pop().unwrap();
    assert_eq!(forced.kind, NotificationKind::DrainForced);
    assert!(
        forced
            .fields
            .iter()
            .any(|f| f.name == "Tasks still running")
    );
}

#[tokio::test]
async fn sweep_completes_a_drain_whose_event_was_lost() {
    let (aws, _) = terminating(1, 90);
    aws.stop_tasks_of(INSTANCE);
    let h = handler(&aws, &[]);
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("1 completed"), "{}", out.outcome);
    assert_eq!(aws.world().completions.len(), 1);
    assert_eq!(kinds(&h), [NotificationKind::DrainCompleted]);
}

#[tokio::test]
async fn launch_is_held_until_the_instance_joins_its_cluster() {
    let (aws, _) = terminating(0, 0);
    aws.group_instance(GROUP, LAUNCHING, "Pending:Wait");
    aws.pending_action(GROUP, JOIN_HOOK, LAUNCHING, false, now() - 30);
    let h = handler(&aws, &[]);

    let out = invoke(&h, &sample("asg/launch-lifecycle-action.json"))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("waiting for"), "{}", out.outcome);
    assert!(aws.world().completions.is_empty());

    // The container instance registers, ACTIVE with its agent connected: the launch continues.
    aws.container_instance("prod-ecs", LAUNCHING, "checkout-api", 0);
    let out = invoke(&h, &container_instance_event(&aws, LAUNCHING))
        .await
        .unwrap();
    assert_eq!(out.outcome, "launch completed: joined prod-ecs");
    assert_eq!(
        aws.world().completions,
        [(
            GROUP.into(),
            JOIN_HOOK.into(),
            LAUNCHING.into(),
            LifecycleActionResult::Continue
        )]
    );
}

#[tokio::test]
async fn sweep_abandons_a_launch_that_never_joined() {
    let (aws, _) = terminating(0, 0);
    aws.world().pending.clear();
    aws.group_instance(GROUP, INSTANCE, "InService");
    aws.group_instance(GROUP, LAUNCHING, "Pending:Wait");
    aws.pending_action(GROUP, JOIN_HOOK, LAUNCHING, false, now() - 700);
    let h = handler(&aws, &[]);

    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("1 completed"), "{}", out.outcome);
    assert_eq!(
        aws.world().completions,
        [(
            GROUP.into(),
            JOIN_HOOK.into(),
            LAUNCHING.into(),
            LifecycleActionResult::Abandon
        )]
    );
    assert_eq!(kinds(&h), [NotificationKind::LaunchAbandoned]);
}

#[tokio::test]
async fn dry_run_completes_and_drains_nothing() {
    let (aws, _) = terminating(0, 10);
    let h = handler(&aws, &[("DRY_RUN", "true")]);
    let out = invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    let aws_actions: Vec<_> = out
        .actions
        .iter()
        .filter(|a| !a.starts_with("delivered"))
        .collect();
    assert!(!aws_actions.is_empty());
    assert!(
        aws_actions.iter().all(|a| a.starts_with("dry run")),
        "{aws_actions:?}"
    );
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
    assert_eq!(aws.calls_of("CompleteLifecycleAction"), 0);
}

#[tokio::test]
async fn a_failed_completion_fails_the_invocation() {
    let (aws, _) = terminating(0, 10);
    aws.throttle("CompleteLifecycleAction", 1);
    let h = handler(&aws, &[]);
    let err = invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "AwsCallFailed");
    assert!(
        err.message.contains("CompleteLifecycleAction"),
        "{}",
        err.message
    );
    // Lambda's retry completes it.
    invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    assert_eq!(aws.world().completions.len(), 1);
}

#[tokio::test]
async fn another_tools_hooks_are_never_completed_or_heartbeated() {
    // A CodeDeploy launch hook and a bootstrap script's terminate hook on the same group.
    const CODEDEPLOY: &str = "CodeDeploy-managed-automatic-launch-deployment-hook-app-1a2b3c";
    let aws = FakeAws::new();
    aws.group(GROUP, &[], &[]);
    aws.hook(GROUP, CODEDEPLOY, false, 600, None);
    aws.hook(GROUP, "backup-on-terminate", true, 300, None);
    aws.group_instance(GROUP, LAUNCHING, "Pending:Wait");
    aws.pending_action(GROUP, CODEDEPLOY, LAUNCHING, false, now() - 30);
    aws.group_instance(GROUP, INSTANCE, "Terminating:Wait");
    aws.pending_action(GROUP, "backup-on-terminate", INSTANCE, true, now() - 200);
    let h = handler(&aws, &[]);

    let mut launch = sample("asg/launch-lifecycle-action.json");
    launch["detail"]["LifecycleHookName"] = json!(CODEDEPLOY);
    launch["detail"]["NotificationMetadata"] = Value::Null;
    let out = invoke(&h, &launch).await.unwrap();
    assert!(out.outcome.contains("is not ours"), "{}", out.outcome);
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(aws.calls_of("CompleteLifecycleAction"), 0);
    assert_eq!(aws.calls_of("RecordLifecycleActionHeartbeat"), 0);
}

#[tokio::test]
async fn a_drain_215_s_in_under_a_300_s_timeout_is_heartbeated() {
    // The defect: the sweep heartbeated only in the sweep where elapsed % 150 < 60, so an
    // instance 215 s into its drain got none, and one late sweep let the hook expire.
    let (aws, _) = terminating(2, 215);
    let h = handler(&aws, &[]);
    invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(aws.world().heartbeats.len(), 1);
}

#[tokio::test]
async fn a_drain_whose_scaling_activity_is_not_found_is_still_heartbeated() {
    let (aws, _) = terminating(2, 10);
    aws.world().activity_starts.clear();
    let h = handler(&aws, &[]);
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(aws.world().heartbeats.len(), 1);
}

#[tokio::test]
async fn what_a_sweep_cannot_read_is_never_concluded_empty_but_still_heartbeated() {
    // The tasks cannot be listed this sweep: no completion on a guess, and the hook stays alive.
    let (aws, _) = terminating(1, 215);
    aws.stop_tasks_of(INSTANCE);
    aws.throttle("ListTasks", 2);
    let h = handler(&aws, &[]);
    let err = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap_err();
    assert!(err.message.contains("ListTasks"), "{}", err.message);
    assert!(aws.world().completions.is_empty());
    assert_eq!(aws.world().heartbeats.len(), 1);
    // The next sweep reads it and completes.
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(aws.world().completions.len(), 1);
}

#[tokio::test]
async fn a_group_whose_hooks_cannot_be_read_never_holds_back_another() {
    let (aws, _) = terminating(0, 30);
    aws.group("other", &[], &[]);
    aws.hook("other", DRAIN_HOOK, true, 300, None);
    aws.group_instance("other", LAUNCHING, "Terminating:Wait");
    aws.pending_action("other", DRAIN_HOOK, LAUNCHING, true, now() - 30);
    // The first group's DescribeLifecycleHooks fails; the second is still swept.
    aws.throttle("DescribeLifecycleHooks", 1);
    let h = handler(&aws, &[]);
    assert!(
        invoke(&h, &sample("asg/scheduled-sweep.json"))
            .await
            .is_err()
    );
    assert_eq!(aws.world().completions.len(), 1);
}

// Paused time: the retries' backoff costs no wall-clock time.
#[tokio::test(start_paused = true)]
async fn a_completion_message_that_failed_after_the_completion_goes_out_on_the_retry() {
    // The defect: messages were built only when the completion call reported it completed, so
    // the retry (which finds the action complete) rebuilt nothing and "drained" was lost.
    let (aws, _) = terminating(1, 60);
    let h = handler(&aws, &[]);
    invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    aws.stop_tasks_of(INSTANCE);
    let emptied = container_instance_event(&aws, INSTANCE);
    h.lifecycle.notifier.fail_with(Some("slack:default"));
    assert!(invoke(&h, &emptied).await.is_err());
    assert_eq!(aws.world().completions.len(), 1);
    // Lambda's retry: the action is complete and the instance proceeding; the message goes out.
    h.lifecycle.notifier.fail_with(None);
    let out = invoke(&h, &emptied).await.unwrap();
    assert!(out.outcome.starts_with("ignored"), "{}", out.outcome);
    assert_eq!(
        kinds(&h),
        [
            NotificationKind::DrainStarted,
            NotificationKind::DrainCompleted
        ]
    );
    // Once delivered, never again.
    invoke(&h, &emptied).await.unwrap();
    assert_eq!(h.lifecycle.notifier.sent().len(), 2);
}

/// `LAUNCHING` scaling in back to the warm pool (`ReuseOnScaleIn`): `Warmed:Pending:Wait` under
/// our terminate hook, on a container instance with `tasks` running tasks.
fn scaling_in_to_warm_pool(tasks: usize) -> (FakeAws, String) {
    let aws = FakeAws::new();
    aws.group(GROUP, &[], &[]);
    for (hook, terminating) in [(DRAIN_HOOK, true), (JOIN_HOOK, false)] {
        aws.hook(
            GROUP,
            hook,
            terminating,
            300,
            Some(r#"{"cluster": "prod-ecs"}"#),
        );
    }
    aws.group_instance(GROUP, LAUNCHING, "Warmed:Pending:Wait");
    aws.pending_action(GROUP, DRAIN_HOOK, LAUNCHING, true, now() - 10);
    let ci = aws.container_instance("prod-ecs", LAUNCHING, "checkout-api", tasks);
    (aws, ci)
}

fn mark_of(aws: &FakeAws, instance: &str) -> Option<DrainMark> {
    aws.world()
        .container_instances
        .iter()
        .find(|c| c.ec2_instance_id == instance)
        .and_then(|c| c.drain_mark)
}

fn status_of(aws: &FakeAws, instance: &str) -> String {
    aws.world()
        .container_instances
        .iter()
        .find(|c| c.ec2_instance_id == instance)
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn scale_in_to_the_warm_pool_is_drained_then_undone_when_it_returns() {
    // The defect: only `Terminating:Wait` was handled; the action waited out its timeout and
    // the instance was stopped with its tasks running, and it came back DRAINING.
    let (aws, ci) = scaling_in_to_warm_pool(2);
    let h = handler(&aws, &[]);
    let mut e = sample("asg/terminate-into-warm-pool.json");
    e["detail"]["EC2InstanceId"] = json!(LAUNCHING);
    let out = invoke(&h, &e).await.unwrap();
    assert!(out.outcome.starts_with("draining: 2 task(s)"), "{out:?}");
    assert_eq!(status_of(&aws, LAUNCHING), "DRAINING");
    assert_eq!(
        mark_of(&aws, LAUNCHING).map(|m| m.reason),
        Some(DrainReason::WarmPool)
    );
    assert!(aws.world().completions.is_empty());
    // A wake-up while it drains changes nothing (the group says it is going to the pool).
    aws.world().container_instances[0].running_tasks_count = 0;
    aws.world().container_instances[0].pending_tasks_count = 0;
    let out = invoke(&h, &container_instance_event(&aws, LAUNCHING))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("not empty yet"), "{out:?}");
    assert_eq!(status_of(&aws, LAUNCHING), "DRAINING");
    // Empty: our terminate hook is completed, the drain announced.
    aws.stop_tasks_of(LAUNCHING);
    let out = invoke(&h, &container_instance_event(&aws, LAUNCHING))
        .await
        .unwrap();
    assert_eq!(out.outcome, "completed: drained");
    assert_eq!(
        aws.world().completions,
        [(
            GROUP.to_owned(),
            DRAIN_HOOK.to_owned(),
            LAUNCHING.to_owned(),
            LifecycleActionResult::Continue
        )]
    );
    assert_eq!(
        kinds(&h),
        [
            NotificationKind::DrainStarted,
            NotificationKind::DrainCompleted
        ]
    );
    // In the pool: stopped, agent gone. Its disconnection event undoes nothing.
    aws.group_instance(GROUP, LAUNCHING, "Warmed:Stopped");
    aws.world().container_instances[0].agent_connected = false;
    let out = invoke(&h, &container_instance_event(&aws, LAUNCHING))
        .await
        .unwrap();
    assert_eq!(status_of(&aws, LAUNCHING), "DRAINING", "{out:?}");
    // Back into service: our launch hook holds it in `Pending:Wait`; the agent reconnects and
    // the container instance, still DRAINING, is set ACTIVE, then the launch completed.
    aws.group_instance(GROUP, LAUNCHING, "Pending:Wait");
    aws.pending_action(GROUP, JOIN_HOOK, LAUNCHING, false, now() - 20);
    aws.world().container_instances[0].agent_connected = true;
    let out = invoke(&h, &container_instance_event(&aws, LAUNCHING))
        .await
        .unwrap();
    assert_eq!(out.outcome, "launch completed: joined prod-ecs", "{out:?}");
    assert_eq!(status_of(&aws, LAUNCHING), "ACTIVE");
    assert_eq!(mark_of(&aws, LAUNCHING), None);
    assert_eq!(aws.world().activated, [ci]);
    assert_eq!(aws.world().completions.len(), 2);
}

#[tokio::test]
async fn the_launch_event_from_the_warm_pool_undoes_the_drain_too() {
    let (aws, _) = scaling_in_to_warm_pool(0);
    {
        let mut w = aws.world();
        w.pending.clear();
        let c = &mut w.container_instances[0];
        c.status = "DRAINING".into();
        c.drain_mark = Some(DrainMark {
            reason: DrainReason::WarmPool,
            at: now() - 3600,
        });
    }
    aws.group_instance(GROUP, LAUNCHING, "Pending:Wait");
    aws.pending_action(GROUP, JOIN_HOOK, LAUNCHING, false, now() - 20);
    let h = handler(&aws, &[]);
    let mut e = sample("asg/warm-pool-to-service.json");
    e["detail"]["EC2InstanceId"] = json!(LAUNCHING);
    let out = invoke(&h, &e).await.unwrap();
    assert_eq!(
        out.outcome, "launch completed: joined ECS cluster prod-ecs",
        "{out:?}"
    );
    assert_eq!(status_of(&aws, LAUNCHING), "ACTIVE");
    assert_eq!(mark_of(&aws, LAUNCHING), None);
}

#[tokio::test]
async fn sweep_drains_a_scale_in_to_the_warm_pool_whose_event_was_lost() {
    let (aws, ci) = scaling_in_to_warm_pool(1);
    // Another instance launching into the pool, with nothing on it: completed at once.
    aws.group_instance(GROUP, "i-0fresh0000000000a", "Warmed:Pending:Wait");
    aws.pending_action(GROUP, JOIN_HOOK, "i-0fresh0000000000a", false, now() - 10);
    let h = handler(&aws, &[]);
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(
        out.actions
            .contains(&format!("container instance {ci} DRAINING")),
        "{out:?}"
    );
    assert_eq!(
        mark_of(&aws, LAUNCHING).map(|m| m.reason),
        Some(DrainReason::WarmPool)
    );
    // The terminate hook is heartbeated, not completed; the fresh one's launch hook completed.
    {
        let w = aws.world();
        assert_eq!(
            w.completions,
            [(
                GROUP.to_owned(),
                JOIN_HOOK.to_owned(),
                "i-0fresh0000000000a".to_owned(),
                LifecycleActionResult::Continue
            )]
        );
        assert!(
            w.heartbeats
                .iter()
                .any(|(_, h, i)| h == DRAIN_HOOK && i == LAUNCHING)
        );
    }
    aws.stop_tasks_of(LAUNCHING);
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(
        aws.world()
            .completions
            .iter()
            .any(|(_, h, i, _)| h == DRAIN_HOOK && i == LAUNCHING)
    );
}

#[tokio::test]
async fn a_stale_event_never_completes_a_later_action_of_the_same_instance() {
    // The defect: completion by instance id let a retried event of an earlier action complete
    // the action pending now. By its token it completes nothing.
    let (aws, _) = terminating(0, 10);
    aws.token(GROUP, DRAIN_HOOK, INSTANCE, "a-later-action");
    let h = handler(&aws, &[]);
    let out = invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    assert!(aws.world().completions.is_empty(), "{out:?}");
    assert_eq!(aws.world().pending.len(), 1);
    // Its own token completes it.
    aws.token(
        GROUP,
        DRAIN_HOOK,
        INSTANCE,
        "e2a9c6f1-3b7d-4d2e-9a8f-5c1b0e7d4a36",
    );
    invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    assert_eq!(aws.world().completions.len(), 1);
}

#[tokio::test]
async fn an_active_event_of_an_instance_registered_long_ago_costs_no_call() {
    // The defect: every ACTIVE container-instance event (one per task start and stop) cost a
    // DescribeAutoScalingInstances.
    let aws = FakeAws::new();
    aws.container_instance("prod-ecs", INSTANCE, "checkout-api", 3);
    let h = handler(&aws, &[]);
    let mut e = container_instance_event(&aws, INSTANCE);
    e["detail"]["registeredAt"] = json!("2026-01-05T10:00:00Z");
    let out = invoke(&h, &e).await.unwrap();
    assert!(
        out.outcome.starts_with("ignored: ACTIVE since long"),
        "{out:?}"
    );
    assert!(aws.world().calls.is_empty());
    // A fresh registration may be a launch: looked up.
    let out = invoke(&h, &container_instance_event(&aws, INSTANCE))
        .await
        .unwrap();
    assert_eq!(aws.calls_of("DescribeAutoScalingInstances"), 1, "{out:?}");
}

// Paused time: the retries' backoff costs no wall-clock time.
#[tokio::test(start_paused = true)]
async fn sweep_drains_missed_instances_ten_a_call_and_heartbeats_before_completing() {
    let aws = FakeAws::new();
    aws.group(GROUP, &[], &[]);
    aws.hook(
        GROUP,
        DRAIN_HOOK,
        true,
        3600,
        Some(r#"{"cluster": "prod-ecs"}"#),
    );
    for i in 0..25 {
        let id = format!("i-0{i:016x}");
        aws.group_instance(GROUP, &id, "Terminating:Wait");
        aws.pending_action(GROUP, DRAIN_HOOK, &id, true, now() - 30);
        aws.container_instance("prod-ecs", &id, "checkout-api", usize::from(i % 2 == 0));
    }
    let h = handler(&aws, &[]);
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 3, "{out:?}");
    assert!(
        aws.world()
            .container_instances
            .iter()
            .all(|c| c.status == "DRAINING")
    );
    // The 12 empty ones completed, the 13 busy ones heartbeated.
    assert_eq!(aws.world().completions.len(), 12);
    assert_eq!(aws.world().heartbeats.len(), 13);

    // With no time left, heartbeats still go out; completions wait for the next sweep.
    aws.stop_tasks_of("i-00000000000000000");
    let out = h
        .lifecycle
        .sweep(
            "us-east-1",
            Deadline::after(std::time::Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert!(
        out.outcome
            .contains("1 completion(s) left to the next sweep"),
        "{}",
        out.outcome
    );
    assert_eq!(aws.world().completions.len(), 12);
    assert_eq!(aws.world().heartbeats.len(), 25);
}

#[tokio::test]
async fn target_group_arns_add_to_the_groups_own() {
    // The defect: TARGET_GROUP_ARNS replaced the group's target groups, so the instance stayed
    // registered in its own.
    let aws = FakeAws::new();
    let own = aws.target("web", INSTANCE, 80);
    let extra = aws.target("admin", INSTANCE, 9000);
    aws.group(GROUP, &[], std::slice::from_ref(&own));
    aws.hook(GROUP, DRAIN_HOOK, true, 300, None);
    aws.group_instance(GROUP, INSTANCE, "Terminating:Wait");
    aws.pending_action(GROUP, DRAIN_HOOK, INSTANCE, true, now() - 10);
    let h = handler(&aws, &[("TARGET_GROUP_ARNS", extra.as_str())]);
    invoke(&h, &sample("asg/terminate-lifecycle-action.json"))
        .await
        .unwrap();
    let groups: Vec<String> = aws
        .world()
        .deregistered
        .iter()
        .map(|(tg, _, _)| tg.clone())
        .collect();
    assert!(
        groups.contains(&own) && groups.contains(&extra),
        "{groups:?}"
    );
}

/// A container instance of a standalone instance, DRAINING under our `mark` set `age` ago, its
/// agent connected.
fn marked(reason: DrainReason, age: i64) -> FakeAws {
    let aws = FakeAws::new();
    aws.container_instance("prod-ecs", INSTANCE, "checkout-api", 0);
    let mut w = aws.world();
    let c = &mut w.container_instances[0];
    c.status = "DRAINING".into();
    c.drain_mark = Some(DrainMark {
        reason,
        at: now() - age,
    });
    drop(w);
    aws
}

#[tokio::test]
async fn a_spot_stop_drain_is_undone_when_the_instance_is_running_again() {
    // Two minutes after the warning the agent is still connected: not back yet.
    let aws = marked(DrainReason::SpotStop, 100);
    let h = handler(&aws, &[]);
    invoke(&h, &container_instance_event(&aws, INSTANCE))
        .await
        .unwrap();
    assert_eq!(status_of(&aws, INSTANCE), "DRAINING");
    // Started again later: its agent's reconnection undoes the drain.
    let aws = marked(DrainReason::SpotHibernate, 5400);
    let h = handler(&aws, &[]);
    let out = invoke(&h, &container_instance_event(&aws, INSTANCE))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("undone"), "{out:?}");
    assert_eq!(status_of(&aws, INSTANCE), "ACTIVE");
    assert_eq!(mark_of(&aws, INSTANCE), None);
    // The drain's incident ends with it, so a later drain opens a new one (a new page).
    let sent = h.lifecycle.notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].kind, NotificationKind::BackInService);
    let incident = sent[0].incident.clone().unwrap();
    assert_eq!(incident.key, format!("drain|{INSTANCE}"));
    assert_eq!(incident.phase, fleetguard::notify::Phase::Resolved);
    // A drain that is not ours (no mark) is never undone.
    let aws = marked(DrainReason::SpotStop, 5400);
    aws.world().container_instances[0].drain_mark = None;
    let h = handler(&aws, &[]);
    invoke(&h, &container_instance_event(&aws, INSTANCE))
        .await
        .unwrap();
    assert_eq!(status_of(&aws, INSTANCE), "DRAINING");
}

#[tokio::test]
async fn a_rebalance_drain_is_undone_by_the_sweep_after_the_delay_unless_the_instance_is_leaving() {
    let clock = fleetguard::testing::FakeClock::at(1_800_000_000); // a fifth minute
    assert!(asg_lifecycle::undo::undo_pass_due(1_800_000_000));
    let aws = marked(DrainReason::Rebalance, 0);
    aws.world().container_instances[0].drain_mark = Some(DrainMark {
        reason: DrainReason::Rebalance,
        at: 1_800_000_000 - 1800,
    });
    let mut h = handler(&aws, &[]);
    h.lifecycle.clock = std::sync::Arc::new(clock.clone());
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(
        status_of(&aws, INSTANCE),
        "DRAINING",
        "held for REBALANCE_UNDO_SECONDS"
    );
    clock.set(1_800_000_000 + 1800);
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("1 drain(s) undone"), "{out:?}");
    assert_eq!(status_of(&aws, INSTANCE), "ACTIVE");
    // One whose group is replacing it (capacity rebalancing) keeps its drain.
    let aws = marked(DrainReason::Rebalance, 0);
    aws.world().container_instances[0].drain_mark = Some(DrainMark {
        reason: DrainReason::Rebalance,
        at: 1_800_000_000 - 7200,
    });
    aws.group("other", &[], &[]);
    aws.group_instance("other", INSTANCE, "Terminating:Wait");
    let mut h = handler(&aws, &[("AUTO_SCALING_GROUPS", GROUP)]);
    h.lifecycle.clock = std::sync::Arc::new(clock.clone());
    clock.set(1_800_000_000);
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(status_of(&aws, INSTANCE), "DRAINING");
}

#[tokio::test]
async fn a_steady_sweep_reads_no_scaling_activity_it_already_knows() {
    // The start time of a waiting instance's activity never changes: read once per execution
    // environment, not every minute.
    let (aws, _) = terminating(2, 600);
    aws.world().hooks.get_mut(GROUP).unwrap()[0].heartbeat_timeout_secs = 3600;
    let h = handler(&aws, &[]);
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(aws.calls_of("DescribeScalingActivities"), 1);
    assert_eq!(h.lifecycle.starts.len(), 1);
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(aws.calls_of("DescribeScalingActivities"), 1);
    // Gone from the group: forgotten.
    aws.world().group_instances.clear();
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(h.lifecycle.starts.is_empty());
}

#[tokio::test]
async fn a_scale_in_to_the_warm_pool_held_by_another_tools_hook_is_not_drained() {
    // Our launch hook only; another tool's terminate hook holds the instance on its way back to
    // the pool: not ours to drain.
    let aws = FakeAws::new();
    aws.group(GROUP, &[], &[]);
    aws.hook(
        GROUP,
        JOIN_HOOK,
        false,
        300,
        Some(r#"{"cluster": "prod-ecs"}"#),
    );
    aws.hook(GROUP, "backup-on-terminate", true, 300, None);
    aws.group_instance(GROUP, LAUNCHING, "Warmed:Pending:Wait");
    aws.pending_action(GROUP, "backup-on-terminate", LAUNCHING, true, now() - 10);
    aws.container_instance("prod-ecs", LAUNCHING, "checkout-api", 2);
    let h = handler(&aws, &[]);
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(status_of(&aws, LAUNCHING), "ACTIVE");
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
    assert!(aws.world().completions.is_empty());
}

#[tokio::test]
async fn sweep_finds_a_terminating_instance_in_a_cluster_created_since_the_list_was_read() {
    // The cluster list an execution environment read before the cluster existed: the sweep
    // must not conclude "not in ECS" (and complete with tasks running); it reads the list again.
    let aws = FakeAws::new();
    aws.group(GROUP, &[], &[]);
    aws.hook(GROUP, DRAIN_HOOK, true, 3600, None);
    aws.group_instance(GROUP, INSTANCE, "Terminating:Wait");
    aws.pending_action(GROUP, DRAIN_HOOK, INSTANCE, true, now() - 30);
    let old = aws.cluster("prod-ecs");
    aws.container_instance("batch", INSTANCE, "nightly", 2);
    aws.world().stale_clusters = Some(vec![old]);
    let h = handler(&aws, &[]);
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("1 still draining"), "{out:?}");
    assert!(aws.world().completions.is_empty());
    assert_eq!(status_of(&aws, INSTANCE), "DRAINING");
}

#[tokio::test]
async fn sweep_undoes_a_warm_pool_drain_whose_return_events_were_lost_then_completes_the_launch() {
    let (aws, ci) = scaling_in_to_warm_pool(0);
    {
        let mut w = aws.world();
        w.pending.clear();
        let c = &mut w.container_instances[0];
        c.status = "DRAINING".into();
        c.drain_mark = Some(DrainMark {
            reason: DrainReason::WarmPool,
            at: now() - 3600,
        });
    }
    aws.group_instance(GROUP, LAUNCHING, "Pending:Wait");
    aws.pending_action(GROUP, JOIN_HOOK, LAUNCHING, false, now() - 20);
    let h = handler(&aws, &[]);
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("1 completed"), "{out:?}");
    assert_eq!(status_of(&aws, LAUNCHING), "ACTIVE");
    assert_eq!(mark_of(&aws, LAUNCHING), None);
    assert_eq!(aws.world().activated, [ci]);
    assert_eq!(
        aws.world().completions,
        [(
            GROUP.to_owned(),
            JOIN_HOOK.to_owned(),
            LAUNCHING.to_owned(),
            LifecycleActionResult::Continue
        )]
    );
}

#[tokio::test]
async fn a_task_event_of_a_draining_marked_instance_costs_no_call() {
    // A warm-pool drain in progress: each task stop wakes the function; counters above zero
    // settle it without asking Auto Scaling.
    let (aws, _) = scaling_in_to_warm_pool(2);
    let mut e = sample("asg/terminate-into-warm-pool.json");
    e["detail"]["EC2InstanceId"] = json!(LAUNCHING);
    let h = handler(&aws, &[]);
    invoke(&h, &e).await.unwrap();
    let before = aws.world().calls.len();
    let out = invoke(&h, &container_instance_event(&aws, LAUNCHING))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("not empty yet"), "{out:?}");
    assert_eq!(aws.world().calls.len(), before);
}

#[tokio::test]
async fn a_launch_failure_is_told_with_its_cause_and_advice_once_per_window() {
    let aws = FakeAws::new();
    aws.group("prod-ecs-spot", &[("fleetguard:managed", "true")], &[]);
    // The ledger's clock, to step past the window (its claims expire with it, as in DynamoDB).
    let clock = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(now()));
    let ledger_clock = clock.clone();
    let h = Handler {
        lifecycle: Lifecycle {
            notifier: FakeNotifier::on_clock(move || {
                ledger_clock.load(std::sync::atomic::Ordering::SeqCst)
            }),
            ..handler(&aws, &[("MANAGED_ASG_TAG", "fleetguard:managed=true")]).lifecycle
        },
        common: CommonConfig::from_lookup(&|_: &str| None).unwrap(),
    };
    let failed = sample("asg/launch-unsuccessful.json");
    let out = invoke(&h, &failed).await.unwrap();
    assert!(out.outcome.starts_with("launch failure"), "{}", out.outcome);
    let sent = h.lifecycle.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, NotificationKind::LaunchFailed);
    assert!(sent[0].summary.contains("m5.xlarge capacity"));
    assert!(sent[0].summary.contains("more instance types"));
    assert_eq!(sent[0].dedupe_ttl, std::time::Duration::from_secs(3600));
    // The next failure of the group within the window: the same key, not delivered again.
    clock.fetch_add(3_599, std::sync::atomic::Ordering::SeqCst);
    invoke(&h, &failed).await.unwrap();
    assert_eq!(h.lifecycle.notifier.sent().len(), 1);
    // Past the window, a failure is news again.
    clock.fetch_add(2, std::sync::atomic::Ordering::SeqCst);
    invoke(&h, &failed).await.unwrap();
    assert_eq!(
        h.lifecycle.notifier.sent().len(),
        2,
        "told again after the window"
    );
    // A group without the managed tag is not ours.
    let mut other = failed.clone();
    other["detail"]["AutoScalingGroupName"] = json!("someone-elses");
    aws.group("someone-elses", &[], &[]);
    let out = invoke(&h, &other).await.unwrap();
    assert!(out.outcome.starts_with("ignored"), "{}", out.outcome);
    assert_eq!(h.lifecycle.notifier.sent().len(), 2);
}

#[tokio::test]
async fn instance_refreshes_that_went_wrong_are_told_the_others_acknowledged() {
    let aws = FakeAws::new();
    let h = handler(&aws, &[]);
    for (file, told) in [
        ("asg/instance-refresh-failed.json", true),
        ("asg/instance-refresh-cancelled.json", true),
        ("asg/instance-refresh-rollback-started.json", true),
        ("asg/instance-refresh-succeeded.json", false),
    ] {
        let before = h.lifecycle.notifier.sent().len();
        let out = invoke(&h, &sample(file)).await.unwrap();
        assert_eq!(
            h.lifecycle.notifier.sent().len(),
            before + usize::from(told),
            "{file}: {}",
            out.outcome
        );
    }
    let kinds = kinds(&h);
    assert!(
        kinds
            .iter()
            .all(|k| *k == NotificationKind::InstanceRefreshFailed)
    );
}

/// Found by the fleet simulator (ListClusters down across sweeps): a sweep that could not list
/// the account's clusters gave up before heartbeating, and the hook expired with tasks running.
/// ECS is then unknown: nothing is completed, every hook is still heartbeated, the sweep fails.
#[tokio::test]
async fn a_sweep_without_the_cluster_list_still_heartbeats() {
    let (aws, _) = terminating(1, 215);
    aws.throttle("ListClusters", 10);
    let h = handler(&aws, &[]);
    let err = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap_err();
    assert!(err.message.contains("ListClusters"), "{}", err.message);
    assert!(aws.world().completions.is_empty());
    assert_eq!(aws.world().heartbeats.len(), 1);
    // The hook names its cluster: found there, and empty, it completes though the account's
    // list is still unreadable.
    aws.stop_tasks_of(INSTANCE);
    let _ = invoke(&h, &sample("asg/scheduled-sweep.json")).await;
    assert_eq!(aws.world().completions.len(), 1);
}

/// Found by the fleet simulator with ECS managed draining beside our hook: our hook forced at
/// the budget, the instance still held by ECS's hook, then its tasks ended and the event said
/// "drained" too. A drain ends once: the late event announces nothing.
#[tokio::test]
async fn a_late_event_after_a_forced_completion_sends_no_second_message() {
    let (aws, _) = terminating(2, 3700);
    let managed = asg_lifecycle::config::ECS_MANAGED_DRAINING_HOOK;
    aws.hook(GROUP, managed, true, 3600, None);
    aws.pending_action(GROUP, managed, INSTANCE, true, now() - 3700);
    let h = handler(&aws, &[]);
    let out = invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("1 forced"), "{}", out.outcome);
    assert_eq!(kinds(&h), [NotificationKind::DrainForced]);
    // Still held by ECS's hook: its tasks end, ECS says so.
    aws.stop_tasks_of(INSTANCE);
    aws.world().container_instances[0].status = "DRAINING".into();
    let out = invoke(&h, &container_instance_event(&aws, INSTANCE))
        .await
        .unwrap();
    assert!(
        out.actions.iter().any(|a| a.contains("already complete")),
        "{out:?}"
    );
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(kinds(&h), [NotificationKind::DrainForced]);
}

/// Found by the fleet simulator: `DescribeLifecycleHooks` (then `DescribeAutoScalingGroups`)
/// down after a late sweep let our hook expire. The sweep heartbeats what it last knew.
#[tokio::test]
async fn a_sweep_heartbeats_what_it_knew_while_auto_scaling_cannot_be_read() {
    let (aws, _) = terminating(1, 215);
    let h = handler(&aws, &[]);
    invoke(&h, &sample("asg/scheduled-sweep.json"))
        .await
        .unwrap();
    assert_eq!(aws.world().heartbeats.len(), 1);
    aws.throttle("DescribeLifecycleHooks", 10);
    assert!(
        invoke(&h, &sample("asg/scheduled-sweep.json"))
            .await
            .is_err()
    );
    assert_eq!(aws.world().heartbeats.len(), 2, "hooks as last read");
    aws.world().failures.clear();
    aws.throttle("DescribeAutoScalingGroups", 10);
    assert!(
        invoke(&h, &sample("asg/scheduled-sweep.json"))
            .await
            .is_err()
    );
    assert_eq!(
        aws.world().heartbeats.len(),
        3,
        "the last sweep's heartbeats"
    );
    assert!(aws.world().completions.is_empty());
    // A new execution environment, which never read the hooks: our hook names, blind.
    aws.world().failures.clear();
    aws.throttle("DescribeLifecycleHooks", 10);
    let fresh = handler(&aws, &[]);
    assert!(
        invoke(&fresh, &sample("asg/scheduled-sweep.json"))
            .await
            .is_err()
    );
    let w = aws.world();
    assert_eq!(w.heartbeats.len(), 4, "our drain hook's, by name");
    assert_eq!(
        w.heartbeats[3],
        (GROUP.into(), DRAIN_HOOK.into(), INSTANCE.into())
    );
    assert!(w.completions.is_empty());
}

/// Found by the fleet simulator: with ECS unreadable, the sweep deregistered a warm-pool
/// scale-in's targets; the next sweep saw nothing left on it and completed it without a
/// "drained" message. Targets now wait for the container instance's drain.
#[tokio::test]
async fn a_sweep_that_cannot_read_ecs_leaves_the_targets_for_the_drain() {
    let aws = FakeAws::new();
    let tg = aws.target("web", INSTANCE, 80);
    aws.group(GROUP, &[], std::slice::from_ref(&tg));
    aws.hook(
        GROUP,
        DRAIN_HOOK,
        true,
        300,
        Some(r#"{"cluster": "prod-ecs"}"#),
    );
    aws.group_instance(GROUP, INSTANCE, "Warmed:Pending:Wait");
    aws.pending_action(GROUP, DRAIN_HOOK, INSTANCE, true, now() - 30);
    aws.container_instance("prod-ecs", INSTANCE, "checkout-api", 0);
    aws.throttle("ListContainerInstances", 10);
    let h = handler(&aws, &[]);
    assert!(
        invoke(&h, &sample("asg/scheduled-sweep.json"))
            .await
            .is_err()
    );
    assert!(aws.world().deregistered.is_empty());
    assert!(aws.world().completions.is_empty());
    aws.world().failures.clear();
    // ECS readable again: drained, deregistered, and announced once empty.
    for _ in 0..3 {
        let _ = invoke(&h, &sample("asg/scheduled-sweep.json")).await;
        aws.world().targets.values_mut().for_each(|t| t.clear());
    }
    assert_eq!(aws.world().deregistered.len(), 1);
    assert_eq!(aws.world().completions.len(), 1);
    assert_eq!(kinds(&h), [NotificationKind::DrainCompleted]);
}
