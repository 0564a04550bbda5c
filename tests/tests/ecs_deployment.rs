//! `ecs-deployment` end to end against moto (ECS services, tasks and task definitions, SNS,
//! Secrets Manager, DynamoDB) and the Slack sink. moto has no ECS agent: the exit codes of a
//! deployment's stopped tasks are set with the local fixture that stands in for the agent's report.

use fleetguard_integration::{
    Setup, dedupe_table, drain_queue, lookup, sample, slack_header as header, topic_with_queue,
};
use serde_json::{Value, json};
use std::time::Duration;

const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/demo-ecs/checkout-api";
const NEW_DEPLOYMENT: &str = "ecs-svc/7301958264019283746";

async fn context(s: &Setup, extra: &[(&str, &str)]) -> ecs_deployment::Lambda {
    ecs_deployment::build(lookup(&s.env(extra)), &s.sdk)
        .await
        .unwrap()
}

/// A new deployment of checkout-api with a new image whose tasks are OOM-killed: revision 3
/// (`checkout-api:2026.11.21-1`) started by `NEW_DEPLOYMENT`, both tasks stopped with exit 137.
async fn failing_deployment(s: &Setup) -> Vec<String> {
    use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};
    let logs = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", "/ecs/checkout-api")
        .options("awslogs-region", "us-east-1")
        .options("awslogs-stream-prefix", "app")
        .build()
        .unwrap();
    s.ecs
        .register_task_definition()
        .family("checkout-api")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout-api:2026.11.21-1")
                .memory(512)
                .cpu(256)
                .essential(true)
                .log_configuration(logs)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ci = s.fleet["ecs_instances"][0]["container_instance_arn"]
        .as_str()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let t = s
            .ecs
            .start_task()
            .cluster("demo-ecs")
            .task_definition("checkout-api:3")
            .container_instances(ci)
            .started_by(NEW_DEPLOYMENT)
            .group("service:checkout-api")
            .send()
            .await
            .unwrap();
        let arn = t.tasks()[0].task_arn().unwrap().to_owned();
        s.aws
            .ecs_task_stopped(
                &arn,
                "EssentialContainerExited",
                "Essential container in task exited",
                json!([{"name": "app", "exitCode": 137,
                        "reason": "OutOfMemoryError: Container killed due to memory usage"}]),
            )
            .await;
        tasks.push(arn);
    }
    tasks
}

fn deployment_event(file: &str, deployment_id: &str, reason: Option<&str>) -> Value {
    let mut e = sample(file);
    e["region"] = json!("us-east-1");
    e["account"] = json!("123456789012");
    e["resources"] = json!([SERVICE_ARN]);
    e["detail"]["deploymentId"] = json!(deployment_id);
    if let Some(r) = reason {
        e["detail"]["reason"] = json!(r);
    }
    e
}

fn service_action_event(file: &str) -> Value {
    let mut e = sample(file);
    e["region"] = json!("us-east-1");
    e["account"] = json!("123456789012");
    e["resources"] = json!([SERVICE_ARN]);
    e["detail"]["clusterArn"] = json!("arn:aws:ecs:us-east-1:123456789012:cluster/demo-ecs");
    e
}

async fn invoke<F: fleetguard::serve::Function>(
    f: &F,
    event: &Value,
) -> fleetguard::serve::Summary {
    fleetguard_integration::invoke(f, event)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn failed_deployment_is_one_message_with_the_evidence() {
    let s = Setup::new().await;
    let tasks = failing_deployment(&s).await;
    let (topic, queue) = topic_with_queue(&s.sdk, "deployments").await;
    let ctx = context(&s, &[("SNS_TOPIC_ARN", &topic)]).await;
    let out = invoke(
        &ctx,
        &deployment_event("ecs/deployment-failed.json", NEW_DEPLOYMENT, None),
    )
    .await;
    assert_eq!(out.outcome, "notified: deployment-failed");

    let bodies = s.slack_bodies().await;
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        header(&bodies[0]),
        "Deployment failed: checkout-api (demo-ecs)"
    );
    let text = bodies[0].to_string();
    for want in [
        "tasks failed to start",
        "checkout-api:2 → checkout-api:3",
        "checkout-api:2026.11.20-3 → 123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout-api:2026.11.21-1",
        "Stopped tasks (2)",
        "EssentialContainerExited",
        "app exit 137 (SIGKILL: likely out of memory)",
        "OutOfMemoryError",
        "exited with code 137",
        NEW_DEPLOYMENT,
        "/ecs/v2/clusters/demo-ecs/services/checkout-api/deployments?region=us-east-1",
        "#logsV2:log-groups/log-group/$252Fecs$252Fcheckout-api/log-events/app$252Fapp$252F",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
    let task_id = tasks[0].rsplit('/').next().unwrap();
    assert!(text.contains(&task_id[..12]), "{text}");
    assert!(!text.contains("Incomplete"), "{text}");

    // The same message on SNS, with filterable attributes.
    let sqs = aws_sdk_sqs::Client::new(&s.sdk);
    let msgs = drain_queue(&sqs, &queue).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0]["MessageAttributes"]["kind"]["Value"],
        "deployment-failed"
    );
    let body: Value = serde_json::from_str(msgs[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["title"], "Deployment failed: checkout-api (demo-ecs)");
}

