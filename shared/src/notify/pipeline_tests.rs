//! The pipeline end to end over the in-memory ledger and the fake services: the breakages of
//! issue 24, each as a test that failed before its fix.

use super::destinations::fake::{FakeServices, Fault};
use super::ledger::{LedgerFault, MemoryLedger};
use super::services::Method;
use super::{
    Deadline, Destination, Notification, NotificationKind, Notifier, Phase, Rules, Severity,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

struct World {
    n: Notifier<MemoryLedger, FakeServices>,
    clock: Arc<AtomicI64>,
}

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// The test's clock: the time set by [`World::at`] plus (paused) tokio time since, so that
/// waits (Retry-After, a destination's pace) move it on.
fn clock_fn(clock: &Arc<AtomicI64>) -> impl Fn() -> i64 + Send + Sync + 'static {
    let (c, start) = (clock.clone(), tokio::time::Instant::now());
    move || c.load(Ordering::SeqCst) + start.elapsed().as_secs() as i64
}

fn world_with(routes: &str) -> World {
    let clock = Arc::new(AtomicI64::new(T0));
    let (c1, c2) = (clock_fn(&clock), clock_fn(&clock));
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
    ];
    let rules = if routes.is_empty() {
        Rules::default()
    } else {
        Rules::parse(routes).unwrap()
    };
    World {
        n: Notifier::with(
            rules,
            defaults,
            MemoryLedger::table(c1),
            FakeServices::new(c2),
        ),
        clock,
    }
}

fn world() -> World {
    world_with("")
}

/// The alarm `name` entering `state` at `at` seconds after T0.
fn alarm(name: &str, state: &str, at: i64) -> Notification {
    let phase = match state {
        "ALARM" => Phase::Opened,
        "OK" => Phase::Resolved,
        _ => Phase::Updated,
    };
    let time = chrono::DateTime::from_timestamp(T0 + at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut n = Notification::new(
        NotificationKind::Alarm,
        Severity::Critical,
        format!("{name} is {state}"),
        format!("alarm|{name}|{state}|{time}"),
    )
    .incident(format!("alarm|{name}"), phase);
    n.state = Some(state.into());
    n.source.event_time = Some(time);
    n
}

impl World {
    async fn send(&self, n: Notification) -> Result<super::DeliveryReport, super::DeliveryError> {
        self.n
            .send(n, Deadline::after(Duration::from_secs(60)))
            .await
    }

    fn at(&self, secs: i64) {
        self.clock.store(T0 + secs, Ordering::SeqCst);
    }

    fn fakes(&self) -> &FakeServices {
        self.n.services()
    }
}

#[tokio::test(start_paused = true)]
async fn insufficient_data_after_ok_pages_nobody_and_a_later_alarm_is_a_new_message() {
    let w = world_with(r#"[{"default_destinations": true, "mention": "<!here>"}]"#);
    w.send(alarm("cpu", "ALARM", 0)).await.unwrap();
    w.send(alarm("cpu", "OK", 60)).await.unwrap();
    w.send(alarm("cpu", "INSUFFICIENT_DATA", 120))
        .await
        .unwrap();
    let alerts = w.fakes().alerts();
    assert_eq!(
        alerts[0].events,
        ["trigger", "resolve"],
        "no trigger on the resolved key"
    );
    assert_eq!(alerts[0].status, "resolved");
    let messages = w.fakes().slack_messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].body.to_string().contains("#2EB67D"),
        "still shows the resolution"
    );
    // The alarm fires again later: a new message, with the route's mention, and a new page.
    w.send(alarm("cpu", "ALARM", 600)).await.unwrap();
    let messages = w.fakes().slack_messages();
    assert_eq!(messages.len(), 2, "a new message for a new incident");
    assert!(
        messages[1].text.starts_with("<!here>"),
        "{}",
        messages[1].text
    );
    assert_eq!(w.fakes().alerts()[0].incidents, 2);
    // INSUFFICIENT_DATA of an open incident updates its message, pages nobody.
    w.send(alarm("cpu", "INSUFFICIENT_DATA", 660))
        .await
        .unwrap();
    assert_eq!(w.fakes().slack_messages()[1].updates, 1);
    assert_eq!(
        w.fakes().alerts()[0].events,
        ["trigger", "resolve", "trigger"]
    );
}

#[tokio::test(start_paused = true)]
async fn insufficient_data_of_an_alarm_never_opened_posts_no_incident_message() {
    let w = world();
    w.send(alarm("cpu", "INSUFFICIENT_DATA", 0)).await.unwrap();
    assert!(
        w.fakes().slack_messages().is_empty(),
        "nothing open to update"
    );
    assert!(w.fakes().alerts().is_empty());
    assert_eq!(
        w.fakes().landed("teams:teams").len(),
        1,
        "message-per-phase still told"
    );
}

