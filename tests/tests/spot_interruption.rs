//! `spot-interruption` end to end against moto (ECS, ELBv2, Auto Scaling, SNS, Secrets Manager,
//! DynamoDB) and the Slack sink.

use fleetguard_integration::{Setup, dedupe_table, invoke, lookup, sample};
use serde_json::Value;

async fn context(s: &Setup, extra: &[(&str, &str)]) -> spot_interruption::Lambda {
    let mut env = s.env(&[("SNS_TOPIC_ARN", &s.seeded("topic_arn"))]);
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    spot_interruption::build(lookup(&env), &s.sdk)
        .await
        .unwrap()
}

/// A new cluster with a container instance of `instance` registered in it: the ECS client and
/// the container instance's ARN.
async fn container_instance_in_new_cluster(
    s: &Setup,
    cluster: &str,
    instance: &str,
) -> (aws_sdk_ecs::Client, String) {
    let ecs = aws_sdk_ecs::Client::new(&s.sdk);
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
    let doc = serde_json::json!({"instanceId": instance, "region": "us-east-1"}).to_string();
    let ci = ecs
        .register_container_instance()
        .cluster(cluster)
        .instance_identity_document(doc)
        .send()
        .await
        .unwrap()
        .container_instance
        .unwrap()
        .container_instance_arn
        .unwrap();
    (ecs, ci)
}

/// The sample event, about `instance` instead, sent just now (the warning's clock is real).
fn warning(file: &str, instance: &str) -> Value {
    let mut e = sample(file);
    e["detail"]["instance-id"] = Value::String(instance.to_owned());
    e["resources"] = serde_json::json!([format!(
        "arn:aws:ec2:us-east-1:123456789012:instance/{instance}"
    )]);
    e["region"] = Value::String("us-east-1".into());
    e["time"] =
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    e
}

#[tokio::test]
async fn ecs_instance_is_drained_and_announced_once() {
    let s = Setup::new().await;
    let ctx = context(&s, &[]).await;
    let (instance, ci) = s.ecs_instance(0);
    assert_eq!(s.status(&ci).await, "ACTIVE");

    let summary = invoke(
        &ctx,
        &warning("spot/interruption-terminate.json", &instance),
    )
    .await
    .unwrap();
    assert_eq!(summary.outcome, "drained");
    assert!(
        summary.actions[0].ends_with("DRAINING") && summary.actions[0].contains(&ci),
        "{:?}",
        summary.actions
    );
    assert_eq!(s.status(&ci).await, "DRAINING");

    // The other instances are untouched (moto ignores the ec2InstanceId filter: we check it).
    let (_, other) = s.ecs_instance(1);
    assert_eq!(s.status(&other).await, "ACTIVE");

    let slack = s.aws.slack_requests().await;
    assert_eq!(slack.len(), 1);
    let body = slack[0]["body"].as_str().unwrap();
    for needle in [
        instance.as_str(),
        "demo-ecs",
        "ACTIVE → DRAINING",
        "checkout-api: 2",
        "m5.large",
        "demo-ecs-asg",
        "left",
    ] {
        assert!(body.contains(needle), "{needle} in {body}");
    }
    let sns = s.sns_messages().await;
    assert_eq!(sns.len(), 1);
    assert_eq!(
        sns[0]["MessageAttributes"]["kind"]["Value"],
        "spot-interruption"
    );
    assert_eq!(sns[0]["MessageAttributes"]["state"]["Value"], "terminate");
}

#[tokio::test]
async fn plain_ec2_instance_is_deregistered_from_its_target_groups() {
    let s = Setup::new().await;
    let ctx = context(&s, &[]).await;
    let web = s.fleet["web_instances"][0].as_str().unwrap().to_owned();
    assert!(s.targets().await.contains(&web));

    let summary = invoke(&ctx, &warning("spot/interruption-terminate.json", &web))
        .await
        .unwrap();
    assert_eq!(summary.outcome, "drained");
    assert!(
        summary
            .actions
            .iter()
            .any(|a| a.starts_with("deregistered from") && a.contains("demo-web-tg")),
        "{:?}",
        summary.actions
    );
    let targets = s.targets().await;
    assert!(!targets.contains(&web), "{targets:?}");
    assert_eq!(targets.len(), 1, "the other instance stays");
    let body = s.aws.slack_requests().await[0]["body"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        body.contains("Deregistered from") && body.contains("demo-web-tg port 80"),
        "{body}"
    );
}

