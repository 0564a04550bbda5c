//! Delivery, top to bottom: route → for each destination at once: claim → (incident
//! destinations: lock, record, decide) → call the service → record. One destination failing
//! never stops the others; any failure is a [`DeliveryError`] naming it, so the invocation fails,
//! Lambda retries it, and the claims let the retry reach only what missed it.

use super::book::{Book, Claim};
use super::incident::Transition;
use super::ledger::Ledger;
use super::route::{Destination, InsufficientData, Route, Rules};
use super::services::{self, Call, Failure, Method, Services};
use super::{Deadline, Notification, NotificationKind, slack, sns, teams};
use std::fmt;
use std::time::Duration;

/// What was done with one notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub route: Route,
    pub delivered: Vec<String>,
    /// Destinations that already had this message, or that another invocation is delivering.
    pub already_delivered: Vec<String>,
}

impl DeliveryReport {
    /// One summary line per destination: `delivered to …` / `already delivered to …`.
    pub fn actions(&self) -> impl Iterator<Item = String> + '_ {
        self.delivered
            .iter()
            .map(|d| format!("delivered to {d}"))
            .chain(
                self.already_delivered
                    .iter()
                    .map(|d| format!("already delivered to {d}")),
            )
    }
}

/// Some destinations did not get the message. Names them; never contains a webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub kind: &'static str,
    pub failed: Vec<(String, String)>,
    pub delivered: Vec<String>,
    /// Of `failed`, the destinations this message will never be sent to again (two attempts
    /// ended with an unknown outcome): retrying cannot deliver it there.
    pub given_up: Vec<String>,
}

impl DeliveryError {
    /// Whether no retry can deliver anything more of this message: every destination that
    /// failed has been given up on.
    pub fn is_final(&self) -> bool {
        self.failed.iter().all(|(id, _)| self.given_up.contains(id))
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} notification not delivered to ", self.kind)?;
        for (i, (dest, why)) in self.failed.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{dest} ({why})")?;
        }
        if !self.delivered.is_empty() {
            write!(f, "; delivered to {}", self.delivered.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for DeliveryError {}

/// The pipeline: routing rules, the ledger, the services. Built once at init
/// ([`Notifier::from_lookup`] for Lambda; [`Notifier::with`] for tests and the simulator).
#[derive(Clone)]
pub struct Notifier<L = super::AnyLedger, S = super::destinations::Live> {
    pub(super) rules: Rules,
    pub(super) defaults: Vec<Destination>,
    pub(super) book: Book<L>,
    /// Where the stash goes when the ledger cannot take it: this environment's memory.
    pub(super) fallback: Book<super::ledger::MemoryLedger>,
    pub(super) services: S,
    pub(super) max_attempts: usize,
    /// Account names, console shortcuts, and the member account this notifier serves.
    pub(super) accounts: super::account_view::AccountView,
}

impl<L, S: fmt::Debug> fmt::Debug for Notifier<L, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("defaults", &self.defaults)
            .field("services", &self.services)
            .finish()
    }
}

/// A destination's failure: why, and whether what was sent may have landed.
pub(super) struct Failed {
    pub(super) why: String,
    pub(super) unknown: bool,
    /// Slack's message can no longer be edited (deleted, or past the edit window).
    pub(super) gone: bool,
}

impl Failed {
    pub(super) fn known(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            unknown: false,
            gone: false,
        }
    }

    pub(super) fn call(label: &str, (f, tries): (Failure, usize)) -> Self {
        let why = services::describe(&f, tries);
        Self {
            why: if label.is_empty() {
                why
            } else {
                format!("{label}: {why}")
            },
            unknown: matches!(f, Failure::Unknown(_)),
            gone: f.message_gone(),
        }
    }
}

/// What became of a notification at one destination.
enum Sent {
    Delivered(String),
    Already(String),
    Failed(String, String),
    /// Never to be sent there again (its claim is exhausted).
    GivenUp(String, String),
}

impl<L: Ledger, S: Services> Notifier<L, S> {
    /// A pipeline over this ledger and these services.
    pub fn with(rules: Rules, defaults: Vec<Destination>, ledger: L, services: S) -> Self {
        Self {
            rules,
            defaults,
            book: Book::new(ledger),
            fallback: Book::new(super::ledger::MemoryLedger::local()),
            services,
            max_attempts: 5,
            accounts: super::account_view::AccountView::default(),
        }
    }

    pub fn defaults(&self) -> &[Destination] {
        &self.defaults
    }

    pub fn ledger(&self) -> &L {
        &self.book.ledger
    }

    pub fn services(&self) -> &S {
        &self.services
    }

