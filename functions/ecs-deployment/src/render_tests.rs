use super::*;
use crate::config::DeploymentConfig;
use crate::decide::*;
use crate::evidence::FailedDeployment;
use fleetguard::events::{Detail, parse_value};

fn sample(name: &str) -> fleetguard::Event {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    parse_value(&serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()).unwrap()
}

fn deployment(name: &str) -> DeploymentStateChange {
    match sample(name).detail {
        Detail::DeploymentStateChange(d) => d,
        other => panic!("{other:?}"),
    }
}

#[test]
fn classifies_the_sample_deployment_events() {
    assert_eq!(
        classify(&deployment("ecs/deployment-failed.json")),
        DeploymentVerdict::Failed
    );
    assert_eq!(
        classify(&deployment("ecs/deployment-rollback-started.json")),
        DeploymentVerdict::RollbackStarted {
            to: Some("ecs-svc/8375019264830175523".into())
        }
    );
    assert_eq!(
        classify(&deployment("ecs/deployment-completed.json")),
        DeploymentVerdict::Completed
    );
    assert!(matches!(
        classify(&deployment("ecs/deployment-in-progress.json")),
        DeploymentVerdict::Ignore(_)
    ));
    // The AWS documentation's samples too.
    assert_eq!(
        classify(&deployment(
            "aws-docs/ecs-deployment-state-change-failed.json"
        )),
        DeploymentVerdict::Failed
    );
    assert!(matches!(
        classify(&deployment(
            "aws-docs/ecs-deployment-state-change-in-progress-rollback.json"
        )),
        DeploymentVerdict::RollbackStarted { .. }
    ));
}

#[test]
fn failed_message_with_nothing_found_still_goes_out_and_says_so() {
    let e = deployment("ecs/deployment-failed.json");
    let f = FailedDeployment {
        missing: vec!["service details (DescribeServices: AccessDenied)".into()],
        ..Default::default()
    };
    let n = render_failed(&e, &f, "eu-west-1");
    assert_eq!(n.title, "Deployment failed: checkout-api (prod-ecs)");
    assert!(n.summary.contains("tasks failed to start"));
    let incomplete = n.fields.iter().find(|f| f.name == "Incomplete").unwrap();
    assert!(incomplete.value.contains("AccessDenied"));
    assert!(
        n.links
            .iter()
            .any(|l| l.url.contains("/services/checkout-api/deployments"))
    );
}

#[test]
fn exit_codes_and_log_links() {
    assert_eq!(exit_code_hint(137), Some("SIGKILL: likely out of memory"));
    let td = TaskDefinition {
        arn: "arn:aws:ecs:eu-west-1:1:task-definition/api:3".into(),
        family: "api".into(),
        revision: 3,
        containers: vec![fleetguard::ports::ContainerDefinition {
            name: "app".into(),
            image: "api:3".into(),
            essential: true,
            awslogs: Some(("/ecs/api".into(), None, Some("app".into()))),
        }],
    };
    let task = Task {
        arn: "arn:aws:ecs:eu-west-1:1:task/prod/abc123".into(),
        last_status: "STOPPED".into(),
        desired_status: "STOPPED".into(),
        group: None,
        started_by: None,
        task_definition_arn: None,
        stop_code: None,
        stopped_reason: None,
        containers: vec![],
        stopped_at: None,
    };
    assert_eq!(
        log_stream_link("eu-west-1", &td, &task).unwrap(),
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Fecs$252Fapi/log-events/app$252Fapp$252Fabc123"
    );
}

#[test]
fn service_actions_info_is_ignored_warn_is_alerted() {
    let window = Duration::from_secs(900);
    for (name, alert) in [
        ("ecs/service-steady-state.json", false),
        ("ecs/service-task-start-impaired.json", true),
        ("ecs/service-placement-failure.json", true),
        ("ecs/service-new-action-name.json", true),
    ] {
        let Detail::ServiceAction(a) = sample(name).detail else {
            panic!("{name}")
        };
        let n = render_service_action(&a, None, None, window, "eu-west-1");
        assert_eq!(n.is_some(), alert, "{name}");
        if let Some(n) = n {
            assert_eq!(n.dedupe_ttl, window);
            assert!(n.dedupe_key.starts_with("service-action|"));
        }
    }
}

#[test]
fn fargate_spot_and_task_failures() {
    let c = DeploymentConfig::from_lookup(|_| None).unwrap();
    let Detail::TaskStateChange(t) = sample("ecs/task-stopped-fargate-spot.json").detail else {
        panic!()
    };
    let n = render_task(&t, &c, "eu-west-1").unwrap();
    assert_eq!(n.kind, NotificationKind::FargateSpotInterruption);
    assert!(n.title.contains("image-resizer"));
    let Detail::TaskStateChange(t) = sample("ecs/task-stopped-oom.json").detail else {
        panic!()
    };
    assert!(render_task(&t, &c, "eu-west-1").is_none(), "off by default");
    let on =
        DeploymentConfig::from_lookup(|k| (k == "REPORT_TASK_FAILURES").then(|| "true".into()))
            .unwrap();
    let n = render_task(&t, &on, "eu-west-1").unwrap();
    assert_eq!(n.kind, NotificationKind::TaskFailed);
    assert!(
        n.fields
            .iter()
            .any(|f| f.value.contains("137 (SIGKILL: likely out of memory)")),
        "{:?}",
        n.fields
    );
    let Detail::TaskStateChange(t) = sample("ecs/task-running.json").detail else {
        panic!()
    };
    assert!(render_task(&t, &on, "eu-west-1").is_none());
}
