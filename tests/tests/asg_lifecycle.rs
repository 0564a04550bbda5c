//! `asg-lifecycle` end to end: the real handler against moto (ECS, ELBv2, Auto Scaling groups and
//! hooks, SNS, Secrets Manager, DynamoDB) and the Slack sink. moto lacks `CompleteLifecycleAction`
//! and `RecordLifecycleActionHeartbeat` and never puts an instance into `Terminating:Wait` or
//! `Pending:Wait`: the local Auto Scaling lifecycle fake (a test fixture in front of moto) holds
//! those pending actions, answers those two calls and reports the states and scaling activities.

use fleetguard_integration::{Setup, dedupe_table, invoke, lifecycle_token, lookup, sample};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

async fn context(s: &Setup, extra: &[(&str, &str)]) -> asg_lifecycle::Lambda {
    let mut env = s.env(&[("MANAGED_ASG_TAG", "fleetguard:managed=true")]);
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    // The Auto Scaling client goes to the lifecycle fake, as AWS_ENDPOINT_URL_AUTO_SCALING does.
    let autoscaling =
        fleetguard::adapters::autoscaling::AutoScaling::new(s.aws.autoscaling_client(&s.sdk));
    asg_lifecycle::build_with(lookup(&env), &s.sdk, autoscaling)
        .await
        .unwrap()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn lifecycle_event(
    file: &str,
    instance: &str,
    group: &str,
    hook: &str,
    metadata: Option<&str>,
) -> Value {
    let mut e = sample(file);
    e["time"] = json!(now());
    e["region"] = json!("us-east-1");
    e["detail"]["EC2InstanceId"] = json!(instance);
    e["detail"]["AutoScalingGroupName"] = json!(group);
    e["detail"]["LifecycleHookName"] = json!(hook);
    e["detail"]["LifecycleActionToken"] = json!(lifecycle_token(instance, hook));
    e["detail"]["NotificationMetadata"] = metadata.map_or(Value::Null, |m| json!(m));
    e
}

fn terminate_event(instance: &str) -> Value {
    lifecycle_event(
        "asg/terminate-lifecycle-action.json",
        instance,
        "demo-ecs-asg",
        "fleetguard-drain",
        Some(r#"{"ecs_cluster": "demo-ecs"}"#),
    )
}

/// The container-instance state change ECS sends as a draining instance's tasks stop.
fn container_instance_event(
    fleet: &Value,
    instance: &str,
    ci: &str,
    status: &str,
    running: i64,
) -> Value {
    let mut e = sample("ecs/container-instance-draining.json");
    e["time"] = json!(now());
    e["region"] = json!("us-east-1");
    e["detail"]["clusterArn"] = fleet["cluster_arn"].clone();
    e["detail"]["containerInstanceArn"] = json!(ci);
    e["detail"]["ec2InstanceId"] = json!(instance);
    e["detail"]["status"] = json!(status);
    e["detail"]["runningTasksCount"] = json!(running);
    e["resources"] = json!([ci]);
    e
}

fn task_stopped_event(fleet: &Value, ci: &str, task: &str) -> Value {
    let mut e = sample("ecs/task-stopped-oom.json");
    e["time"] = json!(now());
    e["region"] = json!("us-east-1");
    e["detail"]["clusterArn"] = fleet["cluster_arn"].clone();
    e["detail"]["containerInstanceArn"] = json!(ci);
    e["detail"]["taskArn"] = json!(task);
    e["resources"] = json!([task]);
    e
}

fn sweep_event() -> Value {
    let mut e = sample("asg/scheduled-sweep.json");
    e["time"] = json!(now());
    e["region"] = json!("us-east-1");
    e
}

#[tokio::test]
async fn terminate_drains_then_completes_once_when_the_last_task_stops() {
    let s = Setup::new().await;
    let (instance, ci) = s.ecs_instance(1);
    s.start_tasks(&ci, 1).await; // three running tasks
    let tasks = s.tasks_on(&ci).await;
    assert_eq!(tasks.len(), 3);
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[]).await;

    let out = invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    assert!(out.outcome.starts_with("draining: 3 task(s)"), "{out:?}");
    assert_eq!(s.status(&ci).await, "DRAINING");
    assert!(s.completed().await.is_empty(), "completed while tasks run");
    assert!(s.calls("CompleteLifecycleAction").await.is_empty());
    let titles = s.slack_titles().await;
    assert_eq!(
        titles,
        vec![format!("Draining {instance} before termination")]
    );

    // A task stops: the instance is not empty yet, nothing completes.
    s.stop_tasks(&tasks[..1]).await;
    let out = invoke(&ctx, &task_stopped_event(&s.fleet, &ci, &tasks[0]))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("not empty yet"), "{out:?}");
    assert!(s.completed().await.is_empty());

    // The rest stop; ECS reports the empty draining instance: completed with CONTINUE.
    s.stop_tasks(&tasks[1..]).await;
    let event = container_instance_event(&s.fleet, &instance, &ci, "DRAINING", 0);
    let out = invoke(&ctx, &event).await.unwrap();
    assert_eq!(out.outcome, "completed: drained", "{out:?}");
    let done = s.completed().await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["Result"], "CONTINUE");
    assert_eq!(done[0]["EC2InstanceId"], instance.as_str());
    assert_eq!(done[0]["LifecycleHookName"], "fleetguard-drain");

    // Duplicates and late, reordered events change nothing and send nothing.
    let before = s.aws.slack_requests().await.len();
    invoke(&ctx, &event).await.unwrap();
    invoke(&ctx, &task_stopped_event(&s.fleet, &ci, &tasks[2]))
        .await
        .unwrap();
    invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    assert_eq!(s.completed().await.len(), 1, "completed exactly once");
    assert_eq!(s.calls("CompleteLifecycleAction").await.len(), 1);
    let titles = s.slack_titles().await;
    assert_eq!(titles.len(), before, "{titles:?}");
    assert_eq!(
        titles.last().unwrap(),
        &format!("Drained {instance}: termination continues")
    );
}

