//! A deterministic incident simulator: the real `alarm-fanout` handler and the real notification
//! pipeline (routing, claims, locks, the incident state machine, the retry policy) over the
//! in-memory ledger and the fake services, on a virtual clock.
//!
//! What it models, per seed:
//! - CloudWatch: 1 to 6 alarms, each going through 1 to 10 state changes (ALARM, OK,
//!   INSUFFICIENT_DATA), seconds to an hour apart.
//! - EventBridge: each state change delivered after 0 to 120 s, now and then 15 minutes late (so
//!   reordered), now and then twice (as often as not within seconds); a delivery due within 30 s
//!   of another now and then runs concurrently with it, their calls interleaved.
//! - Lambda: a failed invocation is retried twice (one and two minutes later), then goes to the
//!   on-failure destination; now and then an invocation times out part-way (stopped wherever it
//!   is, its claims and locks left to their leases).
//! - The services (Slack's Web API, PagerDuty, Teams, SNS): random faults per call (429 with
//!   Retry-After, 5xx, a timeout before or after the call landed, Slack's `"ok": false` codes,
//!   `edit_window_closed`); in half the seeds a workspace edit window; in half, calls that take
//!   20 to 400 ms and land half-way.
//! - The ledger: throttled past the SDK's retries for minutes at a time; incident records lost
//!   (expired, or deleted) now and then.
//! - The route's `INSUFFICIENT_DATA` policy: `update` (default) or `open`.
//!
//! The invariants, checked at the end:
//! - no transition is lost: one whose invocation succeeded landed at every message-per-phase
//!   destination; the others are in the on-failure destination;
//! - copies stay within the bound: at most two of a transition at a destination, and a second
//!   only after a call whose outcome was unknown (an answer lost, or an invocation stopped
//!   part-way);
//! - one PagerDuty alert per source: resolved when the source's last change is a delivered OK,
//!   open when it is a delivered ALARM;
//! - the Slack message each incident follows (its record's `ts`) shows the source's latest
//!   delivered state (an OK, an ALARM, or an INSUFFICIENT_DATA that followed an ALARM), when every
//!   change of it was delivered; a later message of the source exists only after a post whose
//!   outcome was unknown (the copy the bound allows).
//!
//! Not held to the last two: a source that, after its records were lost, got an event older than
//! one it had before (the documented limit: it cannot tell late from new); counted.

use alarm_fanout::Handler;
use fleetguard::notify::destinations::fake::FakeServices;
use fleetguard::notify::ledger::{LedgerFault, MemoryLedger};
use fleetguard::notify::{Destination, Notifier, Rules};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const T0: i64 = 1_800_000_000;
type Rng = rand_pcg::Pcg64Mcg;
type Fanout = Handler<Notifier<MemoryLedger, FakeServices>>;

const TEAMS: &str = "teams:teams";
const SNS: &str = "sns:arn:aws:sns:eu-west-1:482917350264:alarms";

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub transitions: u64,
    pub invocations: u64,
    pub failed_invocations: u64,
    pub dropped_to_dlq: u64,
    pub concurrent: u64,
    pub duplicates: u64,
    pub unknown_outcomes: u64,
    pub second_copies: u64,
    pub slack_messages: u64,
    pub pagerduty_incidents: u64,
    pub records_lost: u64,
    pub timed_out: u64,
    /// Sources not held to their latest state: a late event after their records were lost.
    pub unchecked_after_loss: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.transitions += o.transitions;
        self.invocations += o.invocations;
        self.failed_invocations += o.failed_invocations;
        self.dropped_to_dlq += o.dropped_to_dlq;
        self.concurrent += o.concurrent;
        self.duplicates += o.duplicates;
        self.unknown_outcomes += o.unknown_outcomes;
        self.second_copies += o.second_copies;
        self.slack_messages += o.slack_messages;
        self.pagerduty_incidents += o.pagerduty_incidents;
        self.records_lost += o.records_lost;
        self.timed_out += o.timed_out;
        self.unchecked_after_loss += o.unchecked_after_loss;
    }
}

