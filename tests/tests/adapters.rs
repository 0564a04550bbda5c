//! Adapter tests with `aws-smithy-mocks`: the exact requests the ECS adapter sends, and its
//! behaviour under throttling, through the real SDK client and its standard retry mode.

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::operation::describe_container_instances::DescribeContainerInstancesOutput;
use aws_sdk_ecs::operation::list_container_instances::ListContainerInstancesOutput;
use aws_sdk_ecs::operation::update_container_instances_state::UpdateContainerInstancesStateOutput;
use aws_sdk_ecs::types::ContainerInstanceStatus;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use fleetguard::adapters::ecs::Ecs;
use fleetguard::ids::InstanceId;
use fleetguard::ports::{ContainerInstance, ContainerInstances, DrainResult};

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

fn container_instance(status: &str) -> ContainerInstance {
    ContainerInstance {
        cluster_arn: "arn:aws:ecs:eu-west-1:111122223333:cluster/prod".into(),
        arn: "arn:aws:ecs:eu-west-1:111122223333:container-instance/prod/abc".into(),
        ec2_instance_id: "i-0a1b2c3d4e5f60718".into(),
        status: status.into(),
        agent_connected: true,
        running_tasks_count: 3,
        pending_tasks_count: 0,
        instance_type: None,
        availability_zone: None,
        drain_mark: None,
    }
}

#[tokio::test]
async fn throttled_drain_is_retried_then_succeeds() {
    let rule = mock!(aws_sdk_ecs::Client::update_container_instances_state)
        .match_requests(|r| {
            r.status() == Some(&ContainerInstanceStatus::Draining)
                && r.cluster() == Some("arn:aws:ecs:eu-west-1:111122223333:cluster/prod")
                && r.container_instances()
                    == ["arn:aws:ecs:eu-west-1:111122223333:container-instance/prod/abc"]
        })
        .sequence()
        .http_status(400, Some(THROTTLED.to_owned()))
        .times(2)
        .output(|| UpdateContainerInstancesStateOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule], |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(5)));
    let ecs = Ecs::new(client);
    assert_eq!(
        ecs.drain(&container_instance("ACTIVE"), None)
            .await
            .unwrap(),
        DrainResult::Drained
    );
    assert_eq!(
        rule.num_calls(),
        3,
        "two throttled attempts, then the one that worked"
    );
}

#[tokio::test]
async fn throttling_past_the_retry_budget_is_an_error_naming_the_call() {
    let rule = mock!(aws_sdk_ecs::Client::update_container_instances_state)
        .sequence()
        .http_status(400, Some(THROTTLED.to_owned()))
        .times(10)
        .build();
    let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule], |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(3)));
    let err = Ecs::new(client)
        .drain(&container_instance("ACTIVE"), None)
        .await
        .unwrap_err();
    assert_eq!(err.operation, "UpdateContainerInstancesState");
    assert_eq!(err.code.as_deref(), Some("ThrottlingException"));
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn already_draining_makes_no_call() {
    let rule = mock!(aws_sdk_ecs::Client::update_container_instances_state)
        .then_output(|| UpdateContainerInstancesStateOutput::builder().build());
    let client = mock_client!(aws_sdk_ecs, [&rule]);
    let r = Ecs::new(client)
        .drain(&container_instance("DRAINING"), None)
        .await
        .unwrap();
    assert_eq!(r, DrainResult::AlreadyDraining);
    assert_eq!(rule.num_calls(), 0);
}

