//! The handler's paths over the in-memory fakes: Health scheduled changes to one-time schedules
//! and back, the lead time, reboots put back, stopping instances, dry run and bad input.
//!
//! On tokio's paused time: the notifier's backoff and paces cost no wall-clock time.

use fleetguard::config::CommonConfig;
use fleetguard::events::health::parse_health_time;
use fleetguard::notify::{NotificationKind, Phase};
use fleetguard::out_of_service::Fleet;
use fleetguard::ports::{DrainMark, DrainReason, OneTimeSchedule};
use fleetguard::testing::{FakeAws, FakeClock, FakeNotifier, invoke, sample};
use instance_maintenance::Handler;
use instance_maintenance::config::MaintenanceConfig;
use instance_maintenance::decide::{DEFAULT_WINDOW_SECS, DUE_RETRY_SECS};
use serde_json::{Value, json};

const INSTANCE: &str = "i-0a1b2c3d4e5f60718";
const ROLE: &str = "arn:aws:iam::123456789012:role/fleetguard-scheduler";
const FUNCTION: &str =
    "arn:aws:lambda:eu-west-1:123456789012:function:fleetguard-instance-maintenance";

type Maintenance = Handler<FakeAws, FakeAws, FakeAws, FakeAws, FakeNotifier>;

fn handler(aws: &FakeAws, clock: &FakeClock, env: &[(&str, &str)]) -> Maintenance {
    let mut all = vec![
        ("SCHEDULER_ROLE_ARN", ROLE),
        ("SCHEDULE_TARGET_ARN", FUNCTION),
    ];
    all.extend_from_slice(env);
    let lookup = fleetguard::config::lookup_in(&all);
    Handler {
        common: CommonConfig::from_lookup(&lookup).unwrap(),
        config: MaintenanceConfig::from_lookup(&lookup).unwrap(),
        fleet: Fleet {
            ecs: aws.clone(),
            elbv2: aws.clone(),
            autoscaling: aws.clone(),
        },
        schedules: aws.clone(),
        notifier: FakeNotifier::with_dedupe(),
        clock: std::sync::Arc::new(clock.clone()),
    }
}

/// The sample Health event with its window `start_in` seconds after `now`.
fn health(file: &str, now: i64, start_in: i64, end_in: Option<i64>) -> Value {
    let rfc2822 = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc2822()
            .replace("+0000", "GMT")
    };
    let mut e = sample(file);
    e["detail"]["startTime"] = json!(rfc2822(now + start_in));
    match end_in {
        Some(s) => e["detail"]["endTime"] = json!(rfc2822(now + s)),
        None => {
            e["detail"].as_object_mut().unwrap().remove("endTime");
        }
    }
    e
}

/// An instance in an Auto Scaling group, with a container instance, behind a target group.
fn fleet() -> (FakeAws, String, String) {
    let aws = FakeAws::new();
    let tg = aws.target("web", INSTANCE, 80);
    aws.group("workers", &[], std::slice::from_ref(&tg));
    aws.group_instance("workers", INSTANCE, "InService");
    // The terminate hook that drains a replaced instance properly.
    aws.hook("workers", "fleetguard-drain", true, 300, None);
    let ci = aws.container_instance("prod", INSTANCE, "checkout-api", 2);
    (aws, tg, ci)
}

const NOW: i64 = 1_800_000_000;

