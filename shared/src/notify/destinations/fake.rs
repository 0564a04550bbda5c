//! The fake destination services behind the destination port, for handler tests and the
//! simulators: each service's own fake (`slack.rs`, `pagerduty.rs`; SNS and webhooks keep what
//! they were sent), composed here with the faults. Each answers as its service documents, from its own state: Slack's Web API keeps
//! messages (an update needs the channel's ID and an existing `ts`, and the workspace's edit
//! window), PagerDuty keeps alerts by `dedup_key` (a trigger on a resolved key opens a new
//! incident), SNS and webhooks keep what they were sent. Faults are injected per method, by
//! script or at random: 429 with `Retry-After`, 5xx, a timeout before or after the call landed,
//! Slack's `"ok": false` codes, a 400.

use super::pagerduty::{Alert, FakeEvents};
use super::slack::{FakeWorkspace, SlackMessage};
use crate::notify::services::{Call, Failure, Method, Reply, Services};
use crate::notify::{Deadline, Destination};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429, with `Retry-After` seconds when given.
    Throttled(Option<u64>),
    /// 500: nothing done.
    ServerError,
    /// The call landed, then the answer was lost (the client's timeout).
    LandedThenTimeout,
    /// The request left and nothing landed; the client cannot tell which.
    LostThenTimeout,
    /// Slack's `"ok": false` with this code (HTTP 200): nothing done.
    Slack(&'static str),
    /// 400: refused.
    BadRequest,
}

/// One call as the fake saw it, in order, with what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// When, on the process-wide trace clock ([`tick`]) that `FakeAws` shares: AWS calls and
    /// messages in one order.
    pub tick: u64,
    pub destination: String,
    pub method: Method,
    pub body: Value,
    /// The transition it carries (the notification's dedupe key).
    pub origin: String,
    /// Whether the service acted on it.
    pub landed: bool,
    /// Whether the caller was left not knowing (a timeout, a lost answer).
    pub unknown: bool,
    /// The fake's clock when the call came (seconds since the epoch).
    pub at: i64,
    /// The service's refusal, when it refused (Slack's error code, an HTTP status).
    pub refused: Option<String>,
}

#[derive(Default)]
struct World {
    seen: Vec<Seen>,
    slack: FakeWorkspace,
    pagerduty: FakeEvents,
    script: Vec<(Option<Method>, Fault)>,
    /// Every call fails with a 500 (a destination down).
    down: bool,
    /// Random faults: a xorshift state and the chance of a fault per call, in per mille.
    chaos: Option<(u64, u32)>,
    /// Each call takes this long (tokio's time), landing half-way.
    latency: Option<Duration>,
}

/// Every destination service, faked.
#[derive(Clone)]
pub struct FakeServices {
    world: Arc<Mutex<World>>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for FakeServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeServices")
    }
}

impl Default for FakeServices {
    fn default() -> Self {
        Self::new(crate::time::now_epoch)
    }
}

