//! The handler's main paths over the in-memory fakes: a failed deployment with its evidence, a
//! rollback from start to completion, an impaired service, and evidence that cannot be read.
//!
//! On tokio's paused time: the notifier's backoff and paces cost no wall-clock time.

use ecs_deployment::Handler;
use ecs_deployment::config::DeploymentConfig;
use fleetguard::config::CommonConfig;
use fleetguard::notify::{Notification, NotificationKind};
use fleetguard::ports::{
    ContainerDefinition, Deployment, Service, Task, TaskContainer, TaskDefinition,
};
use fleetguard::testing::{FakeAws, FakeNotifier, invoke, sample};

const FAILED: &str = "ecs-svc/4420175293018475612";
const OLD: &str = "ecs-svc/8375019264830175523";
const TD: &str = "arn:aws:ecs:eu-west-1:482917350264:task-definition/checkout-api";

type Ecs = Handler<FakeAws, FakeNotifier>;

fn handler(aws: &FakeAws) -> Ecs {
    Handler {
        common: CommonConfig::from_lookup(&|_| None).unwrap(),
        config: DeploymentConfig::from_lookup(|_| None).unwrap(),
        ecs: aws.clone(),
        notifier: FakeNotifier::new(),
    }
}

fn task_definition(revision: i32, image: &str) -> TaskDefinition {
    TaskDefinition {
        arn: format!("{TD}:{revision}"),
        family: "checkout-api".into(),
        revision,
        containers: vec![ContainerDefinition {
            name: "app".into(),
            image: image.into(),
            essential: true,
            awslogs: Some(("/ecs/checkout-api".into(), None, Some("app".into()))),
        }],
    }
}

fn deployment(id: &str, status: &str, revision: i32) -> Deployment {
    Deployment {
        id: id.into(),
        status: status.into(),
        task_definition_arn: format!("{TD}:{revision}"),
        rollout_state: Some(
            if status == "PRIMARY" {
                "IN_PROGRESS"
            } else {
                "FAILED"
            }
            .into(),
        ),
        rollout_state_reason: None,
        desired_count: 2,
        running_count: 0,
        failed_tasks: 4,
    }
}

/// checkout-api in prod-ecs: revision 8 failing with exit 137, rolling back to revision 7.
fn failing_service() -> FakeAws {
    let aws = FakeAws::new();
    aws.cluster("prod-ecs");
    let mut w = aws.world();
    w.services.push(Service {
        name: "checkout-api".into(),
        cluster_arn: "arn:aws:ecs:eu-west-1:482917350264:cluster/prod-ecs".into(),
        deployments: vec![
            deployment(OLD, "PRIMARY", 7),
            deployment(FAILED, "ACTIVE", 8),
        ],
        circuit_breaker: Some((true, true)),
        events: vec![(
            None,
            "(service checkout-api) rolling back to deployment ecs-svc/8375019264830175523".into(),
        )],
    });
    w.task_definitions
        .insert(format!("{TD}:7"), task_definition(7, "checkout-api:1.4.1"));
    w.task_definitions
        .insert(format!("{TD}:8"), task_definition(8, "checkout-api:1.5.0"));
    w.stopped_tasks.insert(
        ("prod-ecs".into(), "checkout-api".into()),
        vec![
            Task {
                arn: "arn:aws:ecs:eu-west-1:482917350264:task/prod-ecs/0f1e2d3c".into(),
                last_status: "STOPPED".into(),
                desired_status: "STOPPED".into(),
                group: Some("service:checkout-api".into()),
                started_by: Some(FAILED.into()),
                task_definition_arn: Some(format!("{TD}:8")),
                stop_code: Some("EssentialContainerExited".into()),
                stopped_reason: Some("Essential container in task exited".into()),
                containers: vec![TaskContainer {
                    name: "app".into(),
                    exit_code: Some(137),
                    reason: Some("OutOfMemoryError: Container killed due to memory usage".into()),
                    last_status: Some("STOPPED".into()),
                }],
                stopped_at: Some(1_795_000_000),
            },
            // Another deployment's stopped task is not this deployment's evidence.
            Task {
                arn: "arn:aws:ecs:eu-west-1:482917350264:task/prod-ecs/aaaa".into(),
                last_status: "STOPPED".into(),
                desired_status: "STOPPED".into(),
                group: Some("service:checkout-api".into()),
                started_by: Some("ecs-svc/1".into()),
                task_definition_arn: Some(format!("{TD}:6")),
                stop_code: None,
                stopped_reason: Some("Scaling activity initiated by deployment".into()),
                containers: vec![],
                stopped_at: Some(1_794_000_000),
            },
        ],
    );
    drop(w);
    aws
}