fn only_schedule(aws: &FakeAws) -> OneTimeSchedule {
    let w = aws.world();
    assert_eq!(w.schedules.len(), 1, "{:?}", w.schedules.keys());
    w.schedules.values().next().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn a_retirement_days_ahead_is_scheduled_once_and_the_schedule_replaces_the_instance() {
    let (aws, tg, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    let event = health("maintenance/health-retirement.json", NOW, 3 * 86_400, None);

    let out = invoke(&h, &event).await.unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: scheduled"));
    let s = only_schedule(&aws);
    assert_eq!(s.at, NOW + 3 * 86_400 - 1800);
    assert!(s.name.starts_with(&format!("fleetguard-{INSTANCE}-out-")));
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
    let sent = h.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, NotificationKind::ScheduledMaintenance);
    assert!(sent[0].title.contains(INSTANCE), "{}", sent[0].title);
    for field in [
        "Window",
        "Out of service at",
        "Auto Scaling group",
        "Target groups",
    ] {
        assert!(
            sent[0].fields.iter().any(|f| f.name == field),
            "{field}: {:?}",
            sent[0].fields
        );
    }
    assert!(sent[0].links.iter().any(|l| l.label == "AWS Health event"));
    let incident = sent[0].incident.clone().unwrap();
    assert!(
        incident.key.starts_with("maintenance|arn:aws:health:") && incident.key.ends_with(INSTANCE),
        "{incident:?}"
    );
    assert_eq!(incident.phase, fleetguard::notify::Phase::Opened);

    // The same event again (EventBridge delivers at least once): nothing new.
    let again = invoke(&h, &event).await.unwrap();
    assert!(
        again.actions.iter().any(|a| a.ends_with("already there")),
        "{:?}",
        again.actions
    );
    assert_eq!(aws.calls_of("UpdateSchedule"), 0);
    assert_eq!(only_schedule(&aws), s);
    assert_eq!(h.notifier.sent().len(), 1);

    // The schedule comes due: its own payload takes the instance out and replaces it.
    clock.set(s.at);
    let input: Value = serde_json::from_str(&s.input).unwrap();
    let due = invoke(&h, &input).await.unwrap();
    assert_eq!(due.outcome, format!("{INSTANCE}: out of service"));
    let w = aws.world();
    assert_eq!(w.container_instances[0].status, "DRAINING");
    assert_eq!(w.deregistered, vec![(tg, INSTANCE.to_owned(), Some(80))]);
    assert_eq!(w.replaced, vec![INSTANCE.to_owned()]);
    // Going for good: no mark to undo, no schedule to put it back.
    assert_eq!(w.container_instances[0].drain_mark, None);
    assert!(!w.schedules.keys().any(|k| k.contains("-back-")));
    drop(w);
    assert_eq!(h.notifier.sent().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_window_closer_than_the_lead_time_is_acted_on_at_once() {
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[("MAINTENANCE_ACTION", "drain")]);
    let out = invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 600, None),
    )
    .await
    .unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: out of service"));
    let w = aws.world();
    assert!(w.schedules.is_empty());
    assert_eq!(w.container_instances[0].status, "DRAINING");
    assert!(w.replaced.is_empty(), "drain, not replace");
    // Marked as maintenance until the window's end (no end given: two hours after its start),
    // so nothing undoes it before the retirement. Marked "stopped, now", asg-lifecycle undid it
    // five minutes later (issue 23, 1).
    assert_eq!(
        w.container_instances[0].drain_mark,
        Some(DrainMark {
            reason: DrainReason::Maintenance,
            at: NOW + 600 + DEFAULT_WINDOW_SECS
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_moved_window_moves_the_schedule_and_a_closed_event_deletes_it() {
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 86_400, None),
    )
    .await
    .unwrap();
    let first = only_schedule(&aws);
    let moved = invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 2 * 86_400, None),
    )
    .await
    .unwrap();
    assert!(
        moved.actions.iter().any(|a| a.ends_with("moved")),
        "{:?}",
        moved.actions
    );
    let second = only_schedule(&aws);
    assert_eq!(second.name, first.name);
    assert_eq!(second.at, first.at + 86_400);
    assert_eq!(h.notifier.sent().len(), 2, "the new window is news");

    let mut closed = health("maintenance/health-retirement.json", NOW, 2 * 86_400, None);
    closed["detail"]["statusCode"] = json!("closed");
    let out = invoke(&h, &closed).await.unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: closed"));
    assert!(aws.world().schedules.is_empty());
    assert_eq!(aws.world().container_instances[0].status, "ACTIVE");
}