#[tokio::test]
async fn never_completes_while_one_task_of_many_pages_runs() {
    let s = Setup::new().await;
    let (instance, ci) = s.ecs_instance(2);
    s.start_tasks(&ci, 148).await; // 150 tasks: two pages of ListTasks
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[]).await;
    invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    let mut tasks = Vec::new();
    let mut token = None;
    loop {
        let page = s
            .ecs
            .list_tasks()
            .cluster("demo-ecs")
            .container_instance(&ci)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        tasks.extend(page.task_arns().to_vec());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(tasks.len(), 150);
    tasks.sort();
    // Every task but the last listed one stops; the event (wrongly) says nothing runs.
    let last = tasks.pop().unwrap();
    s.stop_tasks(&tasks).await;
    let event = container_instance_event(&s.fleet, &instance, &ci, "DRAINING", 0);
    let out = invoke(&ctx, &event).await.unwrap();
    assert!(
        out.outcome.starts_with("not empty yet: 1 task(s)"),
        "{out:?}"
    );
    assert!(
        s.completed().await.is_empty(),
        "completed with a task running"
    );
    // ListTasks was paged (more than 100 tasks on the instance).
    s.stop_tasks(std::slice::from_ref(&last)).await;
    let out = invoke(&ctx, &event).await.unwrap();
    assert_eq!(out.outcome, "completed: drained");
    assert_eq!(s.completed().await.len(), 1);
}

#[tokio::test]
async fn events_before_the_hook_never_complete_anything() {
    let s = Setup::new().await;
    let (instance, ci) = s.ecs_instance(0);
    let ctx = context(&s, &[]).await;
    // An instance DRAINING for another reason (a Spot drain, an operator) and already empty:
    // no lifecycle action is pending, so nothing is completed.
    let tasks = s.tasks_on(&ci).await;
    s.stop_tasks(&tasks).await;
    let event = container_instance_event(&s.fleet, &instance, &ci, "DRAINING", 0);
    let out = invoke(&ctx, &event).await.unwrap();
    assert!(
        out.outcome.contains("no pending lifecycle action"),
        "{out:?}"
    );
    assert!(s.calls("CompleteLifecycleAction").await.is_empty());
    // When the hook then fires, the already-empty instance completes at once.
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let out = invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    assert_eq!(out.outcome, "completed: already empty", "{out:?}");
    assert_eq!(s.completed().await.len(), 1);
}