fn field<'a>(n: &'a Notification, name: &str) -> &'a str {
    n.fields
        .iter()
        .find(|f| f.name.starts_with(name))
        .map(|f| f.value.as_str())
        .unwrap_or_else(|| panic!("no field {name}: {:?}", n.fields))
}

#[tokio::test(start_paused = true)]
async fn failed_deployment_is_one_message_with_its_evidence() {
    let aws = failing_service();
    let h = handler(&aws);
    let out = invoke(&h, &sample("ecs/deployment-failed.json"))
        .await
        .unwrap();
    assert_eq!(out.outcome, "notified: deployment-failed");
    let sent = h.notifier.sent();
    assert_eq!(sent.len(), 1);
    let n = &sent[0];
    assert_eq!(n.kind, NotificationKind::DeploymentFailed);
    assert!(n.summary.contains("137"), "{}", n.summary);
    assert_eq!(
        field(n, "Task definition"),
        "checkout-api:7 → checkout-api:8"
    );
    assert_eq!(
        field(n, "Images changed"),
        "app: checkout-api:1.4.1 → checkout-api:1.5.0"
    );
    assert_eq!(field(n, "Rollback"), "yes, to checkout-api:7");
    let stopped = field(n, "Stopped tasks (1)");
    assert!(
        stopped.contains("0f1e2d3c") && stopped.contains("137"),
        "{stopped}"
    );
    assert!(!n.fields.iter().any(|f| f.name == "Incomplete"));
}

#[tokio::test(start_paused = true)]
async fn evidence_that_cannot_be_read_is_named_and_never_blocks_the_message() {
    let aws = failing_service();
    aws.throttle("DescribeServices", 1);
    aws.throttle("ListTasks", 1);
    let h = handler(&aws);
    let out = invoke(&h, &sample("ecs/deployment-failed.json"))
        .await
        .unwrap();
    assert_eq!(out.outcome, "notified: deployment-failed");
    let n = &h.notifier.sent()[0];
    let missing = field(n, "Incomplete");
    assert!(
        missing.contains("service details (DescribeServices"),
        "{missing}"
    );
    assert!(missing.contains("stopped tasks (ListTasks"), "{missing}");
}

#[tokio::test(start_paused = true)]
async fn rollback_is_reported_started_then_completed() {
    let aws = failing_service();
    let h = handler(&aws);
    let started = invoke(&h, &sample("ecs/deployment-rollback-started.json"))
        .await
        .unwrap();
    assert_eq!(started.outcome, "notified: rollback-started");
    // The completion of the deployment rolled back to is the rollback's completion, even with
    // REPORT_SUCCESS off.
    let done = invoke(&h, &sample("ecs/deployment-rollback-completed.json"))
        .await
        .unwrap();
    assert_eq!(done.outcome, "notified: rollback-completed");
    let incidents: Vec<_> = h
        .notifier
        .sent()
        .iter()
        .map(|n| n.incident.clone().unwrap())
        .collect();
    assert_eq!(
        incidents[0].key, incidents[1].key,
        "one incident per service"
    );
    assert!(incidents[0].key.starts_with("deployment|arn:aws:ecs:"));
    assert_eq!(
        (incidents[0].phase, incidents[1].phase),
        (
            fleetguard::notify::Phase::Opened,
            fleetguard::notify::Phase::Resolved
        )
    );
    let kinds: Vec<_> = h.notifier.sent().iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [
            NotificationKind::RollbackStarted,
            NotificationKind::RollbackCompleted
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_plain_success_is_not_reported_by_default() {
    let aws = FakeAws::new();
    aws.cluster("prod-ecs");
    let h = handler(&aws);
    let out = invoke(&h, &sample("ecs/deployment-completed.json"))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("ignored"), "{}", out.outcome);
    assert!(h.notifier.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn impaired_service_is_alerted_and_info_is_ignored() {
    let aws = failing_service();
    let h = handler(&aws);
    let out = invoke(&h, &sample("ecs/service-task-start-impaired.json"))
        .await
        .unwrap();
    assert_eq!(out.outcome, "notified: service-impaired");
    let out = invoke(&h, &sample("ecs/service-steady-state.json"))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("ignored"), "{}", out.outcome);
    assert_eq!(h.notifier.sent().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn fargate_spot_interruption_is_reported() {
    let h = handler(&FakeAws::new());
    let out = invoke(&h, &sample("ecs/task-stopped-fargate-spot.json"))
        .await
        .unwrap();
    assert_eq!(out.outcome, "notified: fargate-spot-interruption");
}

#[tokio::test(start_paused = true)]
async fn a_delivery_failure_fails_the_invocation_naming_the_destination() {
    let aws = failing_service();
    let h = handler(&aws);
    h.notifier.fail_with(Some("slack:default"));
    let err = invoke(&h, &sample("ecs/deployment-failed.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "DeliveryFailed");
    assert!(err.message.contains("slack:default"), "{}", err.message);
}