#[tokio::test(start_paused = true)]
async fn a_reboot_is_drained_before_and_put_back_after() {
    let (aws, tg, ci) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    invoke(
        &h,
        &health(
            "maintenance/health-reboot.json",
            NOW,
            86_400,
            Some(86_400 + 7200),
        ),
    )
    .await
    .unwrap();
    let out = only_schedule(&aws);
    clock.set(out.at);
    let input: Value = serde_json::from_str(&out.input).unwrap();
    invoke(&h, &input).await.unwrap();
    {
        let w = aws.world();
        // A reboot is never replaced: the instance comes back.
        assert!(w.replaced.is_empty());
        assert_eq!(w.container_instances[0].status, "DRAINING");
        let mark = w.container_instances[0].drain_mark.unwrap();
        assert_eq!(mark.reason, DrainReason::Maintenance);
        assert_eq!(mark.at, NOW + 86_400 + 7200, "marked with the window's end");
        assert_eq!(w.deregistered.len(), 1);
    }
    aws.world().schedules.remove(&out.name); // deleted after it ran
    let back = only_schedule(&aws);
    assert!(back.name.contains("-back-"));
    assert_eq!(back.at, NOW + 86_400 + 7200 + 300);

    clock.set(back.at);
    let input: Value = serde_json::from_str(&back.input).unwrap();
    let done = invoke(&h, &input).await.unwrap();
    assert_eq!(done.outcome, format!("{INSTANCE}: back in service"));
    let w = aws.world();
    assert_eq!(w.registered, vec![(tg, INSTANCE.to_owned(), Some(80))]);
    assert_eq!(w.activated, vec![ci]);
    assert_eq!(w.container_instances[0].status, "ACTIVE");
    drop(w);
    // One incident from the announcement to the return: opened, updated, resolved.
    let incidents: Vec<_> = h
        .notifier
        .sent()
        .iter()
        .map(|n| n.incident.clone().unwrap())
        .collect();
    assert_eq!(
        incidents.iter().map(|i| i.phase).collect::<Vec<_>>(),
        [Phase::Opened, Phase::Updated, Phase::Resolved]
    );
    assert!(incidents.iter().all(|i| i.key == incidents[0].key));
}