#[tokio::test]
async fn configured_target_groups_are_searched_besides_the_groups() {
    let s = Setup::new().await;
    let tg = s.fleet["target_group_arn"].as_str().unwrap().to_owned();
    let ctx = context(&s, &[("TARGET_GROUP_ARNS", &tg)]).await;
    let web = s.fleet["web_instances"][1].as_str().unwrap().to_owned();
    invoke(&ctx, &warning("spot/interruption-stop.json", &web))
        .await
        .unwrap();
    assert!(!s.targets().await.contains(&web));
}

#[tokio::test]
async fn unknown_instance_changes_nothing_and_sends_nothing() {
    let s = Setup::new().await;
    let ctx = context(&s, &[]).await;
    let summary = invoke(
        &ctx,
        &warning("spot/interruption-terminate.json", "i-0fedcba9876543210"),
    )
    .await
    .unwrap();
    assert!(
        summary.outcome.starts_with("ignored:"),
        "{}",
        summary.outcome
    );
    assert!(summary.actions.is_empty());
    assert!(s.aws.slack_requests().await.is_empty());
    assert!(s.sns_messages().await.is_empty());
    let (_, ci) = s.ecs_instance(0);
    assert_eq!(s.status(&ci).await, "ACTIVE");
}

#[tokio::test]
async fn unmanaged_groups_are_left_alone_managed_ones_drained() {
    let s = Setup::new().await;
    let (instance, ci) = s.ecs_instance(0);
    let other_tag = context(&s, &[("MANAGED_ASG_TAG", "team=payments")]).await;
    let summary = invoke(
        &other_tag,
        &warning("spot/interruption-terminate.json", &instance),
    )
    .await
    .unwrap();
    assert!(
        summary
            .outcome
            .contains("not in an Auto Scaling group tagged team"),
        "{}",
        summary.outcome
    );
    assert_eq!(s.status(&ci).await, "ACTIVE");
    assert!(s.aws.slack_requests().await.is_empty());

    let ours = context(&s, &[("MANAGED_ASG_TAG", "fleetguard:managed=true")]).await;
    let summary = invoke(
        &ours,
        &warning("spot/interruption-terminate.json", &instance),
    )
    .await
    .unwrap();
    assert_eq!(summary.outcome, "drained");
    assert_eq!(s.status(&ci).await, "DRAINING");
}

#[tokio::test]
async fn duplicate_warning_drains_once_and_announces_once() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe").await;
    let ctx = context(&s, &[("DEDUPE_TABLE", &table)]).await;
    let (instance, ci) = s.ecs_instance(2);
    let event = warning("spot/interruption-terminate.json", &instance);
    invoke(&ctx, &event).await.unwrap();
    let again = invoke(&ctx, &event).await.unwrap();
    assert!(
        again
            .actions
            .iter()
            .any(|a| a.ends_with("already DRAINING")),
        "{:?}",
        again.actions
    );
    assert!(
        again
            .actions
            .iter()
            .filter(|a| a.contains("delivered"))
            .all(|a| a.starts_with("already delivered"))
    );
    assert_eq!(s.status(&ci).await, "DRAINING");
    assert_eq!(s.aws.slack_requests().await.len(), 1);
    assert_eq!(s.sns_messages().await.len(), 1);
}

