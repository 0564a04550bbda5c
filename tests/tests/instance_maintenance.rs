//! `instance-maintenance` end to end against moto (EventBridge Scheduler, Auto Scaling, ECS,
//! ELBv2, SNS, Secrets Manager, DynamoDB) and the Slack sink; and the group events of
//! `asg-lifecycle` (launch failures, instance refreshes).

use fleetguard_integration::{Setup, dedupe_table, invoke, lookup, sample};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::123456789012:role/fleetguard-scheduler-us-east-1";
const FUNCTION: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:fleetguard-instance-maintenance";

async fn context(s: &Setup, extra: &[(&str, &str)]) -> instance_maintenance::Lambda {
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe").await;
    let mut env = s.env(&[
        ("SCHEDULER_ROLE_ARN", ROLE),
        ("SCHEDULE_TARGET_ARN", FUNCTION),
        ("DEDUPE_TABLE", table.as_str()),
        ("MANAGED_ASG_TAG", "fleetguard:managed=true"),
    ]);
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    instance_maintenance::build(lookup(&env), &s.sdk)
        .await
        .unwrap()
}

/// The sample Health event about `instance`, its window `start_in` seconds from now.
fn retirement(instance: &str, start_in: i64) -> Value {
    let start = chrono::Utc::now() + chrono::Duration::seconds(start_in);
    let mut e = sample("maintenance/health-retirement.json");
    e["region"] = json!("us-east-1");
    e["detail"]["eventRegion"] = json!("us-east-1");
    e["detail"]["startTime"] = json!(start.to_rfc2822().replace("+0000", "GMT"));
    e["detail"]["affectedEntities"][0]["entityValue"] = json!(instance);
    e["resources"] = json!([instance]);
    e
}

async fn schedules(s: &Setup) -> Vec<aws_sdk_scheduler::types::ScheduleSummary> {
    aws_sdk_scheduler::Client::new(&s.sdk)
        .list_schedules()
        .send()
        .await
        .unwrap()
        .schedules
}

async fn group_state(s: &Setup, group: &str) -> (i32, Vec<String>) {
    let g = aws_sdk_autoscaling::Client::new(&s.sdk)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap();
    let g = &g.auto_scaling_groups()[0];
    (
        g.desired_capacity().unwrap_or_default(),
        g.instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect(),
    )
}

#[tokio::test]
async fn a_retirement_days_ahead_makes_one_schedule_whose_payload_replaces_the_instance() {
    let s = Setup::new().await;
    let ctx = context(&s, &[]).await;
    let web = s.fleet["web_instances"][0].as_str().unwrap().to_owned();
    let group = s.seeded("web_auto_scaling_group");
    let event = retirement(&web, 3 * 86_400);

    let out = invoke(&ctx, &event).await.unwrap();
    assert_eq!(out.outcome, format!("{web}: scheduled"), "{out:?}");
    let listed = schedules(&s).await;
    assert_eq!(listed.len(), 1);
    let name = listed[0].name().unwrap().to_owned();
    let got = aws_sdk_scheduler::Client::new(&s.sdk)
        .get_schedule()
        .name(&name)
        .send()
        .await
        .unwrap();
    let expected_at = (chrono::Utc::now() + chrono::Duration::seconds(3 * 86_400 - 1800))
        .format("at(%Y-%m-%dT%H:%M")
        .to_string();
    let expression = got.schedule_expression().unwrap();
    assert!(
        expression.starts_with(&expected_at[..expected_at.len() - 1]),
        "{expression} vs {expected_at}"
    );
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    let target = got.target().unwrap();
    assert_eq!(target.arn(), FUNCTION);
    assert_eq!(target.role_arn(), ROLE);
    assert_eq!(
        got.action_after_completion().map(|a| a.as_str()),
        Some("DELETE")
    );
    let slack = s.slack_titles().await;
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(slack[0].contains(&web), "{slack:?}");
    assert!(s.targets().await.contains(&web), "nothing changed yet");

    // The same event again: no second schedule, no second message.
    invoke(&ctx, &event).await.unwrap();
    assert_eq!(schedules(&s).await.len(), 1);
    assert_eq!(s.slack_titles().await.len(), 1);

    // The schedule comes due: EventBridge Scheduler invokes the function with its input.
    let (desired, before) = group_state(&s, &group).await;
    let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    let due = invoke(&ctx, &input).await.unwrap();
    assert_eq!(due.outcome, format!("{web}: out of service"), "{due:?}");
    assert!(!s.targets().await.contains(&web), "deregistered");
    let (desired_after, after) = group_state(&s, &group).await;
    assert_eq!(desired_after, desired, "desired capacity kept");
    assert!(!after.contains(&web), "{after:?}");
    assert_eq!(
        after.len(),
        before.len(),
        "a replacement launched: {after:?}"
    );
    assert_eq!(s.slack_titles().await.len(), 2);
}

#[tokio::test]
async fn a_retirement_ten_minutes_ahead_is_drained_at_once() {
    let s = Setup::new().await;
    let ctx = context(&s, &[("MAINTENANCE_ACTION", "drain")]).await;
    let (instance, ci) = s.ecs_instance(0);
    let out = invoke(&ctx, &retirement(&instance, 600)).await.unwrap();
    assert_eq!(
        out.outcome,
        format!("{instance}: out of service"),
        "{out:?}"
    );
    assert_eq!(s.status(&ci).await, "DRAINING");
    // Held to the window's end, so asg-lifecycle does not undo it before the retirement
    // (issue 23, 1: marked "stopped", it was undone five minutes later).
    assert_eq!(
        s.drain_mark(&ci).await.unwrap().split('@').next(),
        Some("maintenance")
    );
    assert!(schedules(&s).await.is_empty());
    let (_, others) = s.ecs_instance(1);
    assert_eq!(s.status(&others).await, "ACTIVE");
}