#[tokio::test(start_paused = true)]
async fn system_maintenance_and_notify_only_tell_people_and_schedule_nothing() {
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    let out = invoke(
        &h,
        &health(
            "maintenance/health-network-maintenance.json",
            NOW,
            86_400,
            Some(90_000),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: notified"));
    let notify = handler(&aws, &clock, &[("MAINTENANCE_ACTION", "notify")]);
    invoke(
        &notify,
        &health("maintenance/health-retirement.json", NOW, 600, None),
    )
    .await
    .unwrap();
    assert!(aws.world().schedules.is_empty());
    assert_eq!(aws.calls_of("UpdateContainerInstancesState"), 0);
    assert_eq!(h.notifier.sent().len(), 1);
    assert_eq!(notify.notifier.sent().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_instance_fleetguard_does_not_manage_is_told_about_but_not_scheduled() {
    let aws = FakeAws::new();
    aws.cluster("prod");
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    let out = invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 86_400, None),
    )
    .await
    .unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: notified"));
    assert!(aws.world().schedules.is_empty());
    assert!(
        h.notifier.sent()[0]
            .summary
            .contains("nothing to take out of service")
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_mutates_nothing_and_creates_no_schedule() {
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[("DRY_RUN", "true")]);
    for (start, end) in [(86_400, None), (600, None)] {
        invoke(
            &h,
            &health("maintenance/health-retirement.json", NOW, start, end),
        )
        .await
        .unwrap();
    }
    // The sample's window starts 2027-01-14T09:00Z: due a day before NOW.
    clock.set(NOW - 86_400);
    invoke(&h, &sample("maintenance/scheduled-out-of-service.json"))
        .await
        .unwrap();
    clock.set(NOW);
    invoke(&h, &sample("maintenance/instance-stopping.json"))
        .await
        .unwrap();
    let w = aws.world();
    assert!(w.schedules.is_empty());
    for op in [
        "CreateSchedule",
        "DeleteSchedule",
        "UpdateContainerInstancesState",
        "DeregisterTargets",
        "TerminateInstanceInAutoScalingGroup",
        "PutAttributes",
    ] {
        assert_eq!(
            w.calls.iter().filter(|c| **c == op).count(),
            0,
            "{op}: {:?}",
            w.calls
        );
    }
    drop(w);
    assert!(
        h.notifier
            .sent()
            .iter()
            .all(|n| n.title.contains("dry run") || n.summary.contains("DRY_RUN")),
        "{:?}",
        h.notifier
            .sent()
            .iter()
            .map(|n| &n.title)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn an_instance_stopping_behind_a_target_group_is_deregistered_once() {
    let aws = FakeAws::new();
    let tg = aws.target("web", INSTANCE, 80);
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[("TARGET_GROUP_ARNS", tg.as_str())]);
    let stopping = sample("maintenance/instance-stopping.json");
    let out = invoke(&h, &stopping).await.unwrap();
    assert_eq!(out.outcome, "out of service");
    assert_eq!(
        aws.world().deregistered,
        vec![(tg, INSTANCE.to_owned(), Some(80))]
    );
    assert_eq!(h.notifier.sent().len(), 1);
    assert_eq!(
        h.notifier.sent()[0].kind,
        NotificationKind::InstanceStopping
    );
    // Then shutting down: already out of service, nothing to say.
    let down = invoke(&h, &sample("other/ec2-instance-state-change.json"))
        .await
        .unwrap();
    assert!(down.outcome.starts_with("ignored"), "{}", down.outcome);
    assert_eq!(h.notifier.sent().len(), 1);
    let running = invoke(&h, &sample("maintenance/instance-running.json"))
        .await
        .unwrap();
    assert!(
        running.outcome.starts_with("ignored"),
        "{}",
        running.outcome
    );
}

#[tokio::test(start_paused = true)]
async fn a_scale_in_shutting_down_is_not_announced_again() {
    // The terminate hook drained it and Auto Scaling deregistered it (draining): fleetguard
    // has nothing to add when EC2 reports it shutting down.
    let (aws, tg, _) = fleet();
    aws.world().container_instances[0].status = "DRAINING".into();
    for (_, r) in aws.world().targets.get_mut(&tg).unwrap().iter_mut() {
        r.state = "draining".into();
    }
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    let out = invoke(&h, &sample("other/ec2-instance-state-change.json"))
        .await
        .unwrap();
    assert!(out.outcome.starts_with("ignored"), "{}", out.outcome);
    assert!(h.notifier.sent().is_empty());
    assert_eq!(aws.calls_of("DeregisterTargets"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_drain_fails_the_invocation_after_telling_people() {
    let (aws, _, _) = fleet();
    aws.throttle("UpdateContainerInstancesState", 1);
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[("MAINTENANCE_ACTION", "drain")]);
    let err = invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 600, None),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "DrainFailed");
    assert!(
        err.message.contains("UpdateContainerInstancesState"),
        "{}",
        err.message
    );
    assert_eq!(h.notifier.sent().len(), 1);
    // Lambda's retry finishes it.
    invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 600, None),
    )
    .await
    .unwrap();
    assert_eq!(aws.world().container_instances[0].status, "DRAINING");
}

#[tokio::test(start_paused = true)]
async fn other_services_and_bad_windows() {
    let aws = FakeAws::new();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    let rds = invoke(&h, &sample("maintenance/health-rds-issue.json"))
        .await
        .unwrap();
    assert!(
        rds.outcome
            .starts_with("ignored: not an EC2 scheduled change"),
        "{}",
        rds.outcome
    );
    let bad = invoke(&h, &sample("invalid/health-placeholder-start.json"))
        .await
        .unwrap_err();
    assert_eq!(bad.error_type, "InvalidEvent");
    assert!(bad.message.contains("detail.startTime"), "{}", bad.message);
    assert!(aws.world().calls.is_empty());
    // The start time is parsed from RFC 2822, as Health writes it.
    assert!(parse_health_time("Thu, 14 Jan 2027 09:00:00 GMT").is_some());
}

#[tokio::test(start_paused = true)]
async fn a_target_group_deleted_since_the_drain_is_not_retried_for_a_day() {
    let (aws, _, _) = fleet();
    aws.fail(
        "RegisterTargets",
        1,
        fleetguard::ports::AwsError::service(
            "RegisterTargets",
            "TargetGroupNotFound",
            "One or more target groups not found",
        ),
    );
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    let out = invoke(&h, &sample("maintenance/scheduled-return.json"))
        .await
        .unwrap();
    assert_eq!(
        out.outcome,
        format!("{INSTANCE}: not registered again (TargetGroupNotFound)")
    );
    // Throttling, on the other hand, fails so the scheduler tries again.
    aws.throttle("RegisterTargets", 1);
    let err = invoke(&h, &sample("maintenance/scheduled-return.json"))
        .await
        .unwrap_err();
    assert!(err.message.contains("Throttling"), "{}", err.message);
}

/// Issue 23, situation 5: `replace` terminated through any group with *a* terminate hook, ours
/// or not; another tool's hook drains nothing.
#[tokio::test(start_paused = true)]
async fn without_a_terminate_hook_of_asg_lifecycle_the_instance_is_drained_not_replaced() {
    for (case, env) in [
        ("no hook", vec![]),
        ("another tool's hook", vec![]),
        (
            "asg-lifecycle not deployed",
            vec![("LIFECYCLE_HOOKS", "none")],
        ),
    ] {
        // Terminating at once would cut its tasks short: no hook of ours holds it until it is
        // drained.
        let (aws, _, _) = fleet();
        match case {
            "no hook" => aws.world().hooks.clear(),
            "another tool's hook" => {
                aws.world().hooks.clear();
                aws.hook("workers", "backup-on-terminate", true, 300, None);
            }
            _ => {}
        }
        let clock = FakeClock::at(NOW);
        let h = handler(&aws, &clock, &env);
        let out = invoke(
            &h,
            &health("maintenance/health-retirement.json", NOW, 600, None),
        )
        .await
        .unwrap();
        assert!(
            out.actions.iter().any(|a| a
                == "workers has no terminate hook of asg-lifecycle (LIFECYCLE_HOOKS): drained, not replaced"),
            "{case}: {:?}",
            out.actions
        );
        let w = aws.world();
        assert!(w.replaced.is_empty(), "{case}");
        assert_eq!(w.container_instances[0].status, "DRAINING", "{case}");
    }
    // asg-lifecycle's hook: replaced.
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(
        &aws,
        &clock,
        &[("LIFECYCLE_HOOKS", "fleetguard-drain,fleetguard-join")],
    );
    invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 600, None),
    )
    .await
    .unwrap();
    assert_eq!(aws.world().replaced.len(), 1);

    let (aws, _, _) = fleet();
    aws.world().hooks.clear();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 600, None),
    )
    .await
    .unwrap();
    let w = aws.world();
    assert!(w.replaced.is_empty());
    assert_eq!(w.container_instances[0].status, "DRAINING");
    assert_eq!(
        w.container_instances[0].drain_mark,
        Some(DrainMark {
            reason: DrainReason::Maintenance,
            at: NOW + 600 + DEFAULT_WINDOW_SECS
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_schedule_for_an_instance_gone_since_changes_nothing_and_says_nothing() {
    let aws = FakeAws::new();
    aws.cluster("prod");
    // Before the sample's window (2027-01-14T09:00Z).
    let clock = FakeClock::at(NOW - 86_400);
    let h = handler(&aws, &clock, &[]);
    let out = invoke(&h, &sample("maintenance/scheduled-out-of-service.json"))
        .await
        .unwrap();
    assert!(
        out.outcome.contains("nothing to take out of service"),
        "{}",
        out.outcome
    );
    assert!(h.notifier.sent().is_empty());
    assert_eq!(aws.calls_of("TerminateInstanceInAutoScalingGroup"), 0);
}

#[tokio::test(start_paused = true)]
async fn every_affected_instance_gets_its_schedule_and_message() {
    const OTHER: &str = "i-07f3e9b2c4d5a6180";
    let (aws, _, _) = fleet();
    aws.group_instance("workers", OTHER, "InService");
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    let mut e = health("maintenance/health-retirement.json", NOW, 86_400, None);
    e["detail"]["affectedEntities"] = json!([{"entityValue": INSTANCE}, {"entityValue": OTHER}]);
    let out = invoke(&h, &e).await.unwrap();
    assert_eq!(
        out.outcome,
        format!("{INSTANCE}: scheduled; {OTHER}: scheduled")
    );
    let w = aws.world();
    assert_eq!(w.schedules.len(), 2);
    assert!(w.schedules.keys().any(|k| k.contains(OTHER)));
    drop(w);
    let sent = h.notifier.sent();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0].dedupe_key, sent[1].dedupe_key);
}

/// The sample retirement `start_in` seconds ahead, closed by AWS Health.
fn closed(now: i64, start_in: i64) -> Value {
    let mut e = health("maintenance/health-retirement.json", now, start_in, None);
    e["detail"]["statusCode"] = json!("closed");
    e
}

fn phases(h: &Maintenance) -> Vec<Phase> {
    h.notifier
        .sent()
        .iter()
        .map(|n| n.incident.as_ref().unwrap().phase)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_close_after_the_schedule_ran_and_the_instance_left_its_group_resolves_the_incident() {
    // The defect: with nothing pending any more (the schedule had run, or the replaced instance
    // had left its managed group), the close sent nothing and the incident stayed open.
    let (aws, _, _) = fleet();
    aws.world().groups[0]
        .tags
        .insert("fleetguard".into(), "on".into());
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[("MANAGED_ASG_TAG", "fleetguard")]);
    invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 3 * 86_400, None),
    )
    .await
    .unwrap();
    let s = only_schedule(&aws);
    clock.set(s.at);
    invoke(&h, &serde_json::from_str(&s.input).unwrap())
        .await
        .unwrap();
    // The schedule ran (one-time schedules delete themselves); the instance was replaced and
    // is out of its group.
    aws.world().schedules.clear();
    aws.world().group_instances.clear();
    clock.set(NOW + 3 * 86_400 + 7200);
    let out = invoke(&h, &closed(NOW, 3 * 86_400)).await.unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: closed"));
    assert_eq!(phases(&h), [Phase::Opened, Phase::Updated, Phase::Resolved]);
    // The same close again resolves nothing twice.
    invoke(&h, &closed(NOW, 3 * 86_400)).await.unwrap();
    assert_eq!(h.notifier.sent().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_close_after_the_instance_was_taken_out_at_once_resolves_the_incident() {
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[("MAINTENANCE_ACTION", "drain")]);
    invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 600, None),
    )
    .await
    .unwrap();
    clock.set(NOW + 3600);
    let out = invoke(&h, &closed(NOW, 600)).await.unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: closed"));
    assert_eq!(phases(&h), [Phase::Opened, Phase::Resolved]);
}