#[tokio::test]
async fn dry_run_mutates_nothing_but_says_what_it_would_do() {
    let s = Setup::new().await;
    let ctx = context(&s, &[("DRY_RUN", "true")]).await;
    let (instance, ci) = s.ecs_instance(0);
    let web = s.fleet["web_instances"][0].as_str().unwrap().to_owned();
    let summary = invoke(
        &ctx,
        &warning("spot/interruption-terminate.json", &instance),
    )
    .await
    .unwrap();
    assert_eq!(summary.outcome, "dry run");
    invoke(&ctx, &warning("spot/interruption-terminate.json", &web))
        .await
        .unwrap();
    assert_eq!(s.status(&ci).await, "ACTIVE");
    assert!(s.targets().await.contains(&web));
    let slack = s.aws.slack_requests().await;
    assert_eq!(slack.len(), 2);
    assert!(
        slack[0]["body"]
            .as_str()
            .unwrap()
            .contains("would drain (dry run)")
    );
    assert!(
        slack[1]["body"]
            .as_str()
            .unwrap()
            .contains("Would deregister from")
    );
}

#[tokio::test]
async fn found_in_the_right_one_of_two_clusters() {
    let s = Setup::new().await;
    // A second cluster with its own container instance.
    let web = s.fleet["web_instances"][1].as_str().unwrap().to_owned();
    let (ec2, batch_ci) = container_instance_in_new_cluster(&s, "batch", &web).await;
    let ctx = context(&s, &[("ECS_CLUSTERS", "demo-ecs,batch")]).await;
    let summary = invoke(&ctx, &warning("spot/interruption-terminate.json", &web))
        .await
        .unwrap();
    assert!(
        summary
            .actions
            .iter()
            .any(|a| a.contains(&batch_ci) && a.ends_with("DRAINING")),
        "{:?}",
        summary.actions
    );
    let d = ec2
        .describe_container_instances()
        .cluster("batch")
        .container_instances(&batch_ci)
        .send()
        .await
        .unwrap();
    assert_eq!(d.container_instances()[0].status(), Some("DRAINING"));
    // And with every cluster searched (ECS_CLUSTERS unset), the same.
    let (instance, ci) = s.ecs_instance(1);
    let all = context(&s, &[]).await;
    invoke(
        &all,
        &warning("spot/interruption-hibernate.json", &instance),
    )
    .await
    .unwrap();
    assert_eq!(s.status(&ci).await, "DRAINING");
}

#[tokio::test]
async fn rebalance_recommendation_follows_rebalance_action() {
    let s = Setup::new().await;
    let (instance, ci) = s.ecs_instance(0);
    let mut event = warning("spot/rebalance-recommendation.json", &instance);
    event["detail"]
        .as_object_mut()
        .unwrap()
        .remove("instance-action");

    let ignore = context(&s, &[("REBALANCE_ACTION", "ignore")]).await;
    assert!(
        invoke(&ignore, &event)
            .await
            .unwrap()
            .outcome
            .starts_with("ignored")
    );
    assert!(s.aws.slack_requests().await.is_empty());

    let notify = context(&s, &[]).await;
    assert_eq!(invoke(&notify, &event).await.unwrap().outcome, "notified");
    assert_eq!(s.status(&ci).await, "ACTIVE");
    let slack = s.aws.slack_requests().await;
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0]["body"]
            .as_str()
            .unwrap()
            .contains("Rebalance recommendation")
    );

    let drain = context(&s, &[("REBALANCE_ACTION", "drain")]).await;
    assert_eq!(invoke(&drain, &event).await.unwrap().outcome, "drained");
    assert_eq!(s.status(&ci).await, "DRAINING");
}

#[tokio::test]
async fn a_missing_slack_secret_never_stops_the_drain() {
    let s = Setup::new().await;
    let ctx = context(
        &s,
        &[(
            "SLACK_WEBHOOK_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:not-filled-in",
        )],
    )
    .await;
    let (instance, ci) = s.ecs_instance(0);
    let err = invoke(
        &ctx,
        &warning("spot/interruption-terminate.json", &instance),
    )
    .await
    .unwrap_err();
    // Drained first; the invocation then fails naming only Slack, and SNS has the message.
    assert_eq!(s.status(&ci).await, "DRAINING");
    assert!(
        err.starts_with("DeliveryFailed") && err.contains("cannot read secret"),
        "{err}"
    );
    assert_eq!(s.sns_messages().await.len(), 1);
}

