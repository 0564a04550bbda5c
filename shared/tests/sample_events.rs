//! Every file under `events/` parses to the variant `events/manifest.json` names for it, or fails
//! with an error naming the field; nothing panics. Also spot checks of what the typed values hold.

use fleetguard::events::{
    AlarmKind, AlarmStateValue, Detail, Ingress, InstanceAction, WarmPoolLocation,
};
use fleetguard::{Event, parse_event};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn all_files(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            all_files(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "json")
            && p.file_name().unwrap() != "manifest.json"
        {
            out.insert(
                p.strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
}

fn manifest() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(events_dir().join("manifest.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn load(name: &str) -> Event {
    let bytes = std::fs::read(events_dir().join(name)).unwrap();
    parse_event(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_sample_event_is_in_the_manifest() {
    let mut files = BTreeSet::new();
    let dir = events_dir();
    all_files(&dir, &dir, &mut files);
    let listed: BTreeSet<String> = manifest().keys().cloned().collect();
    let unlisted: Vec<_> = files.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&files).collect();
    assert!(
        unlisted.is_empty(),
        "files not in events/manifest.json: {unlisted:?}"
    );
    assert!(
        missing.is_empty(),
        "manifest entries without a file: {missing:?}"
    );
    assert!(
        files.len() > 100,
        "expected the full sample set, found {}",
        files.len()
    );
}

#[test]
fn every_sample_event_parses_to_its_expected_variant_or_error() {
    let mut failures = Vec::new();
    for (name, expect) in manifest() {
        let bytes = std::fs::read(events_dir().join(&name)).unwrap();
        let got = parse_event(&bytes);
        match (
            expect.get("kind").and_then(Value::as_str),
            expect.get("error").and_then(Value::as_str),
            got,
        ) {
            (Some(kind), _, Ok(ev)) if ev.kind().as_str() == kind => {}
            (Some(kind), _, Ok(ev)) => {
                failures.push(format!("{name}: expected {kind}, got {}", ev.kind()))
            }
            (Some(kind), _, Err(e)) => {
                failures.push(format!("{name}: expected {kind}, got error {e}"))
            }
            (None, Some(needle), Err(e)) => {
                let msg = e.to_string();
                if !msg.contains(needle) {
                    failures.push(format!("{name}: error {msg:?} does not contain {needle:?}"));
                }
                // One clear line, never the whole megabyte back.
                if msg.len() > 600 || msg.contains('\n') {
                    failures.push(format!(
                        "{name}: error is not one short line ({} bytes)",
                        msg.len()
                    ));
                }
            }
            (None, Some(needle), Ok(ev)) => failures.push(format!(
                "{name}: expected error {needle:?}, parsed {}",
                ev.kind()
            )),
            (None, None, _) => {
                failures.push(format!("{name}: manifest entry has neither kind nor error"))
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn spot_warning_fields() {
    let ev = load("spot/interruption-stop.json");
    let Detail::SpotInterruptionWarning(w) = &ev.detail else {
        panic!()
    };
    assert_eq!(w.instance_id.as_str(), "i-07f3e9b2c4d5a6180");
    assert_eq!(w.instance_action, InstanceAction::Stop);
    assert_eq!(ev.envelope.region, "eu-west-1");
    assert!(ev.envelope.time.at().is_some());
    // The documentation sample's placeholders are kept, not fatal.
    let doc = load("aws-docs/ec2-spot-instance-interruption-warning.json");
    let Detail::SpotInterruptionWarning(w) = &doc.detail else {
        panic!()
    };
    assert_eq!(w.instance_action, InstanceAction::Other("action".into()));
    assert!(doc.envelope.time.at().is_none());
}

#[test]
fn lifecycle_action_forms_agree() {
    let ev = load("asg/terminate-lifecycle-action.json");
    let Detail::LifecycleAction(a) = &ev.detail else {
        panic!()
    };
    assert_eq!(a.instance_id.as_str(), "i-0a1b2c3d4e5f60718");
    assert_eq!(a.auto_scaling_group_name.as_str(), "prod-ecs-spot-asg");
    assert_eq!(a.lifecycle_hook_name, "fleetguard-drain");
    assert_eq!(
        a.notification_metadata.json.as_ref().unwrap()["cluster"],
        "prod-ecs"
    );
    assert_eq!(ev.ingress, Ingress::EventBridge);

    let body = load("asg/terminate-lifecycle-sqs-body.json");
    let sns = load("asg/terminate-lifecycle-sns.json");
    let (Detail::LifecycleAction(b), Detail::LifecycleAction(s)) = (&body.detail, &sns.detail)
    else {
        panic!()
    };
    assert_eq!(b, s);
    assert_eq!(b.notification_metadata.raw.as_deref(), Some("web tier"));
    assert!(b.notification_metadata.json.is_none());
    assert_eq!(body.ingress, Ingress::NotificationBody);
    assert_eq!(sns.ingress, Ingress::Sns);
    assert_eq!(sns.envelope.region, "eu-west-1");
    assert_eq!(
        sns.envelope.detail_type,
        "EC2 Instance-terminate Lifecycle Action"
    );

    let warm = load("asg/launch-into-warm-pool.json");
    let Detail::LifecycleAction(w) = &warm.detail else {
        panic!()
    };
    assert!(w.is_into_warm_pool());
    assert_eq!(w.origin, Some(WarmPoolLocation::Ec2));
    let out = load("asg/warm-pool-to-service.json");
    let Detail::LifecycleAction(o) = &out.detail else {
        panic!()
    };
    assert!(!o.is_into_warm_pool());
}

#[test]
fn ecs_fields() {
    let ev = load("ecs/deployment-rollback-started.json");
    let Detail::DeploymentStateChange(d) = &ev.detail else {
        panic!()
    };
    assert_eq!(d.service.cluster.as_deref(), Some("prod-ecs"));
    assert_eq!(d.service.service, "checkout-api");
    assert!(d.detail.is_rollback());
    assert_eq!(ev.subject(), "prod-ecs/checkout-api");

    let ev = load("ecs/task-stopped-oom.json");
    let Detail::TaskStateChange(t) = &ev.detail else {
        panic!()
    };
    assert_eq!(t.containers[0].exit_code, Some(137));
    assert_eq!(t.service_name(), Some("checkout-api"));
    assert_eq!(t.version, Some(6));

    let ev = load("ecs/container-instance-drained.json");
    let Detail::ContainerInstanceStateChange(c) = &ev.detail else {
        panic!()
    };
    assert_eq!(
        c.ec2_instance_id.as_ref().unwrap().as_str(),
        "i-0a1b2c3d4e5f60718"
    );
    assert_eq!(c.running_tasks_count, Some(0));

    let ev = load("ecs/service-new-action-name.json");
    let Detail::ServiceAction(s) = &ev.detail else {
        panic!()
    };
    assert_eq!(
        s.detail.event_name.as_str(),
        "SERVICE_REVISION_HEALTH_DEGRADED"
    );
}

fn alarm(name: &str) -> fleetguard::events::AlarmStateChange {
    match load(name).detail {
        Detail::AlarmStateChange(a) | Detail::AlarmContributorStateChange(a) => *a,
        other => panic!("{name}: not an alarm: {other:?}"),
    }
}

#[test]
fn alarm_kinds_from_every_ingress() {
    for (file, kind) in [
        ("alarms/metric.json", AlarmKind::Metric),
        ("alarms/metric-math.json", AlarmKind::MetricMath),
        ("alarms/anomaly-detection.json", AlarmKind::AnomalyDetection),
        ("alarms/composite.json", AlarmKind::Composite),
        ("alarms/multi-time-series.json", AlarmKind::MultiTimeSeries),
        ("alarms/contributor.json", AlarmKind::MultiTimeSeries),
        ("alarms/sns-metric.json", AlarmKind::Metric),
        ("alarms/sns-metric-math.json", AlarmKind::MetricMath),
        ("alarms/sns-composite.json", AlarmKind::Composite),
        ("alarms/action-metric.json", AlarmKind::Metric),
        ("alarms/action-composite.json", AlarmKind::Composite),
        (
            "aws-docs/eb-alarm-state-change-metric-math.json",
            AlarmKind::MetricMath,
        ),
        (
            "aws-docs/eb-alarm-state-change-anomaly-detection.json",
            AlarmKind::AnomalyDetection,
        ),
        (
            "aws-docs/synthetic/sns-lambda-event-metric-math-alarm.SYNTHETIC.json",
            AlarmKind::MetricMath,
        ),
    ] {
        assert_eq!(alarm(file).kind, kind, "{file}");
    }
}

#[test]
fn alarm_details_survive_normalisation() {
    let a = alarm("alarms/metric.json");
    assert_eq!(a.state.value, AlarmStateValue::Alarm);
    assert_eq!(
        a.previous_state.as_ref().unwrap().value,
        AlarmStateValue::Ok
    );
    let rd = a.state.reason_data.as_ref().unwrap();
    assert_eq!(rd.threshold, Some(80.0));
    assert_eq!(rd.recent_datapoints, vec![88.7, 91.2, 93.4]);
    assert_eq!(a.metrics[0].dimensions["ServiceName"], "checkout-api");
    assert_eq!(a.region.as_deref(), Some("eu-west-1"));

    // SNS: region from the ARN, not the display name; threshold from Trigger.
    let s = alarm("alarms/sns-metric.json");
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert_eq!(s.threshold.as_ref().unwrap().threshold, Some(80.0));
    assert_eq!(s.metrics[0].metric_name.as_deref(), Some("CPUUtilization"));
    assert_eq!(s.metrics[0].dimensions["ClusterName"], "prod-ecs");

    let c = alarm("alarms/sns-composite.json");
    assert_eq!(c.triggering_children[0].name, "checkout-api-cpu-high");
    assert_eq!(c.triggering_children[0].state, Some(AlarmStateValue::Alarm));
    assert_eq!(c.tags["severity"], "critical");
    let c = alarm("alarms/composite.json");
    assert_eq!(c.triggering_children[0].name, "checkout-api-cpu-high");
    assert_eq!(c.tags["team"], "payments");
    assert!(!c.actions_suppressed());
    assert!(alarm("alarms/composite-suppressed.json").actions_suppressed());
    assert!(alarm("alarms/muted.json").mute.is_some());
    assert!(alarm("alarms/metric.json").mute.is_none());
    assert_eq!(
        alarm("alarms/contributor.json")
            .contributor
            .unwrap()
            .attributes["TableName"],
        "orders"
    );

    // The documentation's SNS schema has type names where values go: kept lenient.
    let doc = alarm("aws-docs/sns-message-schema-metric-alarm.json");
    assert_eq!(doc.state.value, AlarmStateValue::Other("string".into()));
    assert_eq!(doc.threshold.as_ref().unwrap().threshold, None);
}

#[test]
fn huge_inputs_are_bounded_in_errors_and_subjects() {
    let bytes = std::fs::read(events_dir().join("invalid/huge-instance-id.json")).unwrap();
    let err = parse_event(&bytes).unwrap_err().to_string();
    assert!(err.len() < 400, "{} bytes", err.len());
    let a = alarm("invalid/huge-alarm-description.json");
    assert_eq!(a.description.unwrap().chars().count(), 512 * 1024);
}

#[test]
fn readme_event_table_lists_every_sample_event() {
    let readme = std::fs::read_to_string(events_dir().join("README.md")).unwrap();
    let missing: Vec<String> = manifest()
        .keys()
        .filter(|k| !k.starts_with("aws-docs/"))
        .filter(|k| !readme.contains(&format!("`events/{k}`")))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "events/README.md's table lacks: {missing:?}"
    );
}

#[test]
fn maintenance_and_group_event_fields() {
    let ev = load("maintenance/health-reboot.json");
    let Detail::HealthEvent(h) = &ev.detail else {
        panic!()
    };
    assert!(h.is_ec2_scheduled_change());
    assert_eq!(h.kind(), fleetguard::events::MaintenanceKind::Reboot);
    assert_eq!(
        h.start.unwrap().to_rfc3339(),
        "2027-01-09T02:00:00+00:00",
        "startTime is RFC 2822"
    );
    assert_eq!(
        (h.end.unwrap() - h.start.unwrap()).num_hours(),
        2,
        "endTime too"
    );
    assert_eq!(h.instances[0].as_str(), "i-0a1b2c3d4e5f60718");
    let doc = load("aws-docs/synthetic/health-ec2-scheduled-change.SYNTHETIC.json");
    let Detail::HealthEvent(d) = &doc.detail else {
        panic!()
    };
    assert_eq!(d.instances[0].as_str(), "i-abcd1111");
    let rds = load("maintenance/health-rds-issue.json");
    let Detail::HealthEvent(r) = &rds.detail else {
        panic!()
    };
    assert!(!r.is_ec2_scheduled_change() && r.instances.is_empty());

    let due = load("maintenance/scheduled-return.json");
    let Detail::MaintenanceDue(m) = &due.detail else {
        panic!()
    };
    assert_eq!(m.step, fleetguard::events::MaintenanceStep::Return);
    assert_eq!(m.targets[0].port, Some(80));

    let l = load("asg/launch-unsuccessful.json");
    let Detail::LaunchUnsuccessful(l) = &l.detail else {
        panic!()
    };
    assert_eq!(l.availability_zone(), Some("eu-west-1b"));
    assert!(l.status_message.as_deref().unwrap().contains("m5.xlarge"));
    for (file, wrong) in [
        ("asg/instance-refresh-failed.json", true),
        ("asg/instance-refresh-cancelled.json", true),
        ("asg/instance-refresh-rollback-started.json", true),
        ("asg/instance-refresh-succeeded.json", false),
        (
            "aws-docs/asg-instance-refresh-checkpoint-reached.json",
            false,
        ),
    ] {
        let Detail::InstanceRefresh(r) = load(file).detail else {
            panic!()
        };
        assert_eq!(r.went_wrong(), wrong, "{file}: {}", r.status);
    }
    let s = load("maintenance/instance-stopping.json");
    let Detail::InstanceStateChange(c) = &s.detail else {
        panic!()
    };
    assert!(c.is_going_away());
}
