//! The handler's main paths over the in-memory fakes: milliseconds, and AWS's failures on demand.

use fleetguard::config::CommonConfig;
use fleetguard::notify::NotificationKind;
use fleetguard::out_of_service::Fleet;
use fleetguard::ports::DrainReason;
use fleetguard::testing::{FakeAws, FakeNotifier, invoke, sample};
use serde_json::{Value, json};
use spot_interruption::Handler;
use spot_interruption::config::SpotConfig;

const INSTANCE: &str = "i-0a1b2c3d4e5f60718";

type Spot = Handler<FakeAws, FakeAws, FakeAws, FakeNotifier>;

fn handler(aws: &FakeAws, env: &[(&str, &str)]) -> Spot {
    let lookup = fleetguard::config::lookup_in(env);
    Handler {
        common: CommonConfig::from_lookup(&lookup).unwrap(),
        config: SpotConfig::from_lookup(lookup).unwrap(),
        fleet: Fleet {
            ecs: aws.clone(),
            elbv2: aws.clone(),
            autoscaling: aws.clone(),
        },
        notifier: FakeNotifier::new(),
        clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
    }
}

fn warning() -> Value {
    let mut e = sample("spot/interruption-terminate.json");
    e["time"] = json!(chrono::Utc::now().to_rfc3339());
    e
}

#[tokio::test]
async fn ecs_container_instance_is_drained_then_announced() {
    let aws = FakeAws::new();
    aws.group("workers", &[], &[]);
    aws.group_instance("workers", INSTANCE, "InService");
    let ci = aws.container_instance("prod", INSTANCE, "checkout-api", 2);
    let h = handler(&aws, &[]);

    let out = invoke(&h, &warning()).await.unwrap();
    assert_eq!(out.outcome, "drained");
    assert!(
        out.actions
            .iter()
            .any(|a| a == &format!("container instance {ci} DRAINING"))
    );
    let w = aws.world();
    assert_eq!(w.container_instances[0].status, "DRAINING");
    // The drain call went out before the enrichment (ListTasks) and before the message.
    let drain = w
        .calls
        .iter()
        .position(|c| *c == "UpdateContainerInstancesState")
        .unwrap();
    let list = w.calls.iter().position(|c| *c == "ListTasks").unwrap();
    assert!(drain < list, "{:?}", w.calls);
    drop(w);
    let sent = h.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, NotificationKind::SpotInterruption);
    // The warning opens the instance's drain incident; asg-lifecycle's "drained" resolves it.
    let incident = sent[0].incident.clone().unwrap();
    assert!(incident.key.starts_with("drain|i-"), "{incident:?}");
    assert_eq!(incident.phase, fleetguard::notify::Phase::Opened);
    assert!(
        sent[0]
            .fields
            .iter()
            .any(|f| f.name == "Tasks being moved" && f.value.starts_with("2 "))
    );
}

#[tokio::test]
async fn plain_ec2_instance_is_deregistered_from_its_groups_target_groups() {
    let aws = FakeAws::new();
    let tg = aws.target("web", INSTANCE, 8080);
    aws.group("web", &[], std::slice::from_ref(&tg));
    aws.group_instance("web", INSTANCE, "InService");
    let h = handler(&aws, &[]);

    let out = invoke(&h, &warning()).await.unwrap();
    assert_eq!(out.outcome, "drained");
    assert_eq!(
        aws.world().deregistered,
        vec![(tg, INSTANCE.to_owned(), Some(8080))]
    );
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
    assert_eq!(h.notifier.sent().len(), 1);
}

#[tokio::test]
async fn without_ecs_no_ecs_call_is_made() {
    // `ECS_CLUSTERS=none` (the module's setting for a plain EC2 fleet, whose role has no ECS
    // permission): targets are deregistered and no cluster is listed or searched.
    let aws = FakeAws::new();
    aws.cluster("someone-elses");
    let tg = aws.target("web", INSTANCE, 8080);
    aws.group("web", &[], std::slice::from_ref(&tg));
    aws.group_instance("web", INSTANCE, "InService");
    let h = handler(&aws, &[("ECS_CLUSTERS", "none")]);

    let out = invoke(&h, &warning()).await.unwrap();
    assert_eq!(out.outcome, "drained");
    assert_eq!(aws.world().deregistered.len(), 1);
    for call in [
        "ListClusters",
        "ListContainerInstances",
        "DescribeContainerInstances",
    ] {
        assert_eq!(aws.calls_of(call), 0, "{call}: {:?}", aws.world().calls);
    }
}