#[tokio::test]
async fn sweep_heartbeats_a_draining_instance_and_forces_after_the_budget() {
    let s = Setup::new().await;
    let (slow, slow_ci) = s.ecs_instance(0);
    let (late, late_ci) = s.ecs_instance(1);
    let (empty, empty_ci) = s.ecs_instance(2);
    // The hooks' heartbeat timeout is 300 s: at 200 s a heartbeat is due.
    s.aws
        .start_lifecycle_action_at(
            &slow,
            "demo-ecs-asg",
            "fleetguard-drain",
            TERMINATING,
            200.0,
        )
        .await;
    s.aws
        .start_lifecycle_action_at(
            &late,
            "demo-ecs-asg",
            "fleetguard-drain",
            TERMINATING,
            7300.0,
        )
        .await;
    s.aws
        .start_lifecycle_action_at(
            &empty,
            "demo-ecs-asg",
            "fleetguard-drain",
            TERMINATING,
            30.0,
        )
        .await;
    let tasks = s.tasks_on(&empty_ci).await;
    s.stop_tasks(&tasks).await;
    let ctx = context(&s, &[("MAX_DRAIN_SECONDS", "7200")]).await;

    // The sweep also starts drains whose lifecycle event was missed.
    let out = invoke(&ctx, &sweep_event()).await.unwrap();
    assert_eq!(
        out.outcome,
        "swept 3 waiting instance(s): 1 completed, 1 forced, 1 still draining, 1 heartbeat(s)",
        "{out:?}"
    );
    for ci in [&slow_ci, &late_ci, &empty_ci] {
        assert_eq!(s.status(ci).await, "DRAINING");
    }
    let done = s.completed().await;
    let by_id: BTreeMap<&str, &str> = done
        .iter()
        .map(|d| {
            (
                d["EC2InstanceId"].as_str().unwrap(),
                d["Result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_id,
        BTreeMap::from([(late.as_str(), "CONTINUE"), (empty.as_str(), "CONTINUE")])
    );
    let pending = &s.aws.lifecycle_actions().await["pending"];
    assert_eq!(pending[0]["EC2InstanceId"], slow.as_str());
    assert_eq!(pending[0]["Heartbeats"], 1);

    // The forced completion says so, with the tasks still running.
    let bodies: Vec<String> = s
        .aws
        .slack_requests()
        .await
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_owned())
        .collect();
    let forced: Vec<&String> = bodies.iter().filter(|b| b.contains("forced")).collect();
    assert_eq!(forced.len(), 1, "{bodies:?}");
    assert!(forced[0].contains(&late) && forced[0].contains("checkout-api: 2"));
    assert!(forced[0].contains("Tasks still running"));

    // The next sweep a minute later: no new heartbeat is due, nothing completes twice.
    let out = invoke(&ctx, &sweep_event()).await.unwrap();
    assert!(out.outcome.contains("0 completed"), "{out:?}");
    assert_eq!(s.completed().await.len(), 2);
}

#[tokio::test]
async fn plain_ec2_behind_a_load_balancer_is_deregistered_then_completed() {
    let s = Setup::new().await;
    let web = s.fleet["web_instances"][0].as_str().unwrap().to_owned();
    s.aws
        .start_lifecycle_action(&web, "demo-web-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[]).await;
    let e = lifecycle_event(
        "asg/terminate-lifecycle-action.json",
        &web,
        "demo-web-asg",
        "fleetguard-drain",
        None,
    );
    let out = invoke(&ctx, &e).await.unwrap();
    assert!(
        out.actions
            .iter()
            .any(|a| a.starts_with("deregistered from")),
        "{out:?}"
    );
    // moto removes the target at once (no deregistration delay), so the action completes now;
    // against AWS the target drains for its delay and the sweep completes it.
    assert_eq!(out.outcome, "completed: already empty");
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&s.sdk);
    let h = elb
        .describe_target_health()
        .target_group_arn(s.fleet["target_group_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        h.target_health_descriptions()
            .iter()
            .all(|d| d.target().unwrap().id() != Some(web.as_str()))
    );
    let done = s.completed().await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["Result"], "CONTINUE");
}

#[tokio::test]
async fn launch_waits_for_the_container_instance_then_abandons_after_the_timeout() {
    let s = Setup::new().await;
    let ec2 = aws_sdk_ec2_free_instance(&s).await;
    s.aws
        .start_lifecycle_action(&ec2, "demo-ecs-asg", "fleetguard-join", LAUNCHING)
        .await;
    let ctx = context(&s, &[]).await;
    let launch = lifecycle_event(
        "asg/launch-lifecycle-action.json",
        &ec2,
        "demo-ecs-asg",
        "fleetguard-join",
        Some(r#"{"ecs_cluster": "demo-ecs"}"#),
    );
    let out = invoke(&ctx, &launch).await.unwrap();
    assert_eq!(
        out.outcome,
        format!("waiting for {ec2} to join ECS cluster demo-ecs")
    );
    assert!(s.completed().await.is_empty());

    // The agent registers: ECS sends the container-instance state change; completed.
    let doc = json!({"instanceId": ec2, "region": "us-east-1", "availabilityZone": "us-east-1a",
                     "instanceType": "m5.large", "accountId": "123456789012"});
    let ci = s
        .ecs
        .register_container_instance()
        .cluster("demo-ecs")
        .instance_identity_document(doc.to_string())
        .send()
        .await
        .unwrap()
        .container_instance()
        .unwrap()
        .container_instance_arn()
        .unwrap()
        .to_owned();
    let out = invoke(
        &ctx,
        &container_instance_event(&s.fleet, &ec2, &ci, "ACTIVE", 0),
    )
    .await
    .unwrap();
    assert_eq!(out.outcome, "launch completed: joined demo-ecs", "{out:?}");
    let done = s.completed().await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["Result"], "CONTINUE");
    assert_eq!(done[0]["LifecycleHookName"], "fleetguard-join");

    // An instance that never joins: the sweep abandons it after LAUNCH_TIMEOUT_SECONDS.
    let stuck = aws_sdk_ec2_free_instance(&s).await;
    s.aws
        .start_lifecycle_action_at(&stuck, "demo-ecs-asg", "fleetguard-join", LAUNCHING, 700.0)
        .await;
    let out = invoke(&ctx, &sweep_event()).await.unwrap();
    assert!(out.outcome.contains("1 completed"), "{out:?}");
    let done = s.completed().await;
    assert_eq!(done.len(), 2);
    assert_eq!(done[1]["EC2InstanceId"], stuck.as_str());
    assert_eq!(done[1]["Result"], "ABANDON");
    let titles = s.slack_titles().await;
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with(&format!("Launch of {stuck} abandoned"))),
        "{titles:?}"
    );
}

