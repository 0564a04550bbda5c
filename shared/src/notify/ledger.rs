//! The ledger port: what notification keeps between invocations (delivery claims, incident
//! records, incident locks, facts, the stash), as a small conditional item store with DynamoDB's
//! semantics. Every rule about claims and locks is written once, in [`super::book`], over this
//! trait; the adapters only store items and check conditions:
//!
//! - [`DynamoLedger`](super::ledger_dynamodb::DynamoLedger): the `DEDUPE_TABLE` table;
//! - [`MemoryLedger`]: this execution environment's memory (no table), and the tests' and the
//!   simulator's ledger, with throttling and TTL expiry injectable.
//!
//! DynamoDB's TTL deletes an expired item some time after `expires_at` (up to days), so an expired
//! item may still be read: every condition and read treats it as absent, in both adapters.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An item's attributes (the key, `pk`, is apart).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub s: BTreeMap<String, String>,
    pub n: BTreeMap<String, i64>,
    pub ss: BTreeMap<String, BTreeSet<String>>,
}

impl Item {
    pub fn s(mut self, k: &str, v: impl Into<String>) -> Self {
        self.s.insert(k.to_owned(), v.into());
        self
    }

    pub fn n(mut self, k: &str, v: i64) -> Self {
        self.n.insert(k.to_owned(), v);
        self
    }

    pub fn get_s(&self, k: &str) -> Option<&str> {
        self.s.get(k).map(String::as_str)
    }

    pub fn get_n(&self, k: &str) -> Option<i64> {
        self.n.get(k).copied()
    }

    /// Past its `expires_at`: gone for every reader, whether or not TTL deleted it yet.
    pub fn expired(&self, now: i64) -> bool {
        self.get_n(EXPIRES_AT).is_some_and(|e| e < now)
    }
}

/// The attribute DynamoDB's TTL reads (seconds since the epoch).
pub const EXPIRES_AT: &str = "expires_at";
pub const STATE: &str = "state";
pub const LEASE_UNTIL: &str = "lease_until";
pub const VERSION: &str = "version";
/// A storm's change counter (`storm.rs`).
pub const COUNT: &str = "count";
/// A storm item's `state` while its digest is open.
pub const OPEN: &str = "open";

/// The conditions the notifier writes under, each one DynamoDB condition expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Always,
    /// `attribute_not_exists(pk) OR expires_at < :now`
    Free,
    /// Free, or a `sending` claim (the writer's own).
    FreeOrSending,
    /// `state = sending`
    Sending,
    /// `attribute_not_exists(pk) OR lease_until < :now`
    LeaseLapsed,
    /// `lease_until = :lease`: the writer's own lease.
    Holds(i64),
    /// `attribute_not_exists(pk) OR expires_at < :now OR version <= :v`: no later version kept.
    NotNewer(i64),
    /// `attribute_not_exists(pk) OR expires_at < :now OR state <> open`: no open storm.
    NotOpen,
    /// `version = :v AND state = open`: this storm, still open.
    OpenVersion(i64),
    /// `version = :v AND state = open AND count = :c`: this storm, open, with no change since `c`.
    OpenAt(i64, i64),
}

impl Cond {
    /// Whether `existing` lets the write through at `now` (the one reading of each condition,
    /// for the in-memory adapter; the DynamoDB adapter sends the same as an expression).
    pub fn holds(self, existing: Option<&Item>, now: i64) -> bool {
        let free = existing.is_none_or(|i| i.expired(now));
        let state = existing.and_then(|i| i.get_s(STATE));
        let lease = existing.and_then(|i| i.get_n(LEASE_UNTIL));
        match self {
            Cond::Always => true,
            Cond::Free => free,
            Cond::FreeOrSending => free || state == Some(SENDING),
            Cond::Sending => state == Some(SENDING),
            Cond::LeaseLapsed => existing.is_none() || lease.is_some_and(|l| l < now),
            Cond::Holds(mine) => lease == Some(mine),
            Cond::NotNewer(v) => {
                free || existing
                    .and_then(|i| i.get_n(VERSION))
                    .is_none_or(|x| x <= v)
            }
            Cond::NotOpen => free || state != Some(OPEN),
            Cond::OpenVersion(v) => {
                existing.and_then(|i| i.get_n(VERSION)) == Some(v) && state == Some(OPEN)
            }
            Cond::OpenAt(v, c) => {
                Cond::OpenVersion(v).holds(existing, now)
                    && existing.and_then(|i| i.get_n(COUNT)).unwrap_or(0) == c
            }
        }
    }
}