#[tokio::test]
async fn unknown_instance_is_acknowledged_without_a_message() {
    let aws = FakeAws::new();
    aws.cluster("prod");
    let h = handler(&aws, &[]);
    let out = invoke(&h, &warning()).await.unwrap();
    assert!(out.outcome.starts_with("ignored"), "{}", out.outcome);
    assert!(h.notifier.sent().is_empty());
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
}

#[tokio::test]
async fn dry_run_mutates_nothing_and_says_what_it_would_do() {
    let aws = FakeAws::new();
    let tg = aws.target("web", INSTANCE, 80);
    aws.group("workers", &[], &[tg]);
    aws.group_instance("workers", INSTANCE, "InService");
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    let h = handler(&aws, &[("DRY_RUN", "true")]);

    let out = invoke(&h, &warning()).await.unwrap();
    assert_eq!(out.outcome, "dry run");
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
    assert_eq!(aws.calls_of("DeregisterTargets"), 0);
    assert_eq!(aws.world().container_instances[0].status, "ACTIVE");
    assert!(h.notifier.sent()[0].title.contains("would drain (dry run)"));
    let incident = h.notifier.sent()[0].incident.clone().unwrap();
    assert!(
        incident.key.ends_with("|dry-run"),
        "a dry run is an incident of its own: {incident:?}"
    );
}

#[tokio::test]
async fn unmanaged_group_is_left_alone() {
    let aws = FakeAws::new();
    aws.group("workers", &[("team", "api")], &[]);
    aws.group_instance("workers", INSTANCE, "InService");
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    let h = handler(&aws, &[("MANAGED_ASG_TAG", "fleetguard")]);
    let out = invoke(&h, &warning()).await.unwrap();
    assert!(
        out.outcome
            .contains("not in an Auto Scaling group tagged fleetguard"),
        "{}",
        out.outcome
    );
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
}

#[tokio::test]
async fn a_throttled_auto_scaling_lookup_never_holds_back_the_ecs_drain() {
    // The defect: the group lookup had to succeed before DRAINING was issued; in a mass reclaim
    // Auto Scaling throttles and the container instance stayed ACTIVE until Lambda's retry.
    let aws = FakeAws::new();
    let tg = aws.target("web", INSTANCE, 80);
    aws.group("workers", &[], std::slice::from_ref(&tg));
    aws.group_instance("workers", INSTANCE, "InService");
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    aws.throttle("DescribeAutoScalingInstances", 1);
    let h = handler(&aws, &[]);

    let err = invoke(&h, &warning()).await.unwrap_err();
    assert_eq!(aws.world().container_instances[0].status, "DRAINING");
    assert_eq!(err.error_type, "AwsCallFailed");
    assert!(
        err.message.contains("DescribeAutoScalingInstances"),
        "{}",
        err.message
    );
    // Lambda's retry finds the group, deregisters from its target group and tells people.
    let out = invoke(&h, &warning()).await.unwrap();
    assert_eq!(out.outcome, "drained");
    assert_eq!(aws.world().deregistered.len(), 1);
    assert_eq!(h.notifier.sent().len(), 1);
}

