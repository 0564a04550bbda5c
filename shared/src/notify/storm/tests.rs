//! A storm through the real pipeline over the in-memory ledger and the fake services.

use crate::notify::destinations::fake::FakeServices;
use crate::notify::ledger::MemoryLedger;
use crate::notify::services::Method;
use crate::notify::{
    Deadline, Destination, Notification, NotificationKind, Notifier, Phase, Rules, Severity,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const T0: i64 = 1_767_225_600;
const SNS: &str = "arn:aws:sns:eu-west-1:111122223333:alarms";

fn notifier(routes: &str) -> (Notifier<MemoryLedger, FakeServices>, Arc<AtomicI64>) {
    let base = Arc::new(AtomicI64::new(T0));
    let clock = {
        let (b, start) = (base.clone(), tokio::time::Instant::now());
        move || b.load(Ordering::SeqCst) + start.elapsed().as_secs() as i64
    };
    let defaults = vec![
        Destination::SlackChannel {
            channel: "#ops".into(),
        },
        Destination::PagerDuty {
            secret_id: "pd".into(),
        },
        Destination::Teams {
            secret_id: "teams".into(),
        },
        Destination::Sns {
            topic_arn: SNS.into(),
        },
    ];
    let n = Notifier::with(
        Rules::parse(routes).unwrap(),
        defaults,
        MemoryLedger::table(clock.clone()),
        FakeServices::new(clock),
    );
    (n, base)
}

fn alarm(name: &str, state: &str, at: i64) -> Notification {
    let phase = if state == "ALARM" {
        Phase::Opened
    } else {
        Phase::Resolved
    };
    let time = chrono::DateTime::from_timestamp(T0 + at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut n = Notification::new(
        NotificationKind::Alarm,
        Severity::High,
        format!("{name} is {state}"),
        format!("alarm|{name}|{state}|{time}"),
    )
    .incident(format!("alarm|{name}"), phase);
    n.state = Some(state.into());
    n.resource_name = Some(name.into());
    n.source.event_time = Some(time);
    n
}

/// Send every notification at once, as concurrent invocations would.
async fn storm(n: &Notifier<MemoryLedger, FakeServices>, all: Vec<Notification>) {
    let deadline = Deadline::after(Duration::from_secs(30));
    let out = futures_util::future::join_all(all.into_iter().map(|a| n.send(a, deadline))).await;
    for r in out {
        r.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_storm_is_one_digest_per_destination_within_the_pace_and_resolves_with_its_last_source() {
    let (n, base) = notifier(r#"[{"default_destinations": true, "storm": {"sources": 5}}]"#);
    let opened: Vec<_> = (0..40)
        .map(|i| alarm(&format!("cpu-{i:02}"), "ALARM", i / 4))
        .collect();
    storm(&n, opened).await;
    let f = n.services();
    let messages = f.slack_messages();
    // The first five opened before the storm: their own messages; then one digest.
    let digests: Vec<_> = messages
        .iter()
        .filter(|m| m.text.contains("Storm on"))
        .collect();
    assert_eq!(digests.len(), 1, "{messages:#?}");
    assert_eq!(messages.len() - digests.len(), 5);
    let digest = digests[0];
    assert!(digest.text.contains("35 open"), "{}", digest.text);
    let alerts = f.alerts();
    assert_eq!(alerts.len(), 6, "five of their own, one for the storm");
    assert_eq!(
        f.landed(&format!("sns:{SNS}")).len(),
        40,
        "SNS gets every one"
    );
    // Every Slack call within its pace: a post to the channel, or an update, at most one a second.
    let mut per_second = BTreeMap::new();
    for s in f
        .seen()
        .iter()
        .filter(|s| s.destination == "slack-channel:#ops")
    {
        *per_second.entry((s.method.as_str(), s.at)).or_insert(0) += 1;
    }
    assert!(per_second.values().all(|&c| c <= 1), "{per_second:?}");

    // Everything recovers: the digest shows it and resolves, with PagerDuty's storm alert.
    base.fetch_add(600, Ordering::SeqCst);
    let ok: Vec<_> = (0..40)
        .map(|i| alarm(&format!("cpu-{i:02}"), "OK", 600 + i / 4))
        .collect();
    storm(&n, ok).await;
    let messages = f.slack_messages();
    let digest = messages.iter().find(|m| m.ts == digest.ts).unwrap();
    assert!(digest.text.contains("Storm over"), "{}", digest.text);
    assert_eq!(digest.body["attachments"][0]["color"], "#2EB67D");
    assert_eq!(messages.len(), 6, "no new message for a recovery");
    let alerts = f.alerts();
    assert!(alerts.iter().all(|a| a.status == "resolved"), "{alerts:#?}");
    let storm_alert = alerts
        .iter()
        .find(|a| a.dedup_key.contains("storm|"))
        .unwrap();
    assert_eq!(
        storm_alert.incidents, 1,
        "one PagerDuty incident for the storm"
    );
    assert_eq!(f.landed(&format!("sns:{SNS}")).len(), 80);
    let teams = f.landed("teams:teams");
    assert!(
        teams.len() < 5 + 5 + 20,
        "Teams: the five's openings and recoveries, and a few digest cards, not 80: {}",
        teams.len()
    );
    // The digest was updated in place.
    let updates = f
        .seen()
        .iter()
        .filter(|s| s.method == Method::ChatUpdate)
        .count();
    assert!(updates >= 1);
}

// A source whose opening's invocation stopped before joining the storm recovers on its own;
// the opening's retry, delivered after that, must not join the storm as open (the digest and
// its PagerDuty alert would never end).
#[tokio::test(start_paused = true)]
async fn an_opening_retried_after_its_sources_recovery_stays_out_of_the_storm() {
    let (n, base) = notifier(r#"[{"default_destinations": true, "storm": {"sources": 5}}]"#);
    let opened: Vec<_> = (0..20)
        .map(|i| alarm(&format!("cpu-{i:02}"), "ALARM", i / 4))
        .collect();
    storm(&n, opened).await;
    base.fetch_add(60, Ordering::SeqCst);
    storm(&n, vec![alarm("late", "OK", 60)]).await;
    base.fetch_add(60, Ordering::SeqCst);
    storm(&n, vec![alarm("late", "ALARM", 2)]).await;
    base.fetch_add(600, Ordering::SeqCst);
    let ok: Vec<_> = (0..20)
        .map(|i| alarm(&format!("cpu-{i:02}"), "OK", 720 + i / 4))
        .collect();
    storm(&n, ok).await;
    let f = n.services();
    let digest = f
        .slack_messages()
        .into_iter()
        .find(|m| m.text.contains("Storm"))
        .unwrap();
    assert!(
        digest.text.contains("all 15 sources recovered"),
        "{}",
        digest.text
    );
    let alerts = f.alerts();
    let storm_alert = alerts
        .iter()
        .find(|a| a.dedup_key.contains("storm|"))
        .unwrap();
    assert_eq!(storm_alert.status, "resolved", "{alerts:#?}");
}

#[tokio::test(start_paused = true)]
async fn below_the_threshold_and_with_digest_off_every_source_is_its_own_message() {
    let (n, _) = notifier(r#"[{"default_destinations": true, "storm": {"digest": false}}]"#);
    storm(
        &n,
        (0..15)
            .map(|i| alarm(&format!("m-{i}"), "ALARM", 0))
            .collect(),
    )
    .await;
    assert_eq!(n.services().slack_messages().len(), 15);
    let (n, _) = notifier(r#"[{"default_destinations": true, "storm": {"sources": 20}}]"#);
    storm(
        &n,
        (0..15)
            .map(|i| alarm(&format!("m-{i}"), "ALARM", 0))
            .collect(),
    )
    .await;
    assert_eq!(n.services().slack_messages().len(), 15);
    assert_eq!(n.services().alerts().len(), 15);
}

#[tokio::test(start_paused = true)]
async fn pagerduty_per_source_when_the_route_asks_and_within_the_keys_pace() {
    let (n, _) = notifier(
        r#"[{"default_destinations": true, "storm": {"sources": 3, "pagerduty": "source"}}]"#,
    );
    storm(
        &n,
        (0..20)
            .map(|i| alarm(&format!("p-{i}"), "ALARM", 0))
            .collect(),
    )
    .await;
    let f = n.services();
    assert_eq!(f.alerts().len(), 20, "one per source");
    assert_eq!(
        f.slack_messages().len(),
        4,
        "Slack still digests: three of their own and the digest"
    );
    let mut per_second = BTreeMap::new();
    for s in f.seen().iter().filter(|s| s.method == Method::Enqueue) {
        *per_second.entry(s.at).or_insert(0) += 1;
    }
    assert!(per_second.values().all(|&c| c <= 2), "{per_second:?}");
}