#[tokio::test(start_paused = true)]
async fn a_close_of_an_event_never_opened_here_stays_quiet() {
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    let out = invoke(&h, &closed(NOW, 600)).await.unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: closed, nothing pending"));
    assert!(h.notifier.sent().is_empty());
}

/// The sample retirement `start_in` seconds ahead, as updated at `updated` (lastUpdatedTime).
fn update(now: i64, start_in: i64, updated: i64, status: &str) -> Value {
    let mut e = health("maintenance/health-retirement.json", now, start_in, None);
    e["detail"]["statusCode"] = json!(status);
    e["detail"]["lastUpdatedTime"] = json!(
        chrono::DateTime::from_timestamp(updated, 0)
            .unwrap()
            .to_rfc2822()
    );
    e
}

/// Issue 23, situation 7: an update that arrives after the event's close was acted on again (a
/// new schedule, a new drain). Updates apply in order of their lastUpdatedTime.
#[tokio::test(start_paused = true)]
async fn health_updates_apply_in_order_and_nothing_acts_after_the_close() {
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    // The window moved later (updated at +20), then the older update arrives late (+10).
    invoke(&h, &update(NOW, 2 * 86_400, NOW + 20, "upcoming"))
        .await
        .unwrap();
    let newer = only_schedule(&aws);
    let stale = invoke(&h, &update(NOW, 86_400, NOW + 10, "upcoming"))
        .await
        .unwrap();
    assert!(
        stale.outcome.starts_with("ignored: stale"),
        "{}",
        stale.outcome
    );
    assert_eq!(
        only_schedule(&aws),
        newer,
        "the older window does not come back"
    );
    // A duplicate of the applied update is fine (its steps are idempotent).
    let dup = invoke(&h, &update(NOW, 2 * 86_400, NOW + 20, "upcoming"))
        .await
        .unwrap();
    assert!(!dup.outcome.starts_with("ignored"), "{}", dup.outcome);
    // Closed at +30; then an update, late or even newer: nothing is scheduled or drained.
    invoke(&h, &update(NOW, 2 * 86_400, NOW + 30, "closed"))
        .await
        .unwrap();
    assert!(aws.world().schedules.is_empty());
    let sent = h.notifier.sent().len();
    for updated in [NOW + 20, NOW + 40] {
        let out = invoke(&h, &update(NOW, 600, updated, "upcoming"))
            .await
            .unwrap();
        assert!(out.outcome.contains("closed this event"), "{}", out.outcome);
    }
    assert!(aws.world().schedules.is_empty());
    assert_eq!(aws.world().container_instances[0].status, "ACTIVE");
    assert_eq!(h.notifier.sent().len(), sent, "nothing told again");
    // The close again (a duplicate) still goes through.
    let out = invoke(&h, &update(NOW, 2 * 86_400, NOW + 30, "closed"))
        .await
        .unwrap();
    assert!(!out.outcome.starts_with("ignored"), "{}", out.outcome);
}