pub const SENDING: &str = "sending";

/// The store could not be reached (throttled past the SDK's retries, down, denied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerError(pub String);

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ledger: {}", self.0)
    }
}

/// A write's outcome: done, or refused by its condition.
pub type Written = Result<bool, LedgerError>;

/// A conditional put's outcome, with the item that refused it (DynamoDB's
/// `ReturnValuesOnConditionCheckFailure=ALL_OLD`: no second read to learn why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    Written,
    Refused(Option<Item>),
}

/// An in-place update of one item (DynamoDB's `UpdateItem`): attributes set, numbers added
/// atomically, the others kept. No read-modify-write: concurrent writers of different
/// attributes never undo each other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// String and number attributes to set.
    pub set: Item,
    /// Numbers to add to (absent: from 0).
    pub add: BTreeMap<String, i64>,
    /// Strings to add to string sets.
    pub add_set: BTreeMap<String, BTreeSet<String>>,
    /// Only if number attribute `.0` is absent or below `.1`: a field's own version, so an
    /// older write (or the same one again) never overwrites a newer one.
    pub guard: Option<(String, i64)>,
}

impl Update {
    fn guard_holds(&self, existing: Option<&Item>) -> bool {
        self.guard
            .as_ref()
            .is_none_or(|(attr, v)| existing.and_then(|i| i.get_n(attr)).is_none_or(|x| x <= *v))
    }

    /// `self` applied to `item`.
    fn apply(self, item: &mut Item) {
        item.s.extend(self.set.s);
        item.n.extend(self.set.n);
        for (k, v) in self.add {
            *item.n.entry(k).or_default() += v;
        }
        for (k, v) in self.add_set {
            item.ss.entry(k).or_default().extend(v);
        }
    }
}

/// The conditional item store. Reads are strongly consistent.
pub trait Ledger: Send + Sync + 'static {
    /// The ledger's clock (seconds since the epoch): leases and TTLs are read against it.
    fn now(&self) -> i64;

    /// The same clock in milliseconds, for pacing calls within a second.
    fn now_ms(&self) -> i64 {
        self.now() * 1000
    }

    /// Whether this ledger outlives the execution environment (a table), so that its claims
    /// hold across concurrent environments.
    fn shared(&self) -> bool;

    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Item>, LedgerError>> + Send;

    /// Write `item` under `key` whole, if `cond` holds; else the item that is there.
    fn put_or_get(
        &self,
        key: &str,
        item: Item,
        cond: Cond,
    ) -> impl Future<Output = Result<Put, LedgerError>> + Send;

    /// Write `item` under `key` whole, if `cond` holds; `Ok(false)` when it does not.
    fn put(&self, key: &str, item: Item, cond: Cond) -> impl Future<Output = Written> + Send {
        async move { Ok(self.put_or_get(key, item, cond).await? == Put::Written) }
    }

    /// Delete `key` if `cond` holds; `Ok(false)` when it does not.
    fn delete(&self, key: &str, cond: Cond) -> impl Future<Output = Written> + Send;

    /// Update `key` in place if `cond` (and the update's guard) hold: the item after, or `None`
    /// when refused. Like DynamoDB, it applies over an expired item not yet deleted.
    fn update(
        &self,
        key: &str,
        update: Update,
        cond: Cond,
    ) -> impl Future<Output = Result<Option<Item>, LedgerError>> + Send;

    /// Add `value` to (or remove it from) the string set `attr` of `key`, atomically.
    fn set_member(
        &self,
        key: &str,
        attr: &str,
        value: &str,
        present: bool,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// Which calls a [`MemoryLedger`] fails, for tests and the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerFault {
    /// Every call fails until cleared (throttled past the SDK's retries).
    Throttled,
    /// Only writes fail (reads work).
    WritesThrottled,
}

#[derive(Debug, Default)]
struct Memory {
    items: BTreeMap<String, Item>,
    fault: Option<LedgerFault>,
    /// Calls failed by the fault, and calls made.
    failed: u64,
    calls: u64,
}