#[tokio::test]
async fn throttled_auto_scaling_never_holds_back_the_ecs_drain() {
    // A mass reclaim: every Auto Scaling call throttled past the SDK's retries.
    let s = Setup::new().await;
    let mut ctx = context(&s, &[]).await;
    ctx.fleet.autoscaling =
        fleetguard::adapters::autoscaling::AutoScaling::new(s.aws.autoscaling_client(&s.sdk));
    // The test SDK configuration makes 3 attempts: all of this invocation's are throttled.
    s.aws
        .autoscaling_fail_next("DescribeAutoScalingInstances", 3, "Throttling")
        .await;
    let (instance, ci) = s.ecs_instance(0);
    let err = invoke(
        &ctx,
        &warning("spot/interruption-terminate.json", &instance),
    )
    .await
    .unwrap_err();
    assert!(err.contains("DescribeAutoScalingInstances"), "{err}");
    assert_eq!(s.status(&ci).await, "DRAINING");
    // Lambda's retry, once Auto Scaling answers, finishes: notified once.
    let out = invoke(
        &ctx,
        &warning("spot/interruption-terminate.json", &instance),
    )
    .await
    .unwrap();
    assert_eq!(out.outcome, "drained");
    assert_eq!(s.aws.slack_requests().await.len(), 1);
}

#[tokio::test]
async fn a_cluster_created_after_the_cluster_list_was_read_is_searched() {
    // The defect: with ECS_CLUSTERS unset, ListClusters was read once per execution environment
    // (kept warm for hours): an instance of a cluster created later was "not found" and left
    // ACTIVE.
    let s = Setup::new().await;
    let ctx = context(&s, &[]).await;
    // Warm-up: a warning for an instance found nowhere reads (and caches) the cluster list.
    let out = invoke(
        &ctx,
        &warning("spot/interruption-terminate.json", "i-0fffffffffffffff0"),
    )
    .await
    .unwrap();
    assert!(out.outcome.starts_with("ignored"), "{out:?}");
    let web = s.fleet["web_instances"][0].as_str().unwrap().to_owned();
    let (ecs, ci) = container_instance_in_new_cluster(&s, "late", &web).await;
    invoke(&ctx, &warning("spot/interruption-terminate.json", &web))
        .await
        .unwrap();
    let d = ecs
        .describe_container_instances()
        .cluster("late")
        .container_instances(&ci)
        .send()
        .await
        .unwrap();
    assert_eq!(d.container_instances()[0].status(), Some("DRAINING"));
}

#[tokio::test]
async fn a_spot_stop_drain_is_marked_then_undone_by_asg_lifecycle_when_the_instance_is_back() {
    let s = Setup::new().await;
    let (instance, ci) = s.ecs_instance(1);
    let ctx = context(&s, &[]).await;
    invoke(&ctx, &warning("spot/interruption-stop.json", &instance))
        .await
        .unwrap();
    assert_eq!(s.status(&ci).await, "DRAINING");
    let mark = s.drain_mark(&ci).await.expect("marked in ECS");
    assert!(mark.starts_with("spot-stop@"), "{mark}");
    let lifecycle = asg_lifecycle::build(lookup(&s.env(&[])), &s.sdk)
        .await
        .unwrap();
    // Minutes later the instance is still stopping (its agent connected): nothing undone.
    let out = invoke(&lifecycle, &s.container_instance_event(&ci).await)
        .await
        .unwrap();
    assert_eq!(s.status(&ci).await, "DRAINING", "{out:?}");
    // Stopped (its tasks with it), then started again: the agent's reconnection, ten minutes
    // after the warning, undoes the drain.
    let tasks = s.tasks_on(&ci).await;
    s.stop_tasks(&tasks).await;
    let at: i64 = mark.rsplit('@').next().unwrap().parse().unwrap();
    s.set_drain_mark(&ci, &format!("spot-stop@{}", at - 600))
        .await;
    let out = invoke(&lifecycle, &s.container_instance_event(&ci).await)
        .await
        .unwrap();
    assert!(out.outcome.starts_with("undone"), "{out:?}");
    assert_eq!(s.status(&ci).await, "ACTIVE");
    assert_eq!(s.drain_mark(&ci).await, None);
}