/// A new EC2 instance in moto, not yet a container instance.
async fn aws_sdk_ec2_free_instance(s: &Setup) -> String {
    // moto's EC2 is reached over its Query API; the SDK for EC2 is not a dependency, so use the
    // Auto Scaling group: raising its desired capacity launches an instance in moto.
    let asg = aws_sdk_autoscaling::Client::new(&s.sdk);
    let g = |out: aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput| {
        out.auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|i| i.instance_id().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let before = g(asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("demo-ecs-asg")
        .send()
        .await
        .unwrap());
    asg.set_desired_capacity()
        .auto_scaling_group_name("demo-ecs-asg")
        .desired_capacity(before.len() as i32 + 1)
        .send()
        .await
        .unwrap();
    let after = g(asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("demo-ecs-asg")
        .send()
        .await
        .unwrap());
    after.into_iter().find(|i| !before.contains(i)).unwrap()
}

#[tokio::test]
async fn warm_pool_transitions_complete_at_once() {
    let s = Setup::new().await;
    let ec2 = aws_sdk_ec2_free_instance(&s).await;
    s.aws
        .start_lifecycle_action(&ec2, "demo-ecs-asg", "fleetguard-join", LAUNCHING)
        .await;
    let ctx = context(&s, &[]).await;
    let mut e = lifecycle_event(
        "asg/launch-into-warm-pool.json",
        &ec2,
        "demo-ecs-asg",
        "fleetguard-join",
        Some(r#"{"ecs_cluster": "demo-ecs"}"#),
    );
    assert_eq!(e["detail"]["Destination"], "WarmPool");
    let out = invoke(&ctx, &e).await.unwrap();
    assert_eq!(out.outcome, "launch completed: into the warm pool");
    assert_eq!(s.completed().await.len(), 1);
    // Leaving the warm pool into service is a normal launch: it waits to join the cluster.
    s.aws
        .start_lifecycle_action(&ec2, "demo-ecs-asg", "fleetguard-join", LAUNCHING)
        .await;
    e = lifecycle_event(
        "asg/warm-pool-to-service.json",
        &ec2,
        "demo-ecs-asg",
        "fleetguard-join",
        Some(r#"{"ecs_cluster": "demo-ecs"}"#),
    );
    let out = invoke(&ctx, &e).await.unwrap();
    assert!(out.outcome.starts_with("waiting for"), "{out:?}");
    assert_eq!(s.completed().await.len(), 1);
}

#[tokio::test]
async fn dry_run_mutates_nothing_and_says_so() {
    let s = Setup::new().await;
    let (instance, ci) = s.ecs_instance(0);
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[("DRY_RUN", "true")]).await;
    let out = invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    assert!(
        out.actions
            .iter()
            .any(|a| a.starts_with("dry run: would set")),
        "{out:?}"
    );
    assert_eq!(s.status(&ci).await, "ACTIVE");
    // An empty instance in a dry run: the completion is reported, not made.
    s.stop_tasks(&s.tasks_on(&ci).await).await;
    let out = invoke(&ctx, &sweep_event()).await.unwrap();
    assert!(
        out.actions
            .iter()
            .any(|a| a.starts_with("dry run: would complete")),
        "{out:?}"
    );
    assert!(s.calls("CompleteLifecycleAction").await.is_empty());
    assert!(s.calls("RecordLifecycleActionHeartbeat").await.is_empty());
    assert_eq!(s.status(&ci).await, "ACTIVE");
    let titles = s.slack_titles().await;
    assert!(
        titles.iter().all(|t| t.starts_with("[dry run]")),
        "{titles:?}"
    );
}

#[tokio::test]
async fn throttled_completion_is_retried_and_a_failure_fails_the_invocation() {
    let s = Setup::new().await;
    let web = s.fleet["web_instances"][1].as_str().unwrap().to_owned();
    s.aws
        .start_lifecycle_action(&web, "demo-web-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[]).await;
    let e = lifecycle_event(
        "asg/terminate-lifecycle-action.json",
        &web,
        "demo-web-asg",
        "fleetguard-drain",
        None,
    );
    s.aws
        .autoscaling_fail_next("CompleteLifecycleAction", 2, "Throttling")
        .await;
    invoke(&ctx, &e).await.unwrap();
    assert_eq!(s.calls("CompleteLifecycleAction").await.len(), 3);
    assert_eq!(s.completed().await.len(), 1);

    // A completion that keeps failing is a Lambda error (retried; the DLQ keeps it).
    let (instance, _) = s.ecs_instance(0);
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let (_, ci) = s.ecs_instance(0);
    s.stop_tasks(&s.tasks_on(&ci).await).await;
    s.aws
        .autoscaling_fail_next("CompleteLifecycleAction", 10, "Throttling")
        .await;
    let err = invoke(&ctx, &terminate_event(&instance)).await.unwrap_err();
    assert!(
        err.starts_with("AwsCallFailed: CompleteLifecycleAction"),
        "{err}"
    );
}

#[tokio::test]
async fn test_notifications_and_unmanaged_groups_are_acknowledged_and_ignored() {
    let s = Setup::new().await;
    let ctx = context(&s, &[("MANAGED_ASG_TAG", "team=payments")]).await;
    let out = invoke(&ctx, &sample("asg/test-notification.json"))
        .await
        .unwrap();
    assert!(out.outcome.contains("TEST_NOTIFICATION"), "{out:?}");
    let (instance, ci) = s.ecs_instance(0);
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let out = invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    assert_eq!(out.outcome, "ignored: group demo-ecs-asg is not managed");
    assert_eq!(s.status(&ci).await, "ACTIVE");
    assert!(s.calls("CompleteLifecycleAction").await.is_empty());
}

#[tokio::test]
async fn duplicate_messages_are_sent_once_with_the_dedupe_table() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe").await;
    let (instance, _) = s.ecs_instance(1);
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[("DEDUPE_TABLE", &table)]).await;
    invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    assert_eq!(s.slack_titles().await.len(), 1);
}

#[tokio::test]
async fn ecs_managed_draining_is_left_to_ecs_and_our_hook_completed_when_empty() {
    let s = Setup::new().await;
    // The group's capacity provider drains it: ECS's own termination hook is on the group.
    aws_sdk_autoscaling::Client::new(&s.sdk)
        .put_lifecycle_hook()
        .auto_scaling_group_name("demo-ecs-asg")
        .lifecycle_hook_name("ecs-managed-draining-termination-hook")
        .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
        .heartbeat_timeout(3600)
        .default_result("CONTINUE")
        .send()
        .await
        .unwrap();
    let (instance, ci) = s.ecs_instance(1);
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[]).await;
    let out = invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    assert!(out.outcome.starts_with("draining"), "{out:?}");
    assert!(
        out.actions
            .iter()
            .any(|a| a.contains("ECS managed draining")),
        "{out:?}"
    );
    assert_eq!(s.status(&ci).await, "ACTIVE", "DRAINING is ECS's to set");
    let text = s.aws.slack_requests().await[0]["body"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("ECS managed draining"), "{text}");

    // ECS drains it and its tasks stop: our hook (only ours) is completed.
    s.ecs
        .update_container_instances_state()
        .cluster("demo-ecs")
        .container_instances(&ci)
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .unwrap();
    s.stop_tasks(&s.tasks_on(&ci).await).await;
    let event = container_instance_event(&s.fleet, &instance, &ci, "DRAINING", 0);
    assert_eq!(
        invoke(&ctx, &event).await.unwrap().outcome,
        "completed: drained"
    );
    let completes = s.calls("CompleteLifecycleAction").await;
    assert_eq!(completes.len(), 1);
    assert_eq!(
        completes[0]["params"]["LifecycleHookName"],
        "fleetguard-drain"
    );
}

