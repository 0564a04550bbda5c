//! A deterministic storm simulator: the real `alarm-fanout` handler and the real notification
//! pipeline (storm detection, the digest's ledger items and flusher lease, the rate slots, the
//! retry policy) over the in-memory ledger and the fake services, on a virtual clock.
//!
//! What it models, per seed:
//! - CloudWatch: 60 to 400 alarms on one route opening within two minutes (an Availability Zone
//!   failing); a third flap (OK, then ALARM again); some pass through INSUFFICIENT_DATA; all
//!   recover within 15 minutes, in half the seeds all within seconds (the dependency back). The
//!   route's threshold is 5 to 20 sources.
//! - EventBridge: each change delivered 0 to 20 s late, some twice; deliveries due in the same
//!   second run as concurrent invocations (up to 10 to 50 at once), their calls interleaved.
//! - Lambda: a failed invocation is retried twice (one and two minutes later), then goes to the
//!   on-failure destination, which the operator redrives at the end; now and then an invocation
//!   is stopped part-way (a timeout), its lease left to run out.
//! - The services: random faults per call (429 with Retry-After, 5xx, an answer lost).
//!
//! The invariants, checked at the end:
//! - Slack's paces are kept: `chat.postMessage` to the channel at most once a second,
//!   `chat.update` at most once a second (Tier 3); PagerDuty's routing key at most twice;
//! - one digest per storm: one Slack digest message per storm (another only after a post whose
//!   answer was lost), one PagerDuty alert per storm;
//! - every member's last change is its state in the digest, and the digest each storm's record
//!   follows shows the storm over, counting every member, once all recovered;
//! - no transition lost: every change whose invocation succeeded reached SNS, and every change
//!   was delivered once the on-failure destination was redriven.

use alarm_fanout::Handler;
use fleetguard::notify::destinations::fake::FakeServices;
use fleetguard::notify::ledger::{Ledger, MemoryLedger};
use fleetguard::notify::services::Method;
use fleetguard::notify::{Deadline, Destination, Notifier, Rules};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const T0: i64 = 1_800_000_000;
type Rng = rand_pcg::Pcg64Mcg;
type Fanout = Handler<Notifier<MemoryLedger, FakeServices>>;
const SNS: &str = "sns:arn:aws:sns:eu-west-1:482917350264:alarms";
const CHANNEL: &str = "slack-channel:#ops";

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub sources: u64,
    pub transitions: u64,
    pub invocations: u64,
    pub failed_invocations: u64,
    pub redriven: u64,
    pub storms: u64,
    pub members: u64,
    pub slack_messages: u64,
    pub slack_calls: u64,
    pub pagerduty_alerts: u64,
    pub teams_cards: u64,
    pub peak_concurrency: u64,
    pub unknown_outcomes: u64,
    pub stopped: u64,
    pub kept_in_dlq: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.sources += o.sources;
        self.transitions += o.transitions;
        self.invocations += o.invocations;
        self.failed_invocations += o.failed_invocations;
        self.redriven += o.redriven;
        self.storms += o.storms;
        self.members += o.members;
        self.slack_messages += o.slack_messages;
        self.slack_calls += o.slack_calls;
        self.pagerduty_alerts += o.pagerduty_alerts;
        self.teams_cards += o.teams_cards;
        self.peak_concurrency = self.peak_concurrency.max(o.peak_concurrency);
        self.unknown_outcomes += o.unknown_outcomes;
        self.stopped += o.stopped;
        self.kept_in_dlq += o.kept_in_dlq;
    }
}

struct Change {
    source: usize,
    state: &'static str,
    at: i64,
    event: Value,
    origin: String,
    delivered: bool,
}