/// One state change of one alarm.
#[derive(Debug, Clone)]
struct Change {
    source: usize,
    state: &'static str,
    at: i64,
    event: Value,
    origin: String,
    delivered: bool,
    dropped: bool,
    /// An invocation of it was stopped part-way (what it sent may have landed unrecorded).
    stopped: bool,
    /// When it was first delivered (virtual time).
    delivered_at: Option<i64>,
    /// When it was first tried (virtual time): a failed try may have delivered part of it.
    tried_at: Option<i64>,
}

/// `t` as EventBridge (or, `cloudwatch`, CloudWatch's alarm history) writes times.
pub fn rfc(t: i64, cloudwatch: bool) -> String {
    let d = chrono::DateTime::from_timestamp(t, 0).unwrap();
    if cloudwatch {
        d.format("%Y-%m-%dT%H:%M:%S.000+0000").to_string()
    } else {
        d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// `base` (an alarm state change event) for alarm `name` entering `state` at `at` from `prev`.
pub fn alarm_event(
    base: &Value,
    name: &str,
    state: &str,
    prev: (&str, i64),
    at: i64,
    id: u64,
) -> Value {
    let mut e = base.clone();
    e["id"] = json!(format!("00000000-0000-4000-8000-{id:012}"));
    e["time"] = json!(rfc(at, false));
    e["resources"] = json!([format!(
        "arn:aws:cloudwatch:eu-west-1:482917350264:alarm:{name}"
    )]);
    e["detail"]["alarmName"] = json!(name);
    e["detail"]["state"]["value"] = json!(state);
    e["detail"]["state"]["timestamp"] = json!(rfc(at, true));
    e["detail"]["previousState"]["value"] = json!(prev.0);
    e["detail"]["previousState"]["timestamp"] = json!(rfc(prev.1, true));
    e
}

/// The dedupe key the function gives a state change (the fakes' `origin`).
pub fn origin_of(event: &Value) -> String {
    match fleetguard::parse_value(event).unwrap().detail {
        fleetguard::Detail::AlarmStateChange(a) => alarm_fanout::render::render(&a).dedupe_key,
        other => panic!("not an alarm: {other:?}"),
    }
}

/// A delivery waiting in EventBridge or Lambda's retry queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: i64,
    seq: u64,
    change: usize,
    attempt: u8,
}

pub async fn run(seed: u64) -> Result<Stats, Vec<String>> {
    let mut rng = Rng::seed_from_u64(seed);
    // The virtual clock: the time of the delivery being served, plus the (tokio, paused) time
    // spent inside it, so that a lease runs out while an invocation waits.
    let clock = Arc::new(AtomicI64::new(T0));
    let since = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
    let now = {
        let (c, s) = (clock.clone(), since.clone());
        move || c.load(Ordering::SeqCst) + s.lock().unwrap().elapsed().as_secs() as i64
    };
    let services = FakeServices::new(now.clone());
    services.set_chaos(rng.random(), [0, 20, 80, 200][rng.random_range(0..4)]);
    if rng.random_bool(0.5) {
        services.set_edit_window(Some(rng.random_range(600..7200)));
    }
    // Calls take time (landing half-way), so a timeout can stop an invocation after a call
    // landed and before it was recorded.
    if rng.random_bool(0.5) {
        services.set_latency(Some(std::time::Duration::from_millis(
            rng.random_range(20..400),
        )));
    }
    // DynamoDB's latency, 1 to 15 ms each way: concurrent invocations interleave between their
    // reads and writes (an instant ledger would hide every race between them).
    let latency = std::sync::Mutex::new(Rng::seed_from_u64(seed ^ 0x5eed));
    let ledger = MemoryLedger::table(now).with_latency(move || {
        std::time::Duration::from_millis(latency.lock().unwrap().random_range(1..=15))
    });
    let policy = if rng.random_bool(0.25) {
        "open"
    } else {
        "update"
    };
    let rules = Rules::parse(
        &json!([{"default_destinations": true, "insufficient_data": policy,
                 "mention": "<!here>"}])
        .to_string(),
    )
    .unwrap();
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
            topic_arn: "arn:aws:sns:eu-west-1:482917350264:alarms".into(),
        },
    ];
    let lookup = fleetguard::config::lookup_in(&[]);
    let handler: Fanout = Handler {
        common: fleetguard::config::CommonConfig::from_lookup(&lookup).unwrap(),
        alarms: alarm_fanout::config::AlarmConfig::from_lookup(lookup).unwrap(),
        notifier: Notifier::with(rules, defaults, ledger.clone(), services.clone()),
    };

    // The alarms' histories.
    let base = fleetguard::testing::sample("alarms/metric.json");
    let mut changes = Vec::new();
    let mut id = 0;
    for source in 0..rng.random_range(1..=6usize) {
        let name = format!("sim-{seed}-{source}");
        let (mut prev, mut t) = ("OK", T0 + rng.random_range(0..600));
        for _ in 0..rng.random_range(1..=10) {
            let next = *["ALARM", "OK", "INSUFFICIENT_DATA"]
                .iter()
                .filter(|s| **s != prev)
                .nth(rng.random_range(0..2))
                .unwrap();
            let at = t + rng.random_range(30..3600);
            id += 1;
            let event = alarm_event(&base, &name, next, (prev, t), at, id);
            changes.push(Change {
                source,
                state: next,
                at,
                origin: origin_of(&event),
                event,
                delivered: false,
                dropped: false,
                stopped: false,
                delivered_at: None,
                tried_at: None,
            });
            (prev, t) = (next, at);
        }
    }
    let sources = changes.iter().map(|c| c.source).max().unwrap_or(0) + 1;
    let mut stats = Stats {
        transitions: changes.len() as u64,
        ..Stats::default()
    };

    // EventBridge: late, reordered, duplicated deliveries.
    let mut queue = BTreeSet::new();
    let mut seq = 0u64;
    for (i, c) in changes.iter().enumerate() {
        let copies = if rng.random_bool(0.15) { 2 } else { 1 };
        stats.duplicates += copies - 1;
        for _ in 0..copies {
            let late = if rng.random_bool(0.1) { 900 } else { 120 };
            seq += 1;
            // A duplicate comes with its original as often as not (EventBridge's at-least-once).
            let delay = match (copies, rng.random_bool(0.5)) {
                (2, true) => rng.random_range(0..=3),
                _ => rng.random_range(0..=late),
            };
            queue.insert(Delivery {
                at: c.at + delay,
                seq,
                change: i,
                attempt: 0,
            });
        }
    }
    // The ledger throttled for a few minutes now and then.
    let end = changes.iter().map(|c| c.at).max().unwrap_or(T0) + 1200;
    let outages: Vec<(i64, i64)> = (0..rng.random_range(0..3))
        .map(|_| {
            let from = rng.random_range(T0..end);
            (from, from + rng.random_range(30..300))
        })
        .collect();

    let mut losses = Vec::new();
    while let Some(first) = queue.pop_first() {
        clock.store(first.at, Ordering::SeqCst);
        *since.lock().unwrap() = tokio::time::Instant::now();
        let throttled = outages.iter().any(|(a, b)| (*a..*b).contains(&first.at));
        ledger.set_fault(throttled.then_some(LedgerFault::Throttled));
        // Now and then an incident's records are lost (TTL, a failed save, a clean-up).
        if rng.random_bool(0.02) {
            losses.push(first.at);
            for k in ledger
                .keys()
                .into_iter()
                .filter(|k| k.starts_with("incident|"))
            {
                ledger.remove(&k);
                stats.records_lost += 1;
            }
            if std::env::var_os("SIM_TRACE").is_some() {
                println!("t+{}: incident records lost", first.at - T0);
            }
        }
        // Now and then the next delivery runs at the same time, its calls interleaved.
        let mut batch = vec![first];
        if rng.random_bool(0.3)
            && let Some(second) = queue.first().copied()
            && second.at - first.at <= 30
        {
            queue.remove(&second);
            stats.concurrent += 1;
            batch.push(second);
        }
        // Now and then an invocation times out part-way (Lambda stops it wherever it is).
        let limit = rng
            .random_bool(0.05)
            .then(|| std::time::Duration::from_millis(rng.random_range(0..3000)));
        if limit.is_some() {
            stats.timed_out += 1;
        }
        let results = futures_join(&handler, &changes, &batch, limit).await;
        if std::env::var_os("SIM_TRACE").is_some() {
            for (d, (ok, _)) in batch.iter().zip(&results) {
                let c = &changes[d.change];
                println!(
                    "t+{} source {} {} of t+{} (attempt {}){}{}: {}",
                    d.at - T0,
                    c.source,
                    c.state,
                    c.at - T0,
                    d.attempt,
                    if throttled { ", ledger throttled" } else { "" },
                    if batch.len() > 1 { ", concurrent" } else { "" },
                    if *ok { "ok" } else { "failed" }
                );
            }
        }
        for (d, (ok, stopped)) in batch.iter().zip(results) {
            stats.invocations += 1;
            changes[d.change].stopped |= stopped;
            changes[d.change].tried_at.get_or_insert(d.at);
            if ok {
                let c = &mut changes[d.change];
                c.delivered = true;
                c.delivered_at.get_or_insert(first.at);
                continue;
            }
            stats.failed_invocations += 1;
            if d.attempt < 2 {
                seq += 1;
                queue.insert(Delivery {
                    at: clock.load(Ordering::SeqCst) + 60 * (d.attempt as i64 + 1),
                    seq,
                    change: d.change,
                    attempt: d.attempt + 1,
                });
            } else if !changes[d.change].delivered {
                changes[d.change].dropped = true;
                stats.dropped_to_dlq += 1;
            }
        }
    }
    ledger.set_fault(None);
    if std::env::var_os("SIM_TRACE").is_some() {
        for c in services.seen() {
            let what = c.body["event_action"]
                .as_str()
                .or(c.body["thread_ts"].as_str().map(|_| "reply"))
                .unwrap_or("");
            println!(
                "call {} {} {what} origin {} landed {} unknown {}",
                c.destination,
                c.method.as_str(),
                c.origin
                    .rsplit_once("|alarm:")
                    .map_or(c.origin.as_str(), |(_, o)| o),
                c.landed,
                c.unknown
            );
        }
    }
    // The message each incident's Slack record follows (none where the record was lost).
    let mut tracked = BTreeMap::new();
    for k in ledger.keys() {
        if k.starts_with("incident|")
            && k.ends_with("|slack-channel:#ops")
            && let Some(item) = fleetguard::notify::ledger::Ledger::get(&ledger, &k)
                .await
                .unwrap()
            && let Some(ts) = item.get_s("ts")
        {
            tracked.insert(k, ts.to_owned());
        }
    }
    let violations = check(
        &services, &changes, sources, policy, &tracked, &losses, &mut stats,
    );
    if violations.is_empty() {
        Ok(stats)
    } else {
        Err(violations)
    }
}

/// Run a batch of deliveries at once, each stopped after `limit` when given: (succeeded,
/// stopped) for each.
async fn futures_join(
    handler: &Fanout,
    changes: &[Change],
    batch: &[Delivery],
    limit: Option<std::time::Duration>,
) -> Vec<(bool, bool)> {
    let runs = batch.iter().map(|d| async move {
        let run = fleetguard::testing::invoke(handler, &changes[d.change].event);
        match limit {
            Some(l) => match tokio::time::timeout(l, run).await {
                Ok(r) => (r.is_ok(), false),
                Err(_) => (false, true),
            },
            None => (run.await.is_ok(), false),
        }
    });
    futures_util::future::join_all(runs).await
}

#[path = "incident_checks.rs"]
mod checks;
use checks::check;
