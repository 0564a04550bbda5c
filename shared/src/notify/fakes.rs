//! Fakes of the destination services behind the destination port, for handler tests and the
//! simulators. Each answers as its service documents, from its own state: Slack's Web API keeps
//! messages (an update needs the channel's ID and an existing `ts`, and the workspace's edit
//! window), PagerDuty keeps alerts by `dedup_key` (a trigger on a resolved key opens a new
//! incident), SNS and webhooks keep what they were sent. Faults are injected per method, by
//! script or at random: 429 with `Retry-After`, 5xx, a timeout before or after the call landed,
//! Slack's `"ok": false` codes, a 400.

use super::services::{Call, Failure, Method, Reply, Services};
use super::{Deadline, Destination};
use serde_json::{Value, json};
use std::collections::BTreeMap;
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

#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub channel: String,
    pub ts: String,
    pub text: String,
    pub body: Value,
    pub posted_at: i64,
    pub updates: u32,
    pub replies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub dedup_key: String,
    pub status: &'static str,
    pub severity: String,
    /// Every event this key received, in order (`trigger`, `resolve`).
    pub events: Vec<String>,
    /// How many PagerDuty incidents this key opened (a trigger on a resolved key opens another).
    pub incidents: u32,
}

/// One call as the fake saw it, in order, with what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub destination: String,
    pub method: Method,
    pub body: Value,
    /// The transition it carries (the notification's dedupe key).
    pub origin: String,
    /// Whether the service acted on it.
    pub landed: bool,
    /// Whether the caller was left not knowing (a timeout, a lost answer).
    pub unknown: bool,
}

#[derive(Default)]
struct World {
    seen: Vec<Seen>,
    messages: Vec<SlackMessage>,
    alerts: BTreeMap<String, Alert>,
    seq: u64,
    script: Vec<(Option<Method>, Fault)>,
    /// Every call fails with a 500 (a destination down).
    down: bool,
    /// Random faults: a xorshift state and the chance of a fault per call, in per mille.
    chaos: Option<(u64, u32)>,
    edit_window: Option<i64>,
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
        self.world().edit_window = secs;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.world().seen.clone()
    }

    pub fn slack_messages(&self) -> Vec<SlackMessage> {
        self.world().messages.clone()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        self.world().alerts.values().cloned().collect()
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

fn slack_error(code: &str) -> Failure {
    super::slack::check_ok(&json!({"ok": false, "error": code}).to_string()).unwrap_err()
}

/// Slack turns a channel name into an ID (`#ops` → `C…`); IDs stay as they are.
fn channel_id(c: &str) -> String {
    if c.starts_with('C')
        && c.chars()
            .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
    {
        return c.to_owned();
    }
    format!("C{}", &super::digest(c)[..8].to_ascii_uppercase())
}

impl World {
    /// The service acting on a call; `Err` when it refuses it (as the service documents).
    fn act(&mut self, method: Method, body: &Value, now: i64) -> Result<Reply, Failure> {
        let s = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        match method {
            Method::Publish | Method::Webhook => Ok(Reply::default()),
            Method::ChatPostMessage => {
                let channel = s("channel");
                if channel.is_empty() {
                    return Err(slack_error("channel_not_found"));
                }
                if s("text").is_empty() && body.get("attachments").is_none() {
                    return Err(slack_error("no_text"));
                }
                let cid = channel_id(&channel);
                self.seq += 1;
                let ts = format!("{now}.{:06}", self.seq);
                if let Some(thread) = body["thread_ts"].as_str() {
                    let parent = self
                        .messages
                        .iter_mut()
                        .find(|m| m.channel == cid && m.ts == thread)
                        .ok_or_else(|| slack_error("thread_not_found"))?;
                    parent.replies.push(s("text"));
                } else {
                    self.messages.push(SlackMessage {
                        channel: cid.clone(),
                        ts: ts.clone(),
                        text: s("text"),
                        body: body.clone(),
                        posted_at: now,
                        updates: 0,
                        replies: Vec::new(),
                    });
                }
                Ok(Reply(json!({"ok": true, "channel": cid, "ts": ts})))
            }
            Method::ChatUpdate => {
                let (channel, ts) = (s("channel"), s("ts"));
                if !channel.starts_with('C') {
                    return Err(slack_error("channel_not_found"));
                }
                let window = self.edit_window;
                let m = self
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == channel && m.ts == ts)
                    .ok_or_else(|| slack_error("message_not_found"))?;
                if window.is_some_and(|w| now - m.posted_at > w) {
                    return Err(slack_error("edit_window_closed"));
                }
                m.text = s("text");
                m.body = body.clone();
                m.updates += 1;
                Ok(Reply(json!({"ok": true, "channel": channel, "ts": ts})))
            }
            Method::Enqueue => {
                let key = s("dedup_key");
                let action = s("event_action");
                let bad = |why: &str| Failure::Refused {
                    code: "HTTP 400".into(),
                    detail: format!("invalid event: {why}"),
                };
                if key.is_empty() || key.len() > 255 {
                    return Err(bad("dedup_key"));
                }
                match action.as_str() {
                    "trigger" => {
                        let p = &body["payload"];
                        for f in ["summary", "source", "severity"] {
                            if p[f].as_str().unwrap_or_default().is_empty() {
                                return Err(bad(f));
                            }
                        }
                        let a = self.alerts.entry(key.clone()).or_insert_with(|| Alert {
                            dedup_key: key.clone(),
                            status: "resolved",
                            severity: String::new(),
                            events: Vec::new(),
                            incidents: 0,
                        });
                        if a.status == "resolved" {
                            a.incidents += 1;
                        }
                        a.status = "triggered";
                        a.severity = p["severity"].as_str().unwrap_or_default().to_owned();
                        a.events.push(action);
                    }
                    "resolve" => {
                        // An unknown key is accepted and changes nothing.
                        if let Some(a) = self.alerts.get_mut(&key) {
                            a.status = "resolved";
                            a.events.push(action);
                        }
                    }
                    _ => return Err(bad("event_action")),
                }
                Ok(Reply(json!({"status": "success", "dedup_key": key})))
            }
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

impl FakeServices {
    fn act(&self, dest: &Destination, c: &Call) -> Result<Reply, Failure> {
        let now = (self.clock)();
        let mut w = self.world();
        let fault = Self::fault(&mut w, c.method);
        let mut seen = Seen {
            destination: dest.id(),
            method: c.method,
            body: c.body.clone(),
            origin: c.origin.clone(),
            landed: false,
            unknown: false,
        };
        let out = match fault {
            Some(Fault::Throttled(after)) => Err(Failure::Throttled {
                retry_after: after.map(Duration::from_secs),
                detail: "HTTP 429 rate_limited".into(),
            }),
            Some(Fault::ServerError) => Err(Failure::Transient("HTTP 500 server_error".into())),
            Some(Fault::LostThenTimeout) => Err(Failure::Unknown("operation timed out".into())),
            Some(Fault::Slack(code)) => Err(slack_error(code)),
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
        w.seen.push(seen);
        out
    }
}
