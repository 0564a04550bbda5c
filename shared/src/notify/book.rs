//! What notification keeps in the ledger, and its rules, written once over any [`Ledger`]:
//!
//! - **claims** (`<dedupe key>|<destination>`): one sender per message and destination. A claim
//!   is `sending` under a lease until the claimer's deadline, then `sent`. A send whose outcome
//!   is unknown (a timeout after the request left) marks it `unknown`: the retry may send once
//!   more under a second claim (`…|again`), never a third time.
//! - **incident records** (`incident|<key>|<destination>`) and their **locks** (`lock|…`): one
//!   phase at a time per incident and destination; a second writer waits for the lock.
//! - **facts** (`fact|…`) and the **stash** (`outbox|…`, listed in `outbox-index`).

use super::Deadline;
use super::incident::IncidentRecord;
use super::ledger::{
    Cond, EXPIRES_AT, Item, LEASE_UNTIL, Ledger, LedgerError, Put, SENDING, STATE, VERSION,
};
use super::{Notification, Phase};
use std::time::Duration;

/// How long an incident's record outlives its last phase: a phase after that starts anew.
pub const INCIDENT_TTL: Duration = Duration::from_secs(30 * 86_400);

/// The longest a writer waits for a claim or a lock another invocation holds: a holder sends
/// within seconds; one that died frees it when its lease (its deadline) runs out, and Lambda's
/// retry of the waiter comes after that.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The dedupe table's item listing the stashed notifications.
const OUTBOX_INDEX: &str = "outbox-index";
const SENT: &str = "sent";
const UNKNOWN: &str = "unknown";

/// The outcome of claiming a message for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send, under this claim key. `second` when an earlier attempt's outcome is unknown.
    Won { key: String, second: bool },
    /// Delivered already.
    Delivered,
    /// Another invocation holds a live claim: it delivers, or fails and is retried.
    Busy,
    /// Two attempts ended with an unknown outcome: a third could be a third copy.
    Exhausted,
}

/// Until when a claim or a lock taken now holds: the holder's deadline and a little more, so a
/// holder that crashed frees it soon after.
pub fn lease_until(now: i64, deadline: Deadline) -> i64 {
    now + deadline.remaining().as_secs().clamp(5, 900) as i64 + 5
}

fn ttl_secs(ttl: Duration) -> i64 {
    ttl.as_secs().min(i64::MAX as u64 / 2) as i64
}

/// The rules over one ledger.
#[derive(Debug, Clone)]
pub struct Book<L> {
    pub ledger: L,
}

impl<L: Ledger> Book<L> {
    pub fn new(ledger: L) -> Self {
        Self { ledger }
    }

