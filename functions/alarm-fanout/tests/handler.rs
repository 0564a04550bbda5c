//! Every alarm sample through the handler over the fake pipeline: each kind, each ingress.
//!
//! On tokio's paused time: the notifier's backoff and paces cost no wall-clock time.

use alarm_fanout::Handler;
use alarm_fanout::config::AlarmConfig;
use fleetguard::config::CommonConfig;
use fleetguard::notify::NotificationKind;
use fleetguard::testing::{FakeNotifier, invoke, sample};

fn handler(env: &[(&str, &str)]) -> Handler<FakeNotifier> {
    let lookup = fleetguard::config::lookup_in(env);
    Handler {
        common: CommonConfig::from_lookup(&lookup).unwrap(),
        alarms: AlarmConfig::from_lookup(lookup).unwrap(),
        notifier: FakeNotifier::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn every_kind_and_ingress_is_one_message() {
    // (sample, what the message must name)
    let cases = [
        ("alarms/metric.json", "CPUUtilization"),
        ("alarms/metric-ok.json", "OK"),
        ("alarms/metric-math.json", "metric math"),
        ("alarms/anomaly-detection.json", "anomaly"),
        ("alarms/multi-time-series.json", "multi-time-series"),
        ("alarms/composite.json", "composite"),
        ("alarms/contributor.json", "TableName=orders"),
        ("alarms/insufficient-data.json", "INSUFFICIENT_DATA"),
        ("alarms/tagged.json", "payments"),
        ("alarms/sns-metric.json", "checkout-api-cpu-high"),
        ("alarms/sns-metric-math.json", "metric math"),
        ("alarms/sns-composite.json", "composite"),
        ("alarms/action-metric.json", "orders-worker-errors"),
        ("alarms/action-composite.json", "composite"),
    ];
    for (file, expect) in cases {
        assert!(!expect.is_empty(), "{file}: every case names something");
        let h = handler(&[]);
        let out = invoke(&h, &sample(file))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(out.outcome, "notified", "{file}");
        let sent = h.notifier.sent();
        assert_eq!(sent.len(), 1, "{file}");
        assert_eq!(sent[0].kind, NotificationKind::Alarm, "{file}");
        let text = serde_json::to_string(&sent[0]).unwrap();
        assert!(
            text.to_lowercase().contains(&expect.to_lowercase()),
            "{file}: {expect:?} not in {text}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn muted_suppressed_and_configuration_changes_are_not_sent() {
    let h = handler(&[]);
    for file in [
        "alarms/muted.json",
        "alarms/composite-suppressed.json",
        "alarms/configuration-change.json",
    ] {
        let out = invoke(&h, &sample(file)).await.unwrap();
        assert!(
            out.outcome.starts_with("skipped") || out.outcome.starts_with("ignored"),
            "{file}: {}",
            out.outcome
        );
    }
    assert!(h.notifier.sent().is_empty());
    // Unless asked for.
    let h = handler(&[("MUTED_ALARMS", "notify"), ("SUPPRESSED_ALARMS", "notify")]);
    invoke(&h, &sample("alarms/muted.json")).await.unwrap();
    invoke(&h, &sample("alarms/composite-suppressed.json"))
        .await
        .unwrap();
    assert_eq!(h.notifier.sent().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_same_alarm_by_eventbridge_and_sns_has_one_dedupe_key() {
    let h = handler(&[]);
    invoke(&h, &sample("alarms/metric.json")).await.unwrap();
    let second = invoke(&h, &sample("alarms/sns-metric.json")).await.unwrap();
    // One key: the pipeline's claim refuses the second copy.
    assert_eq!(h.notifier.sent().len(), 1);
    assert!(
        second
            .actions
            .iter()
            .any(|a| a.starts_with("already delivered to")),
        "{:?}",
        second.actions
    );
}

#[tokio::test(start_paused = true)]
async fn a_delivery_failure_fails_the_invocation() {
    let h = handler(&[]);
    h.notifier
        .fail_with(Some("sns:arn:aws:sns:eu-west-1:1:alarms"));
    let err = invoke(&h, &sample("alarms/metric.json")).await.unwrap_err();
    assert_eq!(err.error_type, "DeliveryFailed");
}

#[tokio::test(start_paused = true)]
async fn alarm_opens_and_ok_resolves_one_incident() {
    use fleetguard::notify::Phase;
    let h = handler(&[]);
    invoke(&h, &sample("alarms/metric.json")).await.unwrap();
    invoke(&h, &sample("alarms/metric-ok.json")).await.unwrap();
    invoke(&h, &sample("alarms/insufficient-data.json"))
        .await
        .unwrap();
    let sent = h.notifier.sent();
    let incidents: Vec<_> = sent.iter().map(|n| n.incident.clone().unwrap()).collect();
    assert_eq!(incidents[0].phase, Phase::Opened);
    assert_eq!(incidents[1].phase, Phase::Resolved);
    assert_eq!(incidents[2].phase, Phase::Updated);
    assert_eq!(
        incidents[0].key,
        "alarm|arn:aws:cloudwatch:eu-west-1:482917350264:alarm:checkout-api-cpu-high|"
    );
    assert_eq!(incidents[0].key, incidents[1].key, "one incident per alarm");
    assert_ne!(
        sent[0].dedupe_key, sent[1].dedupe_key,
        "one message per phase"
    );
}