#[tokio::test]
async fn with_a_scope_a_throttled_lookup_still_drains_a_terminating_instance_then_fails() {
    // Whose the instance is depends on its group, which Auto Scaling (throttled in a mass
    // reclaim) does not say: a container instance in a searched cluster that is going away for
    // good is drained anyway, and the invocation fails so the retry finishes. Found by the fleet
    // simulator once it ran as the module deploys (AUTO_SCALING_GROUPS set).
    for scope in [
        ("MANAGED_ASG_TAG", "fleetguard"),
        ("AUTO_SCALING_GROUPS", "workers"),
    ] {
        let aws = FakeAws::new();
        aws.group("workers", &[("fleetguard", "")], &[]);
        aws.group_instance("workers", INSTANCE, "InService");
        aws.container_instance("prod", INSTANCE, "checkout-api", 1);
        aws.throttle("DescribeAutoScalingInstances", 1);
        let h = handler(&aws, &[scope]);
        let err = invoke(&h, &warning()).await.unwrap_err();
        assert!(
            err.message.contains("DescribeAutoScalingInstances"),
            "{scope:?}: {}",
            err.message
        );
        assert_eq!(
            aws.world().container_instances[0].status,
            "DRAINING",
            "{scope:?}"
        );
        assert_eq!(invoke(&h, &warning()).await.unwrap().outcome, "drained");
        assert_eq!(h.notifier.sent().len(), 1, "{scope:?}");
    }
}

#[tokio::test]
async fn with_a_scope_a_throttled_lookup_leaves_an_instance_that_comes_back_alone() {
    // A stop or hibernate: the instance comes back, and a drain of one not ours would be
    // undone by nobody. No guessing: the invocation fails before touching anything.
    let aws = FakeAws::new();
    aws.group("workers", &[("fleetguard", "")], &[]);
    aws.group_instance("workers", INSTANCE, "InService");
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    aws.throttle("DescribeAutoScalingInstances", 1);
    let h = handler(&aws, &[("MANAGED_ASG_TAG", "fleetguard")]);
    let mut stop = sample("spot/interruption-stop.json");
    stop["time"] = json!(chrono::Utc::now().to_rfc3339());
    stop["detail"]["instance-id"] = json!(INSTANCE);
    let err = invoke(&h, &stop).await.unwrap_err();
    assert!(
        err.message.contains("DescribeAutoScalingInstances"),
        "{}",
        err.message
    );
    assert_eq!(aws.world().container_instances[0].status, "ACTIVE");
    assert_eq!(invoke(&h, &stop).await.unwrap().outcome, "drained");
}

#[tokio::test]
async fn a_throttled_lookup_of_a_plain_ec2_instance_is_retried_not_ignored() {
    let aws = FakeAws::new();
    let tg = aws.target("web", INSTANCE, 80);
    aws.group("web", &[], std::slice::from_ref(&tg));
    aws.group_instance("web", INSTANCE, "InService");
    aws.cluster("prod");
    aws.throttle("DescribeAutoScalingGroups", 1);
    let h = handler(&aws, &[]);
    assert!(invoke(&h, &warning()).await.is_err());
    assert_eq!(invoke(&h, &warning()).await.unwrap().outcome, "drained");
    assert_eq!(aws.world().deregistered.len(), 1);
}

#[tokio::test]
async fn a_cluster_created_after_the_list_was_cached_is_searched() {
    // The defect: the cluster list was read once per execution environment; an instance of a
    // cluster created later was "not found" and left ACTIVE.
    let aws = FakeAws::new();
    aws.cluster("old");
    let listed = aws.world().clusters.clone();
    aws.world().stale_clusters = Some(listed);
    aws.container_instance("created-later", INSTANCE, "checkout-api", 1);
    let h = handler(&aws, &[]);
    assert_eq!(invoke(&h, &warning()).await.unwrap().outcome, "drained");
    assert_eq!(aws.world().container_instances[0].status, "DRAINING");
}

#[tokio::test]
async fn a_deleted_cluster_does_not_fail_the_search() {
    let aws = FakeAws::new();
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    // The cached list still names a cluster deleted since.
    let mut listed = aws.world().clusters.clone();
    listed.push("arn:aws:ecs:us-east-1:123456789012:cluster/deleted".into());
    aws.world().stale_clusters = Some(listed);
    let h = handler(&aws, &[]);
    assert_eq!(invoke(&h, &warning()).await.unwrap().outcome, "drained");
}

