//! The handler's main paths over the in-memory fakes: the lifecycle of a drain and of a launch,
//! driven by the same events AWS sends, with the clock set through the scaling activities.

use asg_lifecycle::config::LifecycleConfig;
use asg_lifecycle::{Handler, Lifecycle};
use fleetguard::config::CommonConfig;
use fleetguard::notify::NotificationKind;
use fleetguard::out_of_service::Fleet;
use fleetguard::ports::LifecycleActionResult;
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
    let h = handler(&aws, &[]);
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

    // Past MAX_DRAIN_SECONDS with tasks still running: forced, with a message saying so.
    aws.world()
        .activity_starts
        .insert((INSTANCE.into(), true), now() - 3700);
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

#[tokio::test]
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
