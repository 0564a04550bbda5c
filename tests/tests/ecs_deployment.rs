//! `ecs-deployment` end to end against moto (ECS services, tasks and task definitions, SNS,
//! Secrets Manager, DynamoDB) and the Slack sink. moto has no ECS agent: the exit codes of a
//! deployment's stopped tasks are set with the local fixture that stands in for the agent's report.

use fleetguard::aws::Clients;
use fleetguard::notify::Deadline;
use fleetguard::{Context, Function};
use fleetguard_integration::{LocalAws, dedupe_table, drain_queue, sample, topic_with_queue};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/demo-ecs/checkout-api";
const NEW_DEPLOYMENT: &str = "ecs-svc/7301958264019283746";

struct Setup {
    aws: LocalAws,
    fleet: Value,
    sdk: aws_config::SdkConfig,
    ecs: aws_sdk_ecs::Client,
}

impl Setup {
    async fn new() -> Self {
        let aws = LocalAws::start();
        let fleet = aws.seed();
        aws.freeze_ecs_tasks().await;
        let sdk = aws.sdk_config().await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        Self {
            aws,
            fleet,
            sdk,
            ecs,
        }
    }

    async fn context_with(&self, extra: &[(&str, &str)], clients: Option<Clients>) -> Context {
        let mut env = BTreeMap::from([(
            "SLACK_WEBHOOK_SECRET_ARN".to_owned(),
            self.fleet["slack_webhook_secret_arn"]
                .as_str()
                .unwrap()
                .to_owned(),
        )]);
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let clients =
            clients.unwrap_or_else(|| Clients::build(&self.sdk, Function::EcsDeployment.needs()));
        Context::with_clients(
            Function::EcsDeployment,
            |k| env.get(k).cloned(),
            &self.sdk,
            clients,
        )
        .await
        .unwrap()
    }

    async fn context(&self, extra: &[(&str, &str)]) -> Context {
        self.context_with(extra, None).await
    }

    /// A new deployment of checkout-api with a new image whose tasks are OOM-killed: revision 3
    /// (`checkout-api:2026.11.21-1`) started by `NEW_DEPLOYMENT`, both tasks stopped with exit 137.
    async fn failing_deployment(&self) -> Vec<String> {
        use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};
        let logs = LogConfiguration::builder()
            .log_driver(LogDriver::Awslogs)
            .options("awslogs-group", "/ecs/checkout-api")
            .options("awslogs-region", "us-east-1")
            .options("awslogs-stream-prefix", "app")
            .build()
            .unwrap();
        self.ecs
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
        let ci = self.fleet["ecs_instances"][0]["container_instance_arn"]
            .as_str()
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let t = self
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
            self.aws
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

    async fn slack_bodies(&self) -> Vec<Value> {
        self.aws
            .slack_requests()
            .await
            .iter()
            .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
            .collect()
    }
}

fn header(body: &Value) -> String {
    let h = body["attachments"][0]["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default();
    match h.strip_prefix(':') {
        Some(rest) => rest.split_once(' ').map_or(rest, |(_, t)| t).to_owned(),
        None => h.to_owned(),
    }
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

async fn invoke(ctx: &Context, event: &Value) -> fleetguard::Summary {
    fleetguard::function::handle(ctx, event, Deadline::after(Duration::from_secs(60)))
        .await
        .unwrap_or_else(|e| panic!("{}: {}", e.error_type, e.message))
}

#[tokio::test]
async fn failed_deployment_is_one_message_with_the_evidence() {
    let s = Setup::new().await;
    let tasks = s.failing_deployment().await;
    let (topic, queue) = topic_with_queue(&s.sdk, "deployments").await;
    let ctx = s.context(&[("SNS_TOPIC_ARN", &topic)]).await;
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
    s.failing_deployment().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = s.context(&[("DEDUPE_TABLE", &table)]).await;
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
    let ctx = s.context(&[("DEDUPE_TABLE", &table)]).await;
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
    let ctx = s
        .context(&[("DEDUPE_TABLE", &table), ("REPORT_SUCCESS", "true")])
        .await;
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
    let ctx = s
        .context(&[
            ("DEDUPE_TABLE", &table),
            ("SERVICE_ALERT_WINDOW_SECONDS", "2"),
        ])
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
    let ctx = s.context(&[]).await;
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
    let ctx = s.context(&[("REPORT_TASK_FAILURES", "true")]).await;
    assert_eq!(invoke(&ctx, &oom).await.outcome, "notified: task-failed");
}

#[tokio::test]
async fn when_describe_calls_fail_the_message_still_goes_out_marked_incomplete() {
    let s = Setup::new().await;
    // An ECS endpoint that refuses every connection.
    let dead = aws_sdk_ecs::config::Builder::from(&s.sdk)
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let mut clients = Clients::build(&s.sdk, Function::EcsDeployment.needs());
    clients.ecs = Some(aws_sdk_ecs::Client::from_conf(dead));
    let ctx = s.context_with(&[], Some(clients)).await;
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