pub async fn run(seed: u64) -> Result<Stats, Vec<String>> {
    let mut rng = Rng::seed_from_u64(seed);
    // The virtual clock (ms): never back, moved on by (paused) tokio time spent inside
    // invocations.
    let clock = Arc::new(AtomicI64::new(T0 * 1000));
    let since = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
    let now_ms = {
        let (c, s) = (clock.clone(), since.clone());
        move || c.load(Ordering::SeqCst) + s.lock().unwrap().elapsed().as_millis() as i64
    };
    let now = {
        let now_ms = now_ms.clone();
        move || now_ms().div_euclid(1000)
    };
    let services = FakeServices::new(now.clone());
    services.set_chaos(rng.random(), [0, 10, 40][rng.random_range(0..3)]);
    // DynamoDB's latency, 1 to 15 ms each way and now and then (a retry, a slow partition) up
    // to 250: concurrent invocations interleave between their reads and writes (an instant
    // ledger would hide every race between them).
    let latency = std::sync::Mutex::new(Rng::seed_from_u64(seed ^ 0x5eed));
    let ledger = MemoryLedger::table_ms(now_ms.clone()).with_latency(move || {
        let mut rng = latency.lock().unwrap();
        let ms = if rng.random_bool(0.05) {
            rng.random_range(20..=250)
        } else {
            rng.random_range(1..=15)
        };
        Duration::from_millis(ms)
    });
    let threshold = rng.random_range(5..=20);
    let rules = Rules::parse(
        &json!([{"name": "az-failure", "default_destinations": true,
                 "storm": {"sources": threshold}}])
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
            topic_arn: SNS.trim_start_matches("sns:").into(),
        },
    ];
    let lookup = fleetguard::config::lookup_in(&[]);
    let handler: Fanout = Handler {
        common: fleetguard::config::CommonConfig::from_lookup(&lookup).unwrap(),
        alarms: alarm_fanout::config::AlarmConfig::from_lookup(lookup).unwrap(),
        notifier: Notifier::with(rules, defaults, ledger.clone(), services.clone()),
    };

    // The alarms' histories: open within two minutes, flap, recover within 15.
    let base = fleetguard::testing::sample("alarms/metric.json");
    let sources = rng.random_range(60..=400usize);
    let all_at_once = rng
        .random_bool(0.5)
        .then(|| T0 + rng.random_range(400..800));
    let mut changes = Vec::new();
    let mut id = 0;
    for source in 0..sources {
        let name = format!("storm-{seed}-{source:03}");
        let opened = T0 + rng.random_range(0..120);
        let mut history = vec![("ALARM", opened)];
        if rng.random_bool(0.15) {
            history.push(("INSUFFICIENT_DATA", opened + rng.random_range(10..60)));
        }
        if rng.random_bool(0.3) {
            let t = history.last().unwrap().1 + rng.random_range(20..200);
            history.push(("OK", t));
            history.push(("ALARM", t + rng.random_range(5..120)));
        }
        let last = history.last().unwrap().1;
        // Half the storms end at once (the dependency back: every alarm recovers within
        // seconds, the last changes concurrent); the others trickle out.
        let recovered = match all_at_once {
            Some(t) => t.max(last + 1) + rng.random_range(0..5),
            None => last + rng.random_range(60..700),
        };
        history.push(("OK", recovered));
        let mut prev = ("OK", opened - 600);
        for (state, at) in history {
            id += 1;
            let event = crate::incident_sim::alarm_event(&base, &name, state, prev, at, id);
            changes.push(Change {
                source,
                state,
                at,
                origin: crate::incident_sim::origin_of(&event),
                event,
                delivered: false,
            });
            prev = (state, at);
        }
    }
    let mut stats = Stats {
        sources: sources as u64,
        transitions: changes.len() as u64,
        ..Stats::default()
    };

    // Deliveries: (due, seq, change, attempt).
    let mut queue = BTreeSet::new();
    let mut seq = 0u64;
    for (i, c) in changes.iter().enumerate() {
        let copies = if rng.random_bool(0.1) { 2 } else { 1 };
        for _ in 0..copies {
            seq += 1;
            queue.insert((c.at + rng.random_range(0..=20), seq, i, 0u8));
        }
    }
    let concurrency = rng.random_range(10..=50usize);
    let mut dlq = Vec::new();
    while let Some(first) = queue.pop_first() {
        let at = first.0.max(now());
        clock.store((at * 1000).max(now_ms()), Ordering::SeqCst);
        *since.lock().unwrap() = tokio::time::Instant::now();
        // Everything due by now runs at once, up to the concurrency.
        let mut batch = vec![first];
        while batch.len() < concurrency
            && let Some(next) = queue.first().copied()
            && next.0 <= at
        {
            queue.remove(&next);
            batch.push(next);
        }
        stats.peak_concurrency = stats.peak_concurrency.max(batch.len() as u64);
        let stop: Vec<Option<Duration>> = batch
            .iter()
            .map(|_| {
                rng.random_bool(0.02)
                    .then(|| Duration::from_millis(rng.random_range(0..3000)))
            })
            .collect();
        stats.stopped += stop.iter().filter(|s| s.is_some()).count() as u64;
        // Within a second, invocations start a little apart, so that one starts while another
        // is part-way through (a flusher holding the digest's lease).
        let starts: Vec<Duration> = batch
            .iter()
            .map(|_| Duration::from_millis(rng.random_range(0..2500)))
            .collect();
        let results = invoke_all(&handler, &changes, &batch, &stop, &starts).await;
        for ((_, _, change, attempt), ok) in batch.into_iter().zip(results) {
            stats.invocations += 1;
            if ok {
                changes[change].delivered = true;
                continue;
            }
            stats.failed_invocations += 1;
            if attempt < 2 {
                seq += 1;
                queue.insert((now() + 60 * (attempt as i64 + 1), seq, change, attempt + 1));
            } else {
                dlq.push(change);
            }
        }
    }
    // The operator redrives the on-failure destination once it is quiet.
    clock.store(now_ms() + 600_000, Ordering::SeqCst);
    *since.lock().unwrap() = tokio::time::Instant::now();
    services.set_chaos(0, 0);
    for change in dlq {
        stats.redriven += 1;
        let ok = invoke_all(
            &handler,
            &changes,
            &[(0, 0, change, 3)],
            &[None],
            &[Duration::ZERO],
        )
        .await[0];
        changes[change].delivered |= ok;
    }
    check(&services, &ledger, &changes, sources, &mut stats).await
}

async fn invoke_all(
    handler: &Fanout,
    changes: &[Change],
    batch: &[(i64, u64, usize, u8)],
    stop: &[Option<Duration>],
    starts: &[Duration],
) -> Vec<bool> {
    let runs = batch
        .iter()
        .zip(stop)
        .zip(starts)
        .map(|((d, limit), start)| async move {
            tokio::time::sleep(*start).await;
            let deadline = Deadline::after(Duration::from_secs(30));
            let run = fleetguard::serve::handle(handler, &changes[d.2].event, deadline);
            let out = match limit {
                Some(l) => tokio::time::timeout(*l, run)
                    .await
                    .map_err(|_| "stopped part-way (timeout)".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string())),
                None => run.await.map_err(|e| e.to_string()),
            };
            if let Err(e) = &out
                && std::env::var_os("SIM_TRACE").is_some()
            {
                let c = &changes[d.2];
                println!(
                    "source {} {} at t+{} (attempt {}): {e}",
                    c.source,
                    c.state,
                    c.at - T0,
                    d.3
                );
            }
            out.is_ok()
        });
    futures_util::future::join_all(runs).await
}

#[path = "storm_checks.rs"]
mod checks;
use checks::check;