    /// Claim `key` before sending, waiting (at most [`MAX_WAIT`], within `deadline`) while another
    /// invocation holds it: it delivers (then `Delivered`), or it died and its lease runs out
    /// (then ours). `Busy` only when still held after that: the caller fails and is retried, for
    /// a holder that died must never pass for a delivery.
    pub async fn claim(
        &self,
        key: &str,
        ttl: Duration,
        deadline: Deadline,
    ) -> Result<Claim, LedgerError> {
        let until = Deadline::after(deadline.remaining().min(MAX_WAIT));
        let mut wait = Duration::from_millis(100);
        loop {
            let claim = self.claim_once(key, ttl, deadline).await?;
            if claim != Claim::Busy || until.remaining() < wait + Duration::from_secs(1) {
                return Ok(claim);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }

    async fn claim_once(
        &self,
        key: &str,
        ttl: Duration,
        deadline: Deadline,
    ) -> Result<Claim, LedgerError> {
        for (attempt, key) in [key.to_owned(), format!("{key}|again")]
            .into_iter()
            .enumerate()
        {
            let now = self.ledger.now();
            let item = Item::default()
                .s(STATE, SENDING)
                .n(LEASE_UNTIL, lease_until(now, deadline))
                .n(EXPIRES_AT, now + ttl_secs(ttl));
            let held = match self.ledger.put_or_get(&key, item, Cond::Free).await? {
                Put::Written => {
                    return Ok(Claim::Won {
                        key,
                        second: attempt == 1,
                    });
                }
                Put::Refused(held) => held,
            };
            let lapsed = held
                .as_ref()
                .and_then(|i| i.get_n(LEASE_UNTIL))
                .is_some_and(|l| l < self.ledger.now());
            match held.as_ref().and_then(|i| i.get_s(STATE)) {
                Some(SENT) => return Ok(Claim::Delivered),
                // An unknown outcome, or a holder that died mid-send (its lease ran out): what it
                // sent may have landed, so this is the second attempt.
                Some(UNKNOWN) => continue,
                Some(SENDING) if lapsed => continue,
                // Sending under a live lease, or gone between the two calls: another is on it.
                _ => return Ok(Claim::Busy),
            }
        }
        Ok(Claim::Exhausted)
    }

    /// The claim's message was delivered.
    pub async fn sent(&self, key: &str, ttl: Duration) -> Result<(), LedgerError> {
        let now = self.ledger.now();
        let item = Item::default()
            .s(STATE, SENT)
            .n("sent_at", now)
            .n(EXPIRES_AT, now + ttl_secs(ttl));
        // Over our own claim, or a record that expired; never over another's delivery.
        self.ledger
            .put(key, item, Cond::FreeOrSending)
            .await
            .map(|_| ())
    }

    /// The claim's send may or may not have landed: the retry may try once more, under a
    /// second claim.
    pub async fn unknown(&self, key: &str, ttl: Duration) -> Result<(), LedgerError> {
        let now = self.ledger.now();
        let item = Item::default()
            .s(STATE, UNKNOWN)
            .n(EXPIRES_AT, now + ttl_secs(ttl));
        self.ledger
            .put(key, item, Cond::FreeOrSending)
            .await
            .map(|_| ())
    }

    /// Give a claim back after a failure known to have sent nothing, so the retry can send.
    pub async fn release(&self, key: &str) -> Result<(), LedgerError> {
        self.ledger.delete(key, Cond::Sending).await.map(|_| ())
    }

    /// Take the lock of incident record `pk`, waiting while another invocation holds it, until
    /// `deadline`. `Ok(None)`: still held when time ran out.
    pub async fn lock(&self, pk: &str, deadline: Deadline) -> Result<Option<i64>, LedgerError> {
        let key = format!("lock|{pk}");
        let until = Deadline::after(deadline.remaining().min(MAX_WAIT));
        let mut wait = Duration::from_millis(100);
        loop {
            let lease = lease_until(self.ledger.now(), deadline);
            let item = Item::default().n(LEASE_UNTIL, lease).n(EXPIRES_AT, lease);
            if self.ledger.put(&key, item, Cond::LeaseLapsed).await? {
                return Ok(Some(lease));
            }
            // Keep a second for the work itself once the lock is ours.
            if until.remaining() < wait + Duration::from_secs(1) {
                return Ok(None);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }

    /// Give the lock back (only our own lease: one that ran out may be another's now).
    pub async fn unlock(&self, pk: &str, lease: i64) -> Result<(), LedgerError> {
        self.ledger
            .delete(&format!("lock|{pk}"), Cond::Holds(lease))
            .await
            .map(|_| ())
    }

    /// The incident's record for one destination (an expired one is none).
    pub async fn record(&self, pk: &str) -> Result<Option<IncidentRecord>, LedgerError> {
        let now = self.ledger.now();
        let Some(item) = self.ledger.get(pk).await?.filter(|i| !i.expired(now)) else {
            return Ok(None);
        };
        let s = |k: &str| item.get_s(k).map(str::to_owned);
        Ok(Some(IncidentRecord {
            channel: s("channel"),
            ts: s("ts"),
            phase: item.get_s("phase").and_then(Phase::parse),
            opened_at: item.get_n("opened_at"),
            event_time: s("event_time"),
        }))
    }

    pub async fn save(&self, pk: &str, r: &IncidentRecord) -> Result<(), LedgerError> {
        let mut item = Item::default().n(EXPIRES_AT, self.ledger.now() + ttl_secs(INCIDENT_TTL));
        for (k, v) in [
            ("channel", &r.channel),
            ("ts", &r.ts),
            ("event_time", &r.event_time),
        ] {
            if let Some(v) = v {
                item = item.s(k, v.clone());
            }
        }
        if let Some(p) = r.phase {
            item = item.s("phase", p.as_str());
        }
        if let Some(o) = r.opened_at {
            item = item.n("opened_at", o);
        }
        self.ledger.put(pk, item, Cond::Always).await.map(|_| ())
    }

    pub async fn remember(&self, fact: &str, ttl: Duration) -> Result<(), LedgerError> {
        let item = Item::default().n(EXPIRES_AT, self.ledger.now() + ttl_secs(ttl));
        self.ledger
            .put(&format!("fact|{fact}"), item, Cond::Always)
            .await
            .map(|_| ())
    }

    pub async fn remembered(&self, fact: &str) -> Result<bool, LedgerError> {
        let now = self.ledger.now();
        Ok(self
            .ledger
            .get(&format!("fact|{fact}"))
            .await?
            .is_some_and(|i| !i.expired(now)))
    }

    pub async fn forget(&self, fact: &str) -> Result<(), LedgerError> {
        self.ledger
            .delete(&format!("fact|{fact}"), Cond::Always)
            .await
            .map(|_| ())
    }

    /// The latest version kept under `key` ([`Book::keep_version`]), and its label.
    pub async fn version(&self, key: &str) -> Result<Option<(i64, String)>, LedgerError> {
        let now = self.ledger.now();
        Ok(self
            .ledger
            .get(&format!("version|{key}"))
            .await?
            .filter(|i| !i.expired(now))
            .and_then(|i| Some((i.get_n(VERSION)?, i.get_s("label").unwrap_or("").to_owned()))))
    }

    /// Keep `version` (with `label`) under `key` unless a later version is kept: true when kept.
    pub async fn keep_version(
        &self,
        key: &str,
        version: i64,
        label: &str,
        ttl: Duration,
    ) -> Result<bool, LedgerError> {
        let item = Item::default()
            .n(VERSION, version)
            .s("label", label)
            .n(EXPIRES_AT, self.ledger.now() + ttl_secs(ttl));
        Ok(matches!(
            self.ledger
                .put_or_get(&format!("version|{key}"), item, Cond::NotNewer(version))
                .await?,
            Put::Written
        ))
    }

    /// Keep `n` under `key` unless something is kept there already; true when kept now.
    pub async fn stash(&self, key: &str, n: &Notification) -> Result<bool, LedgerError> {
        let body = serde_json::to_string(n).unwrap_or_default();
        let item = Item::default()
            .s("notification", body)
            .n(EXPIRES_AT, self.ledger.now() + 2 * 86_400);
        if !self
            .ledger
            .put(&format!("outbox|{key}"), item, Cond::Free)
            .await?
        {
            return Ok(false);
        }
        self.ledger
            .set_member(OUTBOX_INDEX, "keys", key, true)
            .await?;
        Ok(true)
    }

    pub async fn stashed(&self, key: &str) -> Result<Option<Notification>, LedgerError> {
        let now = self.ledger.now();
        Ok(self
            .ledger
            .get(&format!("outbox|{key}"))
            .await?
            .filter(|i| !i.expired(now))
            .and_then(|i| serde_json::from_str(i.get_s("notification")?).ok()))
    }

    pub async fn unstash(&self, key: &str) -> Result<(), LedgerError> {
        self.ledger
            .delete(&format!("outbox|{key}"), Cond::Always)
            .await?;
        self.ledger
            .set_member(OUTBOX_INDEX, "keys", key, false)
            .await
    }

    pub async fn stashed_keys(&self) -> Result<Vec<String>, LedgerError> {
        Ok(self
            .ledger
            .get(OUTBOX_INDEX)
            .await?
            .and_then(|mut i| i.ss.remove("keys"))
            .map(|s| s.into_iter().collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::super::ledger::MemoryLedger;
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn book() -> (Book<MemoryLedger>, Arc<AtomicI64>) {
        let t = Arc::new(AtomicI64::new(1_000));
        let c = t.clone();
        (
            Book::new(MemoryLedger::table(move || c.load(Ordering::SeqCst))),
            t,
        )
    }

    fn soon() -> Deadline {
        Deadline::after(Duration::from_secs(10))
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[tokio::test(start_paused = true)]
    async fn a_claim_is_won_once_and_an_unknown_outcome_allows_one_more_copy() {
        let (b, t) = book();
        let won = b.claim("m|d", DAY, soon()).await.unwrap();
        assert_eq!(
            won,
            Claim::Won {
                key: "m|d".into(),
                second: false
            }
        );
        assert_eq!(b.claim("m|d", DAY, soon()).await.unwrap(), Claim::Busy);
        b.unknown("m|d", DAY).await.unwrap();
        let again = b.claim("m|d", DAY, soon()).await.unwrap();
        assert_eq!(
            again,
            Claim::Won {
                key: "m|d|again".into(),
                second: true
            }
        );
        b.unknown("m|d|again", DAY).await.unwrap();
        assert_eq!(b.claim("m|d", DAY, soon()).await.unwrap(), Claim::Exhausted);
        // A delivered claim stays delivered until it expires.
        assert!(matches!(
            b.claim("x|d", DAY, soon()).await.unwrap(),
            Claim::Won { .. }
        ));
        b.sent("x|d", DAY).await.unwrap();
        assert_eq!(b.claim("x|d", DAY, soon()).await.unwrap(), Claim::Delivered);
        t.fetch_add(86_401, Ordering::SeqCst);
        assert!(matches!(
            b.claim("x|d", DAY, soon()).await.unwrap(),
            Claim::Won { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_whose_holder_timed_out_is_taken_over_after_its_lease() {
        let (b, t) = book();
        let deadline = Deadline::after(Duration::from_secs(3));
        assert!(matches!(
            b.claim("m", DAY, deadline).await.unwrap(),
            Claim::Won { .. }
        ));
        assert_eq!(b.claim("m", DAY, soon()).await.unwrap(), Claim::Busy);
        // The lease is the holder's deadline (at least 5 s) and 5 s more. Lambda ends an
        // invocation at its deadline: the holder is gone, and what it sent may have landed, so
        // the taker sends as the second attempt.
        t.fetch_add(11, Ordering::SeqCst);
        let second = b.claim("m", DAY, soon()).await.unwrap();
        assert_eq!(
            second,
            Claim::Won {
                key: "m|again".into(),
                second: true
            }
        );
        // Its holder dies too: no third attempt.
        t.fetch_add(30, Ordering::SeqCst);
        assert_eq!(b.claim("m", DAY, soon()).await.unwrap(), Claim::Exhausted);
        // A release (a failure known to have sent nothing) gives a claim back at once.
        assert!(matches!(
            b.claim("n", DAY, soon()).await.unwrap(),
            Claim::Won { .. }
        ));
        b.release("n").await.unwrap();
        assert!(matches!(
            b.claim("n", DAY, soon()).await.unwrap(),
            Claim::Won { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_writer_waits_for_the_lock() {
        let (b, _) = book();
        let lease = b.lock("p", soon()).await.unwrap().unwrap();
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.lock("p", soon()).await });
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(!waiter.is_finished(), "waits while held");
        b.unlock("p", lease).await.unwrap();
        assert!(waiter.await.unwrap().unwrap().is_some());
        // Held past the deadline: None, not an error.
        let short = Deadline::after(Duration::from_millis(900));
        assert_eq!(b.lock("p", short).await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn records_facts_and_the_stash() {
        let (b, t) = book();
        assert_eq!(b.record("incident|k").await.unwrap(), None);
        let r = IncidentRecord {
            channel: Some("C1".into()),
            ts: Some("1.2".into()),
            phase: Some(Phase::Opened),
            opened_at: Some(5),
            event_time: Some("2026-01-01T00:00:00Z".into()),
        };
        b.save("incident|k", &r).await.unwrap();
        assert_eq!(b.record("incident|k").await.unwrap(), Some(r));
        b.remember("f", DAY).await.unwrap();
        assert!(b.remembered("f").await.unwrap());
        b.forget("f").await.unwrap();
        assert!(!b.remembered("f").await.unwrap());
        let n = Notification::new(
            super::super::NotificationKind::DrainCompleted,
            super::super::Severity::Info,
            "t",
            "k",
        );
        assert!(b.stash("i-1", &n).await.unwrap());
        assert!(!b.stash("i-1", &n).await.unwrap(), "what is kept stays");
        assert_eq!(b.stashed_keys().await.unwrap(), ["i-1"]);
        assert_eq!(b.stashed("i-1").await.unwrap(), Some(n));
        b.unstash("i-1").await.unwrap();
        assert!(b.stashed_keys().await.unwrap().is_empty());
        // Records expire with their TTL (DynamoDB may still hold them: they read as none).
        t.fetch_add(INCIDENT_TTL.as_secs() as i64 + 1, Ordering::SeqCst);
        assert_eq!(b.record("incident|k").await.unwrap(), None);
    }
}