#[tokio::test]
async fn found_container_instance_must_be_the_instance_asked_for() {
    // An ECS that ignores the filter (as moto does) returns every container instance.
    let list = mock!(aws_sdk_ecs::Client::list_container_instances)
        .match_requests(|r| {
            r.filter()
                .is_some_and(|f| f.starts_with("ec2InstanceId == i-"))
        })
        .then_output(|| {
            ListContainerInstancesOutput::builder()
                .container_instance_arns("arn:aws:ecs:eu-west-1:1:container-instance/prod/one")
                .container_instance_arns("arn:aws:ecs:eu-west-1:1:container-instance/prod/two")
                .build()
        });
    let describe = mock!(aws_sdk_ecs::Client::describe_container_instances).then_output(|| {
        DescribeContainerInstancesOutput::builder()
            .container_instances(
                aws_sdk_ecs::types::ContainerInstance::builder()
                    .container_instance_arn("arn:aws:ecs:eu-west-1:1:container-instance/prod/one")
                    .ec2_instance_id("i-0ffffffffffffffff")
                    .status("ACTIVE")
                    .build(),
            )
            .container_instances(
                aws_sdk_ecs::types::ContainerInstance::builder()
                    .container_instance_arn("arn:aws:ecs:eu-west-1:1:container-instance/prod/two")
                    .ec2_instance_id("i-0a1b2c3d4e5f60718")
                    .status("ACTIVE")
                    .build(),
            )
            .build()
    });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list, &describe]);
    let ecs = Ecs::new(client);
    let found = ecs
        .find_container_instance("prod", &InstanceId::parse("i-0a1b2c3d4e5f60718").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(found.arn.ends_with("/two"));
    assert_eq!(found.cluster_arn, "arn:aws:ecs:eu-west-1:1:cluster/prod");
    // An instance that is not there is not found, even though the (ignored) filter listed two.
    let none = ecs
        .find_container_instance("prod", &InstanceId::parse("i-0123456789abcdef0").unwrap())
        .await
        .unwrap();
    assert!(none.is_none());
}

const ATTRIBUTE_LIMIT: &str = r#"{"__type":"AttributeLimitExceededException","message":"You can apply up to 10 custom attributes for each resource."}"#;

/// Issue 23, situation 3: at ECS's 10 custom attributes the mark is refused; the drain is made
/// all the same (the mark is not tried twice: a limit refusal is final).
#[tokio::test]
async fn a_mark_refused_at_the_attribute_limit_still_drains() {
    use aws_sdk_ecs::operation::put_attributes::PutAttributesOutput;
    use fleetguard::ports::{DrainMark, DrainReason};
    let put = mock!(aws_sdk_ecs::Client::put_attributes)
        .sequence()
        .http_status(400, Some(ATTRIBUTE_LIMIT.to_owned()))
        .times(5)
        .output(|| PutAttributesOutput::builder().build())
        .build();
    let drain = mock!(aws_sdk_ecs::Client::update_container_instances_state)
        .match_requests(|r| r.status() == Some(&ContainerInstanceStatus::Draining))
        .then_output(|| UpdateContainerInstancesStateOutput::builder().build());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&put, &drain], |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(3)));
    let mark = DrainMark {
        reason: DrainReason::SpotStop,
        at: 1_800_000_000,
    };
    let r = Ecs::new(client)
        .drain(&container_instance("ACTIVE"), Some(mark))
        .await
        .unwrap();
    assert_eq!(r, DrainResult::DrainedUnmarked);
    assert_eq!(drain.num_calls(), 1);
    assert_eq!(put.num_calls(), 1, "a limit refusal is not retried");
}

/// A mark throttled past the SDK's retries gets a second chance after the drain.
#[tokio::test]
async fn a_throttled_mark_is_tried_again_after_the_drain() {
    use aws_sdk_ecs::operation::put_attributes::PutAttributesOutput;
    use fleetguard::ports::{DrainMark, DrainReason};
    let put = mock!(aws_sdk_ecs::Client::put_attributes)
        .sequence()
        .http_status(400, Some(THROTTLED.to_owned()))
        .times(2)
        .output(|| PutAttributesOutput::builder().build())
        .build();
    let drain = mock!(aws_sdk_ecs::Client::update_container_instances_state)
        .then_output(|| UpdateContainerInstancesStateOutput::builder().build());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&put, &drain], |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(2)));
    let mark = DrainMark {
        reason: DrainReason::SpotStop,
        at: 1_800_000_000,
    };
    let r = Ecs::new(client)
        .drain(&container_instance("ACTIVE"), Some(mark))
        .await
        .unwrap();
    assert_eq!(r, DrainResult::Drained);
    assert_eq!(
        put.num_calls(),
        3,
        "two throttled attempts, then the second chance"
    );
    assert_eq!(drain.num_calls(), 1);
}
