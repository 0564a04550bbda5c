//! The local AWS the other integration tests and `make demo` stand on: moto with the seeded demo
//! fleet, the Slack sink, and the Auto Scaling lifecycle fake (a test fixture; see its docs),
//! all driven through the real AWS SDK clients the functions use.

use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use fleetguard_integration::LocalAws;
use std::collections::BTreeSet;

#[tokio::test]
async fn seeded_demo_fleet_exists_in_moto() {
    let aws = LocalAws::start();
    let fleet = aws.seed();
    let sdk = aws.sdk_config().await;

    // ECS: every container instance is one of the ECS group's EC2 instances, each with tasks.
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let cluster = fleet["cluster"].as_str().unwrap();
    let arns = ecs
        .list_container_instances()
        .cluster(cluster)
        .send()
        .await
        .unwrap()
        .container_instance_arns
        .unwrap();
    assert_eq!(arns.len(), 3);
    let described = ecs
        .describe_container_instances()
        .cluster(cluster)
        .set_container_instances(Some(arns))
        .send()
        .await
        .unwrap();
    let ec2_ids: BTreeSet<String> = described
        .container_instances()
        .iter()
        .map(|c| c.ec2_instance_id().unwrap().to_owned())
        .collect();
    let seeded: BTreeSet<String> = fleet["ecs_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ec2_ids, seeded);
    for ci in described.container_instances() {
        assert_eq!(ci.status(), Some("ACTIVE"));
        let tasks = ecs
            .list_tasks()
            .cluster(cluster)
            .container_instance(ci.container_instance_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(tasks.task_arns().len(), 2, "two service tasks per instance");
    }

    // Auto Scaling (through the fake, which forwards to moto): both groups with both hooks.
    let asg = aws.autoscaling_client(&sdk);
    for group in ["demo-ecs-asg", "demo-web-asg"] {
        let hooks = asg
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .unwrap();
        let transitions: BTreeSet<&str> = hooks
            .lifecycle_hooks()
            .iter()
            .filter_map(|h| h.lifecycle_transition())
            .collect();
        assert_eq!(
            transitions,
            BTreeSet::from([
                "autoscaling:EC2_INSTANCE_LAUNCHING",
                "autoscaling:EC2_INSTANCE_TERMINATING"
            ])
        );
    }

    // ELBv2: the web instances are registered targets.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let health = elb
        .describe_target_health()
        .target_group_arn(fleet["target_group_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let targets: BTreeSet<String> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|t| t.target().and_then(|t| t.id()).map(str::to_owned))
        .collect();
    assert_eq!(targets.len(), 2);
    assert_eq!(
        targets,
        fleet["web_instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    );

    // SNS -> SQS: a published message and its attributes can be read back.
    let sns = aws_sdk_sns::Client::new(&sdk);
    sns.publish()
        .topic_arn(fleet["topic_arn"].as_str().unwrap())
        .message(r#"{"kind":"test"}"#)
        .message_attributes(
            "severity",
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value("critical")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let got = sqs
        .receive_message()
        .queue_url(fleet["queue_url"].as_str().unwrap())
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(got.messages()[0].body().unwrap()).unwrap();
    assert_eq!(body["Message"], r#"{"kind":"test"}"#);
    assert_eq!(body["MessageAttributes"]["severity"]["Value"], "critical");

    // Secrets Manager: the webhook secret points at the Slack sink.
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = sm
        .get_secret_value()
        .secret_id(fleet["slack_webhook_secret_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    assert!(v["url"].as_str().unwrap().starts_with(&aws.slack));
}

#[tokio::test]
async fn lifecycle_fake_speaks_the_auto_scaling_protocol() {
    let aws = LocalAws::start();
    let fleet = aws.seed();
    let sdk = aws.sdk_config().await;
    let asg = aws.autoscaling_client(&sdk);
    let instance = fleet["ecs_instances"][0]["instance_id"].as_str().unwrap();
    let group = "demo-ecs-asg";
    let hook = "fleetguard-drain";

    // Before: moto says InService.
    let before = asg
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    assert_eq!(
        before.auto_scaling_instances()[0].lifecycle_state(),
        Some("InService")
    );

    let action = aws
        .start_lifecycle_action(
            instance,
            group,
            hook,
            "autoscaling:EC2_INSTANCE_TERMINATING",
        )
        .await;
    assert_eq!(action["LifecycleActionToken"].as_str().unwrap().len(), 36);

    // Both describe calls report the wait state.
    let during = asg
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    assert_eq!(
        during.auto_scaling_instances()[0].lifecycle_state(),
        Some("Terminating:Wait")
    );
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap();
    let states: Vec<(&str, &str)> = groups.auto_scaling_groups()[0]
        .instances()
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap(),
                i.lifecycle_state().unwrap().as_str(),
            )
        })
        .collect();
    assert!(
        states.contains(&(instance, "Terminating:Wait")),
        "{states:?}"
    );
    assert_eq!(states.iter().filter(|(_, s)| *s == "InService").count(), 2);

    // Heartbeat, then a throttled completion that the SDK's standard retry gets through.
    asg.record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(hook)
        .instance_id(instance)
        .send()
        .await
        .unwrap();
    aws.autoscaling_fail_next("CompleteLifecycleAction", 1, "Throttling")
        .await;
    asg.complete_lifecycle_action()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(hook)
        .instance_id(instance)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .unwrap();

    // Completing again is AWS's "No active Lifecycle Action found".
    let again = asg
        .complete_lifecycle_action()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(hook)
        .instance_id(instance)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .unwrap_err();
    let again = again.into_service_error();
    assert_eq!(again.code(), Some("ValidationError"));
    assert!(
        again
            .message()
            .unwrap()
            .contains("No active Lifecycle Action found")
    );

    let actions = aws.lifecycle_actions().await;
    assert_eq!(actions["pending"].as_array().unwrap().len(), 0);
    let done = &actions["completed"][0];
    assert_eq!(done["Result"], "CONTINUE");
    assert_eq!(done["Heartbeats"], 1);
    let calls: Vec<String> = aws
        .autoscaling_calls()
        .await
        .iter()
        .map(|c| c["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "CompleteLifecycleAction")
            .count(),
        3,
        "{calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "RecordLifecycleActionHeartbeat")
            .count(),
        1
    );
}

#[tokio::test]
async fn slack_sink_records_posts_and_fails_on_demand() {
    let aws = LocalAws::start();
    let http = reqwest::Client::new();
    let url = format!("{}/services/T0/B0/secret", aws.slack);
    let post = || {
        http.post(&url)
            .header("content-type", "application/json")
            .body(r#"{"text":"hello"}"#)
            .send()
    };

    aws.slack_fail_next(429, 1, Some(2)).await;
    aws.slack_fail_next(500, 1, None).await;
    let r = post().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    assert_eq!(post().await.unwrap().status(), 500);
    let ok = post().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "ok");

    let seen = aws.slack_requests().await;
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2]["body"], r#"{"text":"hello"}"#);
    assert_eq!(seen[2]["headers"]["content-type"], "application/json");
    assert_eq!(seen[2]["path"], "/services/T0/B0/secret");
    let statuses: Vec<u64> = seen.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![429, 500, 200]);
    aws.slack_reset().await;
    assert!(aws.slack_requests().await.is_empty());
}

#[tokio::test]
async fn moto_task_transitions_can_be_frozen() {
    // moto moves a task one step towards STOPPED on every DescribeTasks unless frozen: tests that
    // count running tasks depend on this switch working.
    let aws = LocalAws::start();
    let fleet = aws.seed();
    aws.freeze_ecs_tasks().await;
    let sdk = aws.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let task = fleet["ecs_instances"][0]["tasks"][0].as_str().unwrap();
    for _ in 0..3 {
        let d = ecs
            .describe_tasks()
            .cluster("demo-ecs")
            .tasks(task)
            .send()
            .await
            .unwrap();
        assert_eq!(d.tasks()[0].last_status(), Some("RUNNING"));
    }
}