#[tokio::test]
async fn an_instance_stopping_behind_a_target_group_is_deregistered() {
    let s = Setup::new().await;
    let ctx = context(&s, &[]).await;
    let web = s.fleet["web_instances"][1].as_str().unwrap().to_owned();
    let mut e = sample("maintenance/instance-stopping.json");
    e["detail"]["instance-id"] = json!(web);
    e["region"] = json!("us-east-1");
    let out = invoke(&ctx, &e).await.unwrap();
    assert_eq!(out.outcome, "out of service", "{out:?}");
    assert!(!s.targets().await.contains(&web));
    let titles = s.slack_titles().await;
    assert_eq!(titles.len(), 1);
    assert!(titles[0].contains("stopping"), "{titles:?}");
}

#[tokio::test]
async fn dry_run_changes_nothing_and_makes_no_schedule() {
    let s = Setup::new().await;
    let ctx = context(&s, &[("DRY_RUN", "true")]).await;
    let web = s.fleet["web_instances"][0].as_str().unwrap().to_owned();
    let (instance, ci) = s.ecs_instance(0);
    invoke(&ctx, &retirement(&web, 3 * 86_400)).await.unwrap();
    invoke(&ctx, &retirement(&instance, 600)).await.unwrap();
    assert!(schedules(&s).await.is_empty());
    assert_eq!(s.status(&ci).await, "ACTIVE");
    assert!(s.targets().await.contains(&web));
    assert_eq!(s.slack_titles().await.len(), 2);
}

#[tokio::test]
async fn a_launch_failure_is_told_once_per_window_with_its_cause() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe").await;
    let env = s.env(&[
        ("MANAGED_ASG_TAG", "fleetguard:managed=true"),
        ("DEDUPE_TABLE", table.as_str()),
    ]);
    let ctx = asg_lifecycle::build(lookup(&env), &s.sdk).await.unwrap();
    let group = s.seeded("web_auto_scaling_group");
    let mut e = sample("asg/launch-unsuccessful.json");
    e["detail"]["AutoScalingGroupName"] = json!(group);
    e["region"] = json!("us-east-1");
    let out = invoke(&ctx, &e).await.unwrap();
    assert!(out.outcome.starts_with("launch failure"), "{out:?}");
    let bodies = s.slack_bodies().await;
    assert_eq!(bodies.len(), 1);
    let text = bodies[0].to_string();
    for needle in [
        "m5.xlarge capacity",
        "more instance types",
        "eu-west-1b",
        &group,
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    // A second failure of the same group within the window: nothing new.
    e["id"] = json!("another-delivery");
    invoke(&ctx, &e).await.unwrap();
    assert_eq!(s.slack_bodies().await.len(), 1);
    // A failed instance refresh is its own message.
    let mut r = sample("asg/instance-refresh-failed.json");
    r["detail"]["AutoScalingGroupName"] = json!(group);
    invoke(&ctx, &r).await.unwrap();
    let titles = s.slack_titles().await;
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles[1].contains("Instance refresh"), "{titles:?}");
    // Succeeded: acknowledged, not told.
    let mut ok = sample("asg/instance-refresh-succeeded.json");
    ok["detail"]["AutoScalingGroupName"] = json!(group);
    let out = invoke(&ctx, &ok).await.unwrap();
    assert!(out.outcome.starts_with("ignored"), "{out:?}");
    assert_eq!(s.slack_titles().await.len(), 2);
}

#[tokio::test]
async fn a_moved_window_moves_the_schedule_and_a_closed_event_deletes_it() {
    // The adapter's update path (CreateSchedule conflicts, GetSchedule differs, UpdateSchedule)
    // and its delete, against moto's Scheduler.
    let s = Setup::new().await;
    let ctx = context(&s, &[]).await;
    let web = s.fleet["web_instances"][0].as_str().unwrap().to_owned();
    let scheduler = aws_sdk_scheduler::Client::new(&s.sdk);
    let expression = |name: String| {
        let scheduler = scheduler.clone();
        async move {
            scheduler
                .get_schedule()
                .name(name)
                .send()
                .await
                .unwrap()
                .schedule_expression()
                .unwrap()
                .to_owned()
        }
    };
    invoke(&ctx, &retirement(&web, 3 * 86_400)).await.unwrap();
    let name = schedules(&s).await[0].name().unwrap().to_owned();
    let first = expression(name.clone()).await;

    let moved = invoke(&ctx, &retirement(&web, 5 * 86_400)).await.unwrap();
    assert!(
        moved.actions.iter().any(|a| a.ends_with("moved")),
        "{moved:?}"
    );
    let listed = schedules(&s).await;
    assert_eq!(listed.len(), 1, "the same schedule, moved");
    assert_eq!(listed[0].name(), Some(name.as_str()));
    let second = expression(name.clone()).await;
    assert_ne!(first, second);
    let day = |e: &str| chrono::NaiveDate::parse_from_str(&e[3..13], "%Y-%m-%d").unwrap();
    assert_eq!(
        (day(&second) - day(&first)).num_days(),
        2,
        "{first} → {second}"
    );
    assert_eq!(s.slack_titles().await.len(), 2, "the new window is news");

    let mut closed = retirement(&web, 5 * 86_400);
    closed["detail"]["statusCode"] = json!("closed");
    let out = invoke(&ctx, &closed).await.unwrap();
    assert_eq!(out.outcome, format!("{web}: closed"), "{out:?}");
    assert!(schedules(&s).await.is_empty());
    assert!(s.targets().await.contains(&web), "nothing was taken out");
}