#[tokio::test]
async fn scale_in_to_the_warm_pool_is_drained_then_undone_when_it_returns() {
    // Against moto: the drain and its mark (PutAttributes), the completion by the event's token,
    // and on the return the container instance set ACTIVE and the mark removed
    // (DeleteAttributes). The lifecycle fake holds the instance in `Warmed:Pending:Wait`.
    let s = Setup::new().await;
    let (instance, ci) = s.ecs_instance(1);
    let action = s
        .aws
        .start_lifecycle_action_in(
            &instance,
            "demo-ecs-asg",
            "fleetguard-drain",
            TERMINATING,
            "Warmed:Pending:Wait",
        )
        .await;
    let ctx = context(&s, &[]).await;
    let mut e = lifecycle_event(
        "asg/terminate-into-warm-pool.json",
        &instance,
        "demo-ecs-asg",
        "fleetguard-drain",
        Some(r#"{"ecs_cluster": "demo-ecs"}"#),
    );
    e["detail"]["LifecycleActionToken"] = action["LifecycleActionToken"].clone();
    let out = invoke(&ctx, &e).await.unwrap();
    assert!(out.outcome.starts_with("draining:"), "{out:?}");
    assert_eq!(s.status(&ci).await, "DRAINING");
    let mark = s.drain_mark(&ci).await.expect("the drain is marked");
    assert!(mark.starts_with("warm-pool@"), "{mark}");
    assert!(s.completed().await.is_empty());

    // The tasks stop; ECS reports the empty instance: the terminate hook is completed.
    let tasks = s.tasks_on(&ci).await;
    s.stop_tasks(&tasks).await;
    let out = invoke(&ctx, &s.container_instance_event(&ci).await)
        .await
        .unwrap();
    assert_eq!(out.outcome, "completed: drained", "{out:?}");
    assert_eq!(s.completed().await.len(), 1);
    assert_eq!(
        s.calls("CompleteLifecycleAction").await[0]["params"]["LifecycleActionToken"],
        Value::Null,
        "the wake-up completes by instance id (no token in an ECS event)"
    );

    // Back into service through our launch hook: ACTIVE again, unmarked, launch completed.
    let launch = s
        .aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-join", LAUNCHING)
        .await;
    let mut e = lifecycle_event(
        "asg/warm-pool-to-service.json",
        &instance,
        "demo-ecs-asg",
        "fleetguard-join",
        Some(r#"{"ecs_cluster": "demo-ecs"}"#),
    );
    e["detail"]["LifecycleActionToken"] = launch["LifecycleActionToken"].clone();
    let out = invoke(&ctx, &e).await.unwrap();
    assert_eq!(
        out.outcome, "launch completed: joined ECS cluster demo-ecs",
        "{out:?}"
    );
    assert_eq!(s.status(&ci).await, "ACTIVE");
    assert_eq!(s.drain_mark(&ci).await, None);
    let done = s.completed().await;
    assert_eq!(done.len(), 2);
    assert_eq!(done[1]["LifecycleHookName"], "fleetguard-join");
    assert_eq!(
        s.calls("CompleteLifecycleAction").await[1]["params"]["LifecycleActionToken"],
        launch["LifecycleActionToken"],
        "an event's action is completed by its token"
    );
}

#[tokio::test]
async fn slack_down_at_the_completion_still_delivers_the_drained_message_on_the_retry() {
    // The defect: messages were built only when the completion reported "completed"; with Slack
    // down then, the retry found the action complete and "drained" was never sent. With the
    // dedupe table the message is stashed in DynamoDB before the completion.
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe-stash").await;
    let (instance, ci) = s.ecs_instance(1);
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[("DEDUPE_TABLE", &table)]).await;
    invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    let tasks = s.tasks_on(&ci).await;
    s.stop_tasks(&tasks).await;
    let emptied = s.container_instance_event(&ci).await;
    s.aws.slack_fail_next(503, 20, None).await;
    let e = invoke(&ctx, &emptied).await.unwrap_err();
    assert!(e.contains("slack"), "{e:?}");
    assert_eq!(
        s.completed().await.len(),
        1,
        "completed before the message failed"
    );
    s.aws.slack_reset().await;
    // Lambda's retry, in a new execution environment (nothing in memory): from DynamoDB.
    let retry = context(&s, &[("DEDUPE_TABLE", &table)]).await;
    invoke(&retry, &emptied).await.unwrap();
    let titles = s.slack_titles().await;
    assert_eq!(
        titles,
        vec![format!("Drained {instance}: termination continues")],
        "{titles:?}"
    );
    // And once only.
    invoke(&retry, &emptied).await.unwrap();
    invoke(&retry, &sweep_event()).await.unwrap();
    assert_eq!(s.slack_titles().await.len(), 1);
}

#[tokio::test]
async fn a_completion_message_given_up_on_fails_one_invocation_not_every_later_sweep() {
    // The defect: a stashed completion message whose Slack posts twice ended with an unknown
    // outcome is never sent again; kept in the stash, it failed every minute's sweep until the
    // stash expired (two days: up to 2,880 dead letters).
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe-given-up").await;
    let (instance, ci) = s.ecs_instance(1);
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let ctx = context(&s, &[("DEDUPE_TABLE", &table)]).await;
    invoke(&ctx, &terminate_event(&instance)).await.unwrap();
    s.stop_tasks(&s.tasks_on(&ci).await).await;
    let emptied = s.container_instance_event(&ci).await;
    // Two posts that land but whose answers are lost: the outcome is unknown both times.
    s.aws.sink_drop("/services/", 2).await;
    let e = invoke(&ctx, &emptied).await.unwrap_err();
    assert!(e.contains("unknown"), "{e:?}");
    assert_eq!(s.completed().await.len(), 1, "completed before the message");
    let e = invoke(&ctx, &sweep_event()).await.unwrap_err();
    assert!(e.contains("unknown"), "{e:?}");
    // Given up: the sweep that finds it so fails once, naming it, and lets it go.
    let e = invoke(&ctx, &sweep_event()).await.unwrap_err();
    assert!(e.contains("not sent a third time"), "{e:?}");
    invoke(&ctx, &sweep_event()).await.unwrap();
    invoke(&ctx, &sweep_event()).await.unwrap();
    let drained: Vec<String> = s
        .slack_titles()
        .await
        .into_iter()
        .filter(|t| t.starts_with("Drained "))
        .collect();
    assert_eq!(
        drained,
        vec![format!("Drained {instance}: termination continues"); 2],
        "the two posts whose answers were lost, and no third"
    );
}