#[tokio::test]
async fn a_failed_drain_call_fails_the_invocation_naming_it() {
    let aws = FakeAws::new();
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    aws.fail(
        "UpdateContainerInstancesState",
        1,
        fleetguard::ports::AwsError::service(
            "UpdateContainerInstancesState",
            "ServerException",
            "internal error",
        ),
    );
    let h = handler(&aws, &[]);
    let err = invoke(&h, &warning()).await.unwrap_err();
    assert_eq!(err.error_type, "DrainFailed");
    assert!(
        err.message.contains("UpdateContainerInstancesState"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn rebalance_recommendations_follow_rebalance_action() {
    let aws = FakeAws::new();
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    let mut e = sample("spot/rebalance-recommendation.json");
    e["detail"]["instance-id"] = json!(INSTANCE);

    let h = handler(&aws, &[]);
    assert_eq!(invoke(&h, &e).await.unwrap().outcome, "notified");
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
    assert_eq!(
        h.notifier.sent()[0].kind,
        NotificationKind::RebalanceRecommendation
    );

    let h = handler(&aws, &[("REBALANCE_ACTION", "ignore")]);
    assert!(invoke(&h, &e).await.unwrap().outcome.starts_with("ignored"));

    let h = handler(&aws, &[("REBALANCE_ACTION", "drain")]);
    assert_eq!(invoke(&h, &e).await.unwrap().outcome, "drained");
    assert_eq!(aws.world().container_instances[0].status, "DRAINING");
}

fn mark(aws: &FakeAws) -> Option<DrainReason> {
    aws.world().container_instances[0]
        .drain_mark
        .map(|m| m.reason)
}

#[tokio::test]
async fn drains_of_instances_that_come_back_are_marked_for_their_undo() {
    // The defect: drains for Spot stop and hibernate, and for rebalance recommendations, were
    // never undone. The mark on the container instance is what `asg-lifecycle` undoes.
    for (file, reason) in [
        ("spot/interruption-stop.json", DrainReason::SpotStop),
        (
            "spot/interruption-hibernate.json",
            DrainReason::SpotHibernate,
        ),
    ] {
        let aws = FakeAws::new();
        aws.container_instance("prod", INSTANCE, "checkout-api", 1);
        let mut e = sample(file);
        e["detail"]["instance-id"] = json!(INSTANCE);
        e["time"] = json!(chrono::Utc::now().to_rfc3339());
        let h = handler(&aws, &[]);
        assert_eq!(invoke(&h, &e).await.unwrap().outcome, "drained");
        assert_eq!(aws.world().container_instances[0].status, "DRAINING");
        assert_eq!(mark(&aws), Some(reason), "{file}");
    }
    // A termination is final: no mark.
    let aws = FakeAws::new();
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    invoke(&handler(&aws, &[]), &warning()).await.unwrap();
    assert_eq!(mark(&aws), None);
    assert_eq!(aws.calls_of("PutAttributes"), 0);
    // A rebalance drain, then the interruption that stops it: the mark follows the newer.
    let aws = FakeAws::new();
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    let mut e = sample("spot/rebalance-recommendation.json");
    e["detail"]["instance-id"] = json!(INSTANCE);
    invoke(&handler(&aws, &[("REBALANCE_ACTION", "drain")]), &e)
        .await
        .unwrap();
    assert_eq!(mark(&aws), Some(DrainReason::Rebalance));
    let mut e = sample("spot/interruption-stop.json");
    e["detail"]["instance-id"] = json!(INSTANCE);
    invoke(&handler(&aws, &[]), &e).await.unwrap();
    assert_eq!(mark(&aws), Some(DrainReason::SpotStop));
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 1);
}

#[tokio::test]
async fn someone_elses_drain_is_never_marked() {
    let aws = FakeAws::new();
    aws.container_instance("prod", INSTANCE, "checkout-api", 1);
    aws.world().container_instances[0].status = "DRAINING".into();
    let mut e = sample("spot/interruption-stop.json");
    e["detail"]["instance-id"] = json!(INSTANCE);
    invoke(&handler(&aws, &[]), &e).await.unwrap();
    assert_eq!(mark(&aws), None);
    assert_eq!(aws.calls_of("PutAttributes"), 0);
}