/// Issue 23, situation 4: Scheduler invokes asynchronously, so a failure at the due time got
/// Lambda's two retries and nothing more. The schedule is put again while the window has not
/// started; a due step after the close or after the window is not acted on.
#[tokio::test(start_paused = true)]
async fn a_due_step_that_fails_is_tried_again_until_the_window_and_a_late_one_is_told() {
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 3 * 86_400, None),
    )
    .await
    .unwrap();
    let s = only_schedule(&aws);
    let input: Value = serde_json::from_str(&s.input).unwrap();
    clock.set(s.at);
    // Scheduler deletes a one-time schedule once it has invoked its target.
    aws.world().schedules.clear();
    // ECS is down past the SDK's retries, on the first try and on both of Lambda's retries.
    aws.throttle("ListContainerInstances", 3);
    for _ in 0..3 {
        assert!(invoke(&h, &input).await.is_err());
    }
    // Put under the other name of the pair: a write to the fired schedule's name could race
    // Scheduler's deletion of it.
    let again = only_schedule(&aws);
    assert_eq!(again.name, format!("{}-r", s.name));
    assert_eq!(again.at, s.at + DUE_RETRY_SECS);
    assert_eq!(aws.world().container_instances[0].status, "ACTIVE");
    // The retry fails too: the next retry takes the first name again.
    clock.set(again.at);
    aws.world().schedules.clear();
    let input: Value = serde_json::from_str(&again.input).unwrap();
    aws.throttle("ListContainerInstances", 1);
    assert!(invoke(&h, &input).await.is_err());
    let third = only_schedule(&aws);
    assert_eq!(third.name, s.name);
    // Its run takes the instance out.
    clock.set(third.at);
    aws.world().schedules.clear();
    let input: Value = serde_json::from_str(&third.input).unwrap();
    let out = invoke(&h, &input).await.unwrap();
    assert_eq!(out.outcome, format!("{INSTANCE}: out of service"));
    assert_eq!(aws.world().container_instances[0].status, "DRAINING");

    // A due payload after the window: told, nothing changed.
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    invoke(
        &h,
        &health("maintenance/health-retirement.json", NOW, 3 * 86_400, None),
    )
    .await
    .unwrap();
    let s = only_schedule(&aws);
    clock.set(NOW + 3 * 86_400 + DEFAULT_WINDOW_SECS + 1);
    let out = invoke(&h, &serde_json::from_str::<Value>(&s.input).unwrap())
        .await
        .unwrap();
    assert!(out.outcome.contains("too late"), "{}", out.outcome);
    assert_eq!(aws.world().container_instances[0].status, "ACTIVE");
    assert!(aws.world().replaced.is_empty());
    assert!(
        h.notifier
            .sent()
            .iter()
            .any(|n| n.title.starts_with("Too late")),
        "told"
    );

    // A due payload after the close (its schedule's deletion raced it): not acted on.
    let (aws, _, _) = fleet();
    let clock = FakeClock::at(NOW);
    let h = handler(&aws, &clock, &[]);
    invoke(&h, &update(NOW, 3 * 86_400, NOW, "upcoming"))
        .await
        .unwrap();
    let s = only_schedule(&aws);
    invoke(&h, &update(NOW, 3 * 86_400, NOW + 5, "closed"))
        .await
        .unwrap();
    clock.set(s.at);
    let out = invoke(&h, &serde_json::from_str::<Value>(&s.input).unwrap())
        .await
        .unwrap();
    assert!(out.outcome.contains("closed the event"), "{}", out.outcome);
    assert_eq!(aws.world().container_instances[0].status, "ACTIVE");
}