#[tokio::test(start_paused = true)]
async fn insufficient_data_can_open_an_incident_where_the_route_says_so() {
    let w = world_with(r#"[{"default_destinations": true, "insufficient_data": "open"}]"#);
    w.send(alarm("cpu", "INSUFFICIENT_DATA", 0)).await.unwrap();
    assert_eq!(w.fakes().alerts()[0].events, ["trigger"]);
    let w = world_with(r#"[{"default_destinations": true, "insufficient_data": "ignore"}]"#);
    let r = w.send(alarm("cpu", "INSUFFICIENT_DATA", 0)).await.unwrap();
    assert!(r.route.dropped && w.fakes().seen().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_resolve_needs_no_record() {
    let w = world();
    w.send(alarm("cpu", "ALARM", 0)).await.unwrap();
    // The records are gone (TTL, a failed save, someone cleaning the table).
    for k in w.n.ledger().keys() {
        if k.starts_with("incident|") {
            w.n.ledger().remove(&k);
        }
    }
    w.send(alarm("cpu", "OK", 60)).await.unwrap();
    assert_eq!(w.fakes().alerts()[0].status, "resolved");
}

#[tokio::test(start_paused = true)]
async fn a_message_past_slacks_edit_window_is_replaced_and_linked() {
    let w = world();
    w.fakes().set_edit_window(Some(3_600));
    w.send(alarm("cpu", "ALARM", 0)).await.unwrap();
    w.at(7_200);
    w.send(alarm("cpu", "OK", 7_200)).await.unwrap();
    let m = w.fakes().slack_messages();
    assert_eq!(m.len(), 2, "a new message: {m:#?}");
    assert!(m[1].body.to_string().contains("Earlier message"));
    assert!(
        m[0].replies
            .iter()
            .any(|r| r.contains("continues in a new message"))
    );
    // The incident follows its new message from then on.
    w.at(7_300);
    w.send(alarm("cpu", "ALARM", 7_300)).await.unwrap();
    assert_eq!(
        w.fakes().slack_messages().len(),
        3,
        "reopened: a new message again"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_is_sent_at_most_once_more() {
    let w = world();
    let a = alarm("cpu", "ALARM", 0);
    // The post landed, its answer was lost: this invocation fails, it does not post again.
    w.fakes()
        .fail_next(Some(Method::ChatPostMessage), Fault::LandedThenTimeout);
    let e = w.send(a.clone()).await.unwrap_err();
    assert!(e.to_string().contains("outcome unknown"), "{e}");
    assert_eq!(w.fakes().slack_messages().len(), 1);
    // Lambda's retry may post a second copy, and only that one.
    w.send(a.clone()).await.unwrap();
    assert_eq!(w.fakes().slack_messages().len(), 2);
    w.send(a).await.unwrap();
    assert_eq!(w.fakes().slack_messages().len(), 2);

    // Twice unknown: never a third attempt; the error names it for the on-failure queue.
    let b = alarm("disk", "ALARM", 0);
    for _ in 0..2 {
        w.fakes()
            .fail_next(Some(Method::Webhook), Fault::LostThenTimeout);
        assert!(w.send(b.clone()).await.is_err());
    }
    let e = w.send(b).await.unwrap_err();
    assert!(e.to_string().contains("not sent a third time"), "{e}");
    assert!(e.is_final(), "no retry can deliver it: {e:?}");
    assert_eq!(
        w.fakes()
            .seen()
            .iter()
            .filter(|s| s.method == Method::Webhook)
            .count(),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_of_an_idempotent_call_is_retried_at_once() {
    let w = world();
    w.fakes()
        .fail_next(Some(Method::Enqueue), Fault::LandedThenTimeout);
    w.send(alarm("cpu", "ALARM", 0)).await.unwrap();
    assert_eq!(
        w.fakes().alerts()[0].incidents,
        1,
        "PagerDuty folds by dedup_key"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_claim_nothing_is_sent() {
    let w = world();
    w.n.ledger().set_fault(Some(LedgerFault::Throttled));
    let e = w.send(alarm("cpu", "ALARM", 0)).await.unwrap_err();
    assert!(e.to_string().contains("cannot claim"), "{e}");
    assert!(w.fakes().seen().is_empty(), "nothing sent unclaimed");
    w.n.ledger().set_fault(None);
    w.send(alarm("cpu", "ALARM", 0)).await.unwrap();
    assert_eq!(w.fakes().slack_messages().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_phases_at_once_wait_for_each_other_and_both_land() {
    let w = world();
    let (a, b) = tokio::join!(
        w.send(alarm("cpu", "ALARM", 0)),
        w.send(alarm("cpu", "OK", 60))
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(w.fakes().slack_messages().len(), 1);
    let alert = &w.fakes().alerts()[0];
    assert_eq!(alert.status, "resolved", "{alert:?}");
}

#[tokio::test(start_paused = true)]
async fn a_late_ok_of_an_earlier_incident_never_resolves_the_current_one() {
    let w = world();
    w.send(alarm("cpu", "ALARM", 0)).await.unwrap();
    w.send(alarm("cpu", "ALARM", 600)).await.unwrap(); // a duplicate opening: same incident
    w.send(alarm("cpu", "OK", 300)).await.unwrap(); // older than what is shown
    assert_eq!(w.fakes().alerts()[0].status, "triggered");
    let m = &w.fakes().slack_messages()[0];
    assert!(
        m.replies.iter().any(|r| r.contains("delivered late")),
        "{m:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_claim_held_by_an_invocation_that_died_is_not_a_delivery() {
    // Found by the fleet simulator: a sweep timed out mid-send, holding its claim; the next
    // sweep took "being delivered" for delivered and dropped the stashed "drained" message.
    let w = world();
    let a = alarm("cpu", "ALARM", 0);
    let book = super::book::Book::new(w.n.ledger().clone());
    let key = super::deliver::dedupe_key(&a.dedupe_key, "teams:teams");
    let dying = Deadline::after(Duration::from_secs(60));
    assert!(matches!(
        book.claim(&key, a.dedupe_ttl, dying).await.unwrap(),
        super::book::Claim::Won { .. }
    ));
    let e = w.send(a.clone()).await.unwrap_err();
    assert!(e.to_string().contains("holds this message's claim"), "{e}");
    assert!(w.fakes().landed("teams:teams").is_empty());
    // Its lease runs out (the holder's deadline and 5 s): the retry delivers.
    w.at(70);
    w.send(a).await.unwrap();
    assert_eq!(w.fakes().landed("teams:teams").len(), 1);
}