    /// Route `n`, then deliver it to every destination that does not have it yet.
    pub async fn send(
        &self,
        mut n: Notification,
        deadline: Deadline,
    ) -> Result<DeliveryReport, DeliveryError> {
        self.accounts.apply(&mut n);
        let route = self.rules.route(&n, &self.defaults);
        if let Some(s) = route.severity {
            n.severity = s;
        }
        let mut report = DeliveryReport {
            route: route.clone(),
            ..DeliveryReport::default()
        };
        let transition = match transition(&n, route.insufficient_data) {
            Some(t) if !route.dropped => t,
            _ => {
                tracing::info!(kind = n.kind.as_str(), rules = ?route.rules, "notification dropped by rule");
                report.route.dropped = true;
                return Ok(report);
            }
        };
        if route.destinations.is_empty() {
            tracing::warn!(kind = n.kind.as_str(), title = %n.title, "no notification destination configured");
            return Ok(report);
        }
        // In a storm, the destinations that digest show this change in the storm's digest.
        let storm = self.storm_of(&n, &route, transition).await;
        // Every destination at once: each has the whole deadline, so one service's Retry-After
        // never leaves another out of time.
        let (n, route) = (&n, &route);
        let outcomes = futures_util::future::join_all(route.destinations.iter().map(|dest| {
            let storm = storm.as_ref().filter(|_| super::storm::digested(dest, &route.storm));
            async move {
                match storm {
                    Some(j) => match self.digest_to(dest, j, route, deadline).await {
                        Ok(done) => {
                            tracing::info!(destination = %dest.id(), incident = %n.incident_key(), done, "storm digest");
                            Sent::Delivered(dest.id())
                        }
                        Err(why) => {
                            tracing::error!(destination = %dest.id(), error = %why, "storm digest not updated");
                            Sent::Failed(dest.id(), why)
                        }
                    },
                    None => {
                        self.send_to(dest, n, transition, &route.mentions, deadline)
                            .await
                    }
                }
            }
        }))
        .await;
        let (mut failed, mut given_up) = (Vec::new(), Vec::new());
        for outcome in outcomes {
            match outcome {
                Sent::Delivered(id) => report.delivered.push(id),
                Sent::Already(id) => report.already_delivered.push(id),
                Sent::Failed(id, why) => failed.push((id, why)),
                Sent::GivenUp(id, why) => {
                    given_up.push(id.clone());
                    failed.push((id, why));
                }
            }
        }
        if failed.is_empty() {
            Ok(report)
        } else {
            Err(DeliveryError {
                kind: n.kind.as_str(),
                failed,
                delivered: report.delivered,
                given_up,
            })
        }
    }

    /// Claim, deliver and record `n` for one destination.
    async fn send_to(
        &self,
        dest: &Destination,
        n: &Notification,
        t: Transition,
        mentions: &[String],
        deadline: Deadline,
    ) -> Sent {
        let id = dest.id();
        let key = dedupe_key(&n.dedupe_key, &id);
        // Claim before sending: of two invocations with the same message at once, one sends.
        let claim = match self.book.claim(&key, n.dedupe_ttl, deadline).await {
            Ok(Claim::Won { key, second }) => {
                if second {
                    tracing::warn!(destination = %id, "an earlier attempt's outcome is unknown; sending once more");
                }
                key
            }
            Ok(Claim::Delivered) => {
                tracing::info!(destination = %id, "already delivered: skipped");
                return Sent::Already(id);
            }
            // Its holder may have died mid-send: only a delivery may pass for one.
            Ok(Claim::Busy) => {
                return Sent::Failed(
                    id,
                    "another invocation holds this message's claim (delivering it, or timed out); retried".into(),
                );
            }
            Ok(Claim::Exhausted) => {
                return Sent::GivenUp(
                    id,
                    "two attempts ended with an unknown outcome (check the destination); not sent a third time".into(),
                );
            }
            // Sending without a claim could send twice: the retry sends once the ledger answers.
            Err(e) => return Sent::Failed(id, format!("cannot claim the message: {e}")),
        };
        match self.deliver(dest, n, t, mentions, deadline).await {
            Ok(done) => {
                tracing::info!(
                    destination = %id,
                    kind = n.kind.as_str(),
                    incident = %n.incident_key(),
                    phase = n.phase().as_str(),
                    done,
                    "notification delivered"
                );
                if let Err(e) = self.book.sent(&claim, n.dedupe_ttl).await {
                    // Delivered already: failing now would only make a retry send it again.
                    tracing::warn!(destination = %id, error = %e, "could not record the delivery; a duplicate event may send it again");
                }
                Sent::Delivered(id)
            }
            Err(f) => {
                tracing::error!(destination = %id, error = %f.why, unknown = f.unknown, "notification delivery failed");
                self.services.forget(dest);
                let kept = if f.unknown {
                    self.book.unknown(&claim, n.dedupe_ttl).await
                } else {
                    self.book.release(&claim).await
                };
                if let Err(e) = kept {
                    // The claim's lease runs out by itself; the retry claims it then.
                    tracing::warn!(destination = %id, error = %e, "could not update the claim");
                }
                Sent::Failed(id, f.why)
            }
        }
    }