/// An in-memory ledger with DynamoDB's semantics: conditional writes checked atomically, reads
/// consistent, expired items still stored until [`MemoryLedger::sweep_expired`] (TTL's lazy
/// deletion) yet treated as absent, faults injectable.
#[derive(Clone)]
pub struct MemoryLedger {
    inner: Arc<Mutex<Memory>>,
    /// Milliseconds since the epoch.
    clock_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
    shared: bool,
    /// The time a request takes each way (DynamoDB's latency), so that concurrent callers
    /// interleave between their reads and writes as they do against a table.
    latency: Option<Arc<dyn Fn() -> Duration + Send + Sync>>,
}

impl fmt::Debug for MemoryLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLedger")
            .field("shared", &self.shared)
            .finish()
    }
}

impl Default for MemoryLedger {
    fn default() -> Self {
        Self::local()
    }
}

impl MemoryLedger {
    /// This execution environment's memory, on the system clock (no table).
    pub fn local() -> Self {
        Self {
            inner: Arc::default(),
            clock_ms: Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64)
            }),
            shared: false,
            latency: None,
        }
    }

    /// This environment's memory on `clock_ms` (milliseconds): tests on tokio's paused clock.
    pub fn local_ms(clock_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self {
            shared: false,
            ..Self::table_ms(clock_ms)
        }
    }

    /// A stand-in for a table shared by every environment (tests, the simulator), on `clock`
    /// (seconds).
    pub fn table(clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self::table_ms(move || clock() * 1000)
    }

    /// [`MemoryLedger::table`] on a clock in milliseconds.
    pub fn table_ms(clock_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::default(),
            clock_ms: Arc::new(clock_ms),
            shared: true,
            latency: None,
        }
    }

    /// Each request travels `latency()` to the table and as long back (tokio time: paused in
    /// the simulators, where it is virtual).
    pub fn with_latency(mut self, latency: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        self.latency = Some(Arc::new(latency));
        self
    }

    async fn travel(&self) {
        if let Some(l) = &self.latency {
            tokio::time::sleep(l()).await;
        }
    }

    /// One request: there, applied atomically, and back.
    async fn request<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut Memory, i64) -> T,
    ) -> Result<T, LedgerError> {
        self.travel().await;
        let out = self.call(write, f);
        self.travel().await;
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_fault(&self, fault: Option<LedgerFault>) {
        self.lock().fault = fault;
    }

    /// TTL's deletion catching up: every expired item is removed.
    pub fn sweep_expired(&self) {
        let now = self.now();
        self.lock().items.retain(|_, i| !i.expired(now));
    }

    /// Remove one item (a record lost: deleted by hand, or expired and swept).
    pub fn remove(&self, key: &str) {
        self.lock().items.remove(key);
    }

    /// The keys stored, expired or not.
    pub fn keys(&self) -> Vec<String> {
        self.lock().items.keys().cloned().collect()
    }

    /// (calls made, calls failed by a fault).
    pub fn calls(&self) -> (u64, u64) {
        let m = self.lock();
        (m.calls, m.failed)
    }

    fn call<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut Memory, i64) -> T,
    ) -> Result<T, LedgerError> {
        let now = self.now();
        let mut m = self.lock();
        m.calls += 1;
        match m.fault {
            Some(LedgerFault::Throttled) => {
                m.failed += 1;
                Err(LedgerError("ProvisionedThroughputExceededException".into()))
            }
            Some(LedgerFault::WritesThrottled) if write => {
                m.failed += 1;
                Err(LedgerError("ProvisionedThroughputExceededException".into()))
            }
            _ => Ok(f(&mut m, now)),
        }
    }
}

impl Ledger for MemoryLedger {
    fn now(&self) -> i64 {
        (self.clock_ms)().div_euclid(1000)
    }

    fn now_ms(&self) -> i64 {
        (self.clock_ms)()
    }

    fn shared(&self) -> bool {
        self.shared
    }

    async fn get(&self, key: &str) -> Result<Option<Item>, LedgerError> {
        self.request(false, |m, _| m.items.get(key).cloned()).await
    }

    async fn put_or_get(&self, key: &str, item: Item, cond: Cond) -> Result<Put, LedgerError> {
        self.request(true, |m, now| {
            if !cond.holds(m.items.get(key), now) {
                return Put::Refused(m.items.get(key).cloned());
            }
            m.items.insert(key.to_owned(), item);
            Put::Written
        })
        .await
    }