#[tokio::test]
async fn duplicate_failed_events_send_one_message_with_the_dedupe_table() {
    let s = Setup::new().await;
    failing_deployment(&s).await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = context(&s, &[("DEDUPE_TABLE", &table)]).await;
    let e = deployment_event("ecs/deployment-failed.json", NEW_DEPLOYMENT, None);
    invoke(&ctx, &e).await;
    let again = invoke(&ctx, &e).await;
    assert_eq!(again.outcome, "deployment-failed: already delivered");
    assert_eq!(s.slack_bodies().await.len(), 1);
}

#[tokio::test]
async fn rollback_started_then_completed() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = context(&s, &[("DEDUPE_TABLE", &table)]).await;
    let primary = s.fleet["deployment_id"].as_str().unwrap();
    let started = deployment_event(
        "ecs/deployment-rollback-started.json",
        primary,
        Some(&format!(
            "ECS deployment circuit breaker: rolling back to deploymentId {primary}."
        )),
    );
    assert_eq!(
        invoke(&ctx, &started).await.outcome,
        "notified: rollback-started"
    );
    let completed = deployment_event("ecs/deployment-rollback-completed.json", primary, None);
    assert_eq!(
        invoke(&ctx, &completed).await.outcome,
        "notified: rollback-completed"
    );
    let titles: Vec<String> = s.slack_bodies().await.iter().map(header).collect();
    assert_eq!(
        titles,
        vec![
            "Rollback started: checkout-api (demo-ecs)",
            "Rollback completed: checkout-api (demo-ecs)"
        ]
    );
    let text = s.slack_bodies().await[0].to_string();
    assert!(
        text.contains("checkout-api:2"),
        "names the revision rolled back to: {text}"
    );

    // A plain successful deployment is not reported, unless REPORT_SUCCESS is set.
    let plain = deployment_event("ecs/deployment-completed.json", "ecs-svc/1111111111", None);
    assert!(invoke(&ctx, &plain).await.outcome.starts_with("ignored"));
    let ctx = context(&s, &[("DEDUPE_TABLE", &table), ("REPORT_SUCCESS", "true")]).await;
    assert_eq!(
        invoke(&ctx, &plain).await.outcome,
        "notified: deployment-completed"
    );
    assert_eq!(s.slack_bodies().await.len(), 3);
}

#[tokio::test]
async fn impaired_service_alerts_are_throttled_per_service_and_event_name() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = context(
        &s,
        &[
            ("DEDUPE_TABLE", &table),
            ("SERVICE_ALERT_WINDOW_SECONDS", "2"),
        ],
    )
    .await;
    let impaired = service_action_event("ecs/service-task-start-impaired.json");
    assert_eq!(
        invoke(&ctx, &impaired).await.outcome,
        "notified: service-impaired"
    );
    // The same alert again within the window: not sent.
    let mut again = impaired.clone();
    again["id"] = json!("6c1e2f0a-0000-4000-8000-000000000002");
    assert!(
        invoke(&ctx, &again)
            .await
            .outcome
            .ends_with("already delivered")
    );
    // Another event name for the same service is its own alert.
    let placement = service_action_event("ecs/service-placement-failure.json");
    assert_eq!(
        invoke(&ctx, &placement).await.outcome,
        "notified: service-impaired"
    );
    // Steady state (INFO) is never an alert.
    let steady = service_action_event("ecs/service-steady-state.json");
    assert!(invoke(&ctx, &steady).await.outcome.starts_with("ignored"));
    assert_eq!(s.slack_bodies().await.len(), 2);
    // After the window, the still-impaired service alerts again.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        invoke(&ctx, &again).await.outcome,
        "notified: service-impaired"
    );
    assert_eq!(s.slack_bodies().await.len(), 3);
}

#[tokio::test]
async fn fargate_spot_interruption_is_reported() {
    let s = Setup::new().await;
    let ctx = context(&s, &[]).await;
    let out = invoke(&ctx, &sample("ecs/task-stopped-fargate-spot.json")).await;
    assert_eq!(out.outcome, "notified: fargate-spot-interruption");
    let bodies = s.slack_bodies().await;
    assert_eq!(
        header(&bodies[0]),
        "Fargate Spot interruption: image-resizer (prod-ecs)"
    );
    // An OOM exit outside a deployment is reported only with REPORT_TASK_FAILURES.
    let oom = sample("ecs/task-stopped-oom.json");
    assert!(invoke(&ctx, &oom).await.outcome.starts_with("ignored"));
    let ctx = context(&s, &[("REPORT_TASK_FAILURES", "true")]).await;
    assert_eq!(invoke(&ctx, &oom).await.outcome, "notified: task-failed");
}

#[tokio::test]
async fn when_describe_calls_fail_the_message_still_goes_out_marked_incomplete() {
    let s = Setup::new().await;
    // An ECS endpoint that refuses every connection.
    let dead = aws_sdk_ecs::config::Builder::from(&s.sdk)
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let mut ctx = context(&s, &[]).await;
    ctx.ecs = fleetguard::adapters::ecs::Ecs::new(aws_sdk_ecs::Client::from_conf(dead));
    let out = invoke(
        &ctx,
        &deployment_event("ecs/deployment-failed.json", NEW_DEPLOYMENT, None),
    )
    .await;
    assert_eq!(out.outcome, "notified: deployment-failed");
    let text = s.slack_bodies().await[0].to_string();
    assert!(text.contains("Incomplete"), "{text}");
    assert!(
        text.contains("could not read: service details (DescribeServices"),
        "{text}"
    );
    assert!(text.contains("stopped tasks (ListTasks"), "{text}");
    assert!(text.contains("tasks failed to start"), "{text}");
}