    async fn deliver(
        &self,
        dest: &Destination,
        n: &Notification,
        t: Transition,
        mentions: &[String],
        deadline: Deadline,
    ) -> Result<&'static str, Failed> {
        let once = |method, body, done: &'static str| async move {
            let c = Call {
                method,
                body,
                origin: n.dedupe_key.clone(),
            };
            self.call_service(dest, &c, deadline)
                .await
                .map(|_| done)
                .map_err(|e| Failed::call("", e))
        };
        match dest {
            Destination::Sns { .. } => once(Method::Publish, sns::call_body(n), "published").await,
            Destination::SlackUrl | Destination::SlackSecret { .. } => {
                once(Method::Webhook, slack::render_with(n, mentions), "posted").await
            }
            Destination::Teams { .. } => {
                once(Method::Webhook, teams::render(n), "posted a card").await
            }
            Destination::PagerDuty { .. } | Destination::SlackChannel { .. } => {
                self.keep(dest, n, t, mentions, deadline).await
            }
        }
    }
}

/// The port the handlers use.
impl<L: Ledger, S: Services> crate::ports::Notify for Notifier<L, S> {
    async fn send(
        &self,
        n: Notification,
        deadline: Deadline,
    ) -> Result<DeliveryReport, DeliveryError> {
        Notifier::send(self, n, deadline).await
    }

    async fn remember(&self, fact: &str, ttl: Duration) {
        if let Err(e) = self.book.remember(fact, ttl).await {
            tracing::warn!(error = %e, "could not remember a fact");
        }
    }

    async fn remembered(&self, fact: &str) -> bool {
        self.book.remembered(fact).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read a fact; taken as not remembered");
            false
        })
    }

    async fn version(&self, key: &str) -> Option<(i64, String)> {
        self.book.version(key).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read a version; taken as none");
            None
        })
    }

    async fn keep_version(&self, key: &str, version: i64, label: &str, ttl: Duration) -> bool {
        self.book
            .keep_version(key, version, label, ttl)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not record a version");
                true
            })
    }

    async fn forget(&self, fact: &str) {
        if let Err(e) = self.book.forget(fact).await {
            tracing::warn!(error = %e, "could not forget a fact; it expires by itself");
        }
    }

    async fn stash(&self, key: &str, n: &Notification) -> bool {
        match self.book.stash(key, n).await {
            Ok(kept) => kept,
            Err(e) => {
                // The completion goes ahead regardless: a notification problem never holds a drain.
                tracing::warn!(error = %e, "could not stash a notification; kept in this environment");
                self.fallback.stash(key, n).await.unwrap_or(false)
            }
        }
    }

    async fn stashed(&self, key: &str) -> Option<Notification> {
        if let Ok(Some(n)) = self.fallback.stashed(key).await {
            return Some(n);
        }
        self.book.stashed(key).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the stash");
            None
        })
    }

    async fn unstash(&self, key: &str) {
        let _ = self.fallback.unstash(key).await;
        if let Err(e) = self.book.unstash(key).await {
            tracing::warn!(error = %e, "could not clear the stash; the message may be sent again (deduplicated)");
        }
    }

    async fn stashed_keys(&self) -> Vec<String> {
        let mut keys = self.fallback.stashed_keys().await.unwrap_or_default();
        match self.book.stashed_keys().await {
            Ok(k) => keys.extend(k),
            Err(e) => tracing::warn!(error = %e, "could not read the stash index"),
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

/// The transition `n` asks of its incidents on a route, or `None` when the route ignores it.
fn transition(n: &Notification, policy: InsufficientData) -> Option<Transition> {
    let insufficient =
        n.kind == NotificationKind::Alarm && n.state.as_deref() == Some("INSUFFICIENT_DATA");
    if !insufficient {
        return Some(Transition::of(n.phase()));
    }
    match policy {
        InsufficientData::Update => Some(Transition::UpdateIfOpen),
        InsufficientData::Open => Some(Transition::Open),
        InsufficientData::Ignore => None,
    }
}

/// The dedupe record's key: the notification's key and the destination's id, hashed when long
/// (DynamoDB keys are at most 2 KB).
pub(in crate::notify) fn dedupe_key(key: &str, destination: &str) -> String {
    let full = format!("{key}|{destination}");
    if full.len() <= 1024 {
        return full;
    }
    // SHA-256: the same key in every release (DefaultHasher may change between Rust releases,
    // and a changed key would send every message again).
    let hex = super::digest(&full);
    format!("{}…{hex}", crate::text::cut(&full, 512))
}

#[cfg(test)]
#[path = "deliver_tests.rs"]
mod tests;