    async fn delete(&self, key: &str, cond: Cond) -> Written {
        self.request(true, |m, now| {
            if !cond.holds(m.items.get(key), now) {
                return false;
            }
            m.items.remove(key);
            true
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        update: Update,
        cond: Cond,
    ) -> Result<Option<Item>, LedgerError> {
        self.request(true, |m, now| {
            // As in DynamoDB, an update applies to an expired item TTL has not deleted yet:
            // callers that care say so in `cond`.
            let existing = m.items.get(key);
            if !cond.holds(existing, now) || !update.guard_holds(existing) {
                return None;
            }
            let item = m.items.entry(key.to_owned()).or_default();
            update.apply(item);
            Some(item.clone())
        })
        .await
    }

    async fn set_member(
        &self,
        key: &str,
        attr: &str,
        value: &str,
        present: bool,
    ) -> Result<(), LedgerError> {
        self.request(true, |m, _| {
            let item = m.items.entry(key.to_owned()).or_default();
            let set = item.ss.entry(attr.to_owned()).or_default();
            if present {
                set.insert(value.to_owned());
            } else {
                set.remove(value);
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn ledger() -> (MemoryLedger, Arc<AtomicI64>) {
        let t = Arc::new(AtomicI64::new(1_000));
        let c = t.clone();
        (MemoryLedger::table(move || c.load(Ordering::SeqCst)), t)
    }

    #[tokio::test]
    async fn conditions_read_as_dynamodb_does() {
        let (l, t) = ledger();
        let claim = Item::default()
            .s(STATE, SENDING)
            .n(LEASE_UNTIL, 1_010)
            .n(EXPIRES_AT, 5_000);
        assert!(l.put("k", claim.clone(), Cond::Free).await.unwrap());
        assert!(!l.put("k", claim.clone(), Cond::Free).await.unwrap());
        // A lapsed lease does not free the item (the claim rules read it: `book.rs`).
        t.store(1_011, Ordering::SeqCst);
        assert!(!l.put("k", claim.clone(), Cond::Free).await.unwrap());
        let sent = Item::default().s(STATE, "sent").n(EXPIRES_AT, 5_000);
        assert!(l.put("k", sent.clone(), Cond::FreeOrSending).await.unwrap());
        assert!(!l.put("k", claim.clone(), Cond::Free).await.unwrap());
        assert!(
            !l.delete("k", Cond::Sending).await.unwrap(),
            "never a delivered one"
        );
        // A refused put says what refused it (DynamoDB's ALL_OLD on a failed condition).
        assert_eq!(
            l.put_or_get("k", Item::default(), Cond::Free)
                .await
                .unwrap(),
            Put::Refused(Some(sent))
        );
        // Expired but not yet swept: stored, yet free for every condition.
        t.store(5_001, Ordering::SeqCst);
        assert!(l.get("k").await.unwrap().unwrap().expired(5_001));
        let fresh = claim.n(LEASE_UNTIL, 5_010).n(EXPIRES_AT, 9_000);
        assert!(l.put("k", fresh, Cond::Free).await.unwrap());
        l.sweep_expired();
        assert!(l.keys().contains(&"k".to_owned()), "the new claim lives");
    }

    #[tokio::test]
    async fn leases_and_faults() {
        let (l, t) = ledger();
        let lock = |until| Item::default().n(LEASE_UNTIL, until);
        assert!(l.put("lock", lock(1_005), Cond::LeaseLapsed).await.unwrap());
        assert!(!l.put("lock", lock(1_006), Cond::LeaseLapsed).await.unwrap());
        assert!(!l.delete("lock", Cond::Holds(1_006)).await.unwrap());
        t.store(1_006, Ordering::SeqCst);
        assert!(l.put("lock", lock(1_010), Cond::LeaseLapsed).await.unwrap());
        assert!(
            !l.delete("lock", Cond::Holds(1_005)).await.unwrap(),
            "not mine any more"
        );
        assert!(l.delete("lock", Cond::Holds(1_010)).await.unwrap());
        l.set_fault(Some(LedgerFault::WritesThrottled));
        assert!(l.get("x").await.is_ok());
        assert!(l.put("x", Item::default(), Cond::Always).await.is_err());
        l.set_fault(Some(LedgerFault::Throttled));
        assert!(l.get("x").await.is_err());
        l.set_fault(None);
        l.set_member("idx", "keys", "a", true).await.unwrap();
        l.set_member("idx", "keys", "b", true).await.unwrap();
        l.set_member("idx", "keys", "a", false).await.unwrap();
        let idx = l.get("idx").await.unwrap().unwrap();
        assert_eq!(idx.ss["keys"].iter().collect::<Vec<_>>(), ["b"]);
        assert_eq!(l.calls(), (13, 2));
    }
}