impl FakeServices {
    pub fn new(clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self {
            world: Arc::default(),
            clock: Arc::new(clock),
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next call of `method` (any method when `None`) meets `fault`.
    pub fn fail_next(&self, method: Option<Method>, fault: Fault) {
        self.world().script.push((method, fault));
    }

    pub fn set_down(&self, down: bool) {
        self.world().down = down;
    }

    /// Random faults from `seed`, each call meeting one with `per_mille` / 1000 chance.
    pub fn set_chaos(&self, seed: u64, per_mille: u32) {
        self.world().chaos = (per_mille > 0).then_some((seed | 1, per_mille));
    }

    /// Every call takes `latency` (on tokio's clock), and lands half-way: an invocation stopped
    /// in the second half leaves it landed with nobody told.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.world().latency = latency;
    }

    /// Slack's edit window, in seconds (workspaces can limit how long a message stays editable).
    pub fn set_edit_window(&self, secs: Option<i64>) {
        self.world().slack.edit_window = secs;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.world().seen.clone()
    }

    pub fn slack_messages(&self) -> Vec<SlackMessage> {
        self.world().slack.messages.clone()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        self.world().pagerduty.alerts.values().cloned().collect()
    }

    /// What landed at a message-per-phase destination (SNS, webhooks), by destination id.
    pub fn landed(&self, destination: &str) -> Vec<Value> {
        self.world()
            .seen
            .iter()
            .filter(|s| s.landed && s.destination == destination)
            .map(|s| s.body.clone())
            .collect()
    }

    fn fault(w: &mut World, method: Method) -> Option<Fault> {
        if w.down {
            return Some(Fault::ServerError);
        }
        if let Some(i) = w
            .script
            .iter()
            .position(|(m, _)| m.is_none_or(|m| m == method))
        {
            return Some(w.script.remove(i).1);
        }
        let (state, per_mille) = w.chaos.as_mut()?;
        let mut next = || {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state
        };
        if (next() % 1000) as u32 >= *per_mille {
            return None;
        }
        Some(match next() % 6 {
            0 => Fault::Throttled(Some(next() % 3)),
            1 => Fault::ServerError,
            2 => Fault::LandedThenTimeout,
            3 => Fault::LostThenTimeout,
            4 if method == Method::ChatUpdate => Fault::Slack("edit_window_closed"),
            _ => Fault::Slack("service_unavailable"),
        })
    }
}

impl World {
    /// The service acting on a call; `Err` when it refuses it (as the service documents).
    fn act(&mut self, method: Method, body: &Value, now: i64) -> Result<Reply, Failure> {
        match method {
            Method::Publish | Method::Webhook => Ok(Reply::default()),
            Method::ChatPostMessage => self.slack.post_message(body, now),
            Method::ChatUpdate => self.slack.update(body, now),
            Method::Enqueue => self.pagerduty.enqueue(body),
        }
    }
}

impl Services for FakeServices {
    async fn call(
        &self,
        dest: &Destination,
        c: &Call,
        _deadline: Deadline,
    ) -> Result<Reply, Failure> {
        // Other invocations run between a request and its answer.
        tokio::task::yield_now().await;
        let latency = self.world().latency;
        if let Some(l) = latency {
            tokio::time::sleep(l / 2).await;
        }
        let out = self.act(dest, c);
        if let Some(l) = latency {
            tokio::time::sleep(l / 2).await;
        }
        out
    }

    fn forget(&self, _dest: &Destination) {}
}

/// The trace clock: every fake's event takes the next tick, so calls to AWS and messages can be
/// put in one order.
pub fn tick() -> u64 {
    static TRACE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    TRACE.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

impl FakeServices {
    fn act(&self, dest: &Destination, c: &Call) -> Result<Reply, Failure> {
        let now = (self.clock)();
        let mut w = self.world();
        let fault = Self::fault(&mut w, c.method);
        let mut seen = Seen {
            tick: tick(),
            destination: dest.id(),
            method: c.method,
            body: c.body.clone(),
            origin: c.origin.clone(),
            landed: false,
            unknown: false,
            at: now,
            refused: None,
        };
        let out = match fault {
            Some(Fault::Throttled(after)) => Err(Failure::Throttled {
                retry_after: after.map(Duration::from_secs),
                detail: "HTTP 429 rate_limited".into(),
            }),
            Some(Fault::ServerError) => Err(Failure::Transient("HTTP 500 server_error".into())),
            Some(Fault::LostThenTimeout) => Err(Failure::Unknown("operation timed out".into())),
            Some(Fault::Slack(code)) => Err(crate::notify::slack::check_ok(
                &json!({"ok": false, "error": code}).to_string(),
            )
            .unwrap_err()),
            Some(Fault::BadRequest) => Err(Failure::Refused {
                code: "HTTP 400".into(),
                detail: "invalid_payload".into(),
            }),
            Some(Fault::LandedThenTimeout) => {
                let acted = w.act(c.method, &c.body, now);
                seen.landed = acted.is_ok();
                Err(Failure::Unknown("operation timed out".into()))
            }
            None => {
                let acted = w.act(c.method, &c.body, now);
                seen.landed = acted.is_ok();
                acted
            }
        };
        seen.unknown = matches!(out, Err(Failure::Unknown(_)));
        if let Err(Failure::Refused { code, .. }) = &out {
            seen.refused = Some(code.clone());
        }
        w.seen.push(seen);
        out
    }
}
