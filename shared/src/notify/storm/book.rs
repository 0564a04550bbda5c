//! What a storm keeps in the ledger, each write one conditional item operation:
//!
//! - `storm|<route>|open|<window>`: the sources that opened an incident in one window (a string
//!   set of their digests); a storm is more than `sources` of them in this window and the last;
//! - `storm|<route>`: the route's open storm (`version`: its id, the second it started);
//! - `storm|<route>|<id>`: that storm's `count` of changes, and whether it is still `open`;
//! - `storm|<route>|<id>|<shard>`: each member's latest state, in one of 16 shards by its digest
//!   (`m:<source>`, versioned by `v:<source>`: an older event never overwrites a newer one);
//! - `storm|<route>|member|<source>`: which storm a source belongs to;
//! - `digest|<route>|<id>|<destination>`: what a destination last showed (its lock: `lock|…`);
//! - `rate|<destination>|<second>`: the calls made to a destination in one second.
//!
//! A member's change is one write to its shard and one atomic add to its storm's count: no item
//! is rewritten whole per change, and only the flusher reads the shards.

use super::Member;
use crate::notify::book::{Book, lease_until};
use crate::notify::ledger::{
    COUNT, Cond, EXPIRES_AT, Item, Ledger, LedgerError, OPEN, Put, STATE, Update, VERSION,
};
use crate::notify::{Deadline, digest};
use std::collections::{BTreeMap, BTreeSet};

pub const SHARDS: usize = 16;
const CLOSED: &str = "closed";
/// How long a storm's items outlive its last change.
const STORM_TTL: i64 = 7 * 86_400;

/// A route's key in the ledger (route names are free text).
pub fn route_key(route: &str) -> String {
    digest(route)[..16].to_owned()
}

/// A source's key in the ledger (its incident key, digested).
pub fn source_key(incident_key: &str) -> String {
    digest(incident_key)[..16].to_owned()
}

fn shard_of(source: &str) -> usize {
    usize::from_str_radix(&source[..1], 16).unwrap_or(0) % SHARDS
}

/// One storm of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormRef {
    pub route: String,
    pub rk: String,
    pub id: i64,
}

impl StormRef {
    fn item(&self) -> String {
        format!("storm|{}|{}", self.rk, self.id)
    }

    /// The digest's incident key (PagerDuty's `dedup_key`, Slack's record).
    pub fn incident_key(&self) -> String {
        format!("storm|{}|{}", self.route, self.id)
    }
}

/// What a destination last showed of a digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestRecord {
    pub channel: Option<String>,
    pub ts: Option<String>,
    /// The storm's count of changes it shows.
    pub flushed: i64,
    /// When it was last sent (seconds since the epoch).
    pub sent_at: i64,
    /// The latest event time it shows.
    pub upto: i64,
    /// It shows the storm over (the last thing it will show).
    pub resolved: bool,
    /// A digest was posted (a PagerDuty trigger, a first Slack message).
    pub posted: bool,
}

/// A storm's count and whether it is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub count: i64,
    pub open: bool,
}

/// A non-member's latest change of its own during a storm (its event time).
const ALONE_AT: &str = "alone_at";

/// How late a free pace slot's answer may come back and its call still go at once (ms).
const RATE_SLACK_MS: i64 = 100;

impl<L: Ledger> Book<L> {
    fn expires(&self) -> i64 {
        self.ledger.now() + STORM_TTL
    }

    /// Count `source` as opening on route `rk` now: the distinct sources that opened in this
    /// window and the last.
    pub async fn opened(&self, rk: &str, source: &str, window: i64) -> Result<usize, LedgerError> {
        let now = self.ledger.now();
        let bucket = now / window.max(1);
        let mut u = Update::default();
        u.add_set
            .insert("sources".into(), BTreeSet::from([source.to_owned()]));
        u.set = Item::default().n(EXPIRES_AT, now + 3 * window);
        let this = self
            .ledger
            .update(&format!("storm|{rk}|open|{bucket}"), u, Cond::Always)
            .await?
            .map(|i| i.ss.get("sources").cloned().unwrap_or_default())
            .unwrap_or_default();
        let last = self
            .ledger
            .get(&format!("storm|{rk}|open|{}", bucket - 1))
            .await?
            .filter(|i| !i.expired(now))
            .and_then(|i| i.ss.get("sources").cloned())
            .unwrap_or_default();
        Ok(this.union(&last).count())
    }

    /// The route's open storm, if any.
    pub async fn open_storm(&self, rk: &str) -> Result<Option<i64>, LedgerError> {
        let now = self.ledger.now();
        Ok(self
            .ledger
            .get(&format!("storm|{rk}"))
            .await?
            .filter(|i| !i.expired(now) && i.get_s(STATE) == Some(OPEN))
            .and_then(|i| i.get_n(VERSION)))
    }

    /// Start a storm on the route, or learn the one another invocation started: its id.
    pub async fn start(&self, route: &str, rk: &str) -> Result<i64, LedgerError> {
        let now = self.ledger.now();
        // The storm's own item first, then the route's pointer to it: whoever finds the pointer
        // finds the storm. (The other way round, an invocation could read the pointer before the
        // storm existed, take the storm for over, and free the route under it: its members'
        // recoveries then went nowhere.) Free: a storm id is new, or another invocation starting
        // one in the same second writes the same.
        let storm = Item::default()
            .n(VERSION, now)
            .s(STATE, OPEN)
            .s("route", route)
            .n(COUNT, 0)
            .n(EXPIRES_AT, self.expires());
        let key = format!("storm|{rk}|{now}");
        self.ledger.put(&key, storm, Cond::Free).await?;
        let item = Item::default()
            .n(VERSION, now)
            .s(STATE, OPEN)
            .n(EXPIRES_AT, self.expires());
        match self
            .ledger
            .put_or_get(&format!("storm|{rk}"), item, Cond::NotOpen)
            .await?
        {
            Put::Written => Ok(now),
            Put::Refused(held) => {
                let id = held
                    .and_then(|i| i.get_n(VERSION))
                    .ok_or_else(|| LedgerError("the route's storm item has no version".into()))?;
                if id != now {
                    // Another storm is the route's: ours, never joined, is gone (while untouched).
                    self.ledger.delete(&key, Cond::OpenAt(now, 0)).await?;
                }
                Ok(id)
            }
        }
    }

    /// Which storm `source` belongs to (its latest), and the event time of the latest change it
    /// had on its own while a storm was open (0: none).
    pub async fn membership(
        &self,
        rk: &str,
        source: &str,
    ) -> Result<(Option<i64>, i64), LedgerError> {
        let now = self.ledger.now();
        let item = self
            .ledger
            .get(&format!("storm|{rk}|member|{source}"))
            .await?
            .filter(|i| !i.expired(now));
        Ok(item.map_or((None, 0), |i| {
            (i.get_n(VERSION), i.get_n(ALONE_AT).unwrap_or(0))
        }))
    }

    /// `source`, not a member, had a change of its own at `at` while a storm was open: an older
    /// opening delivered later (a retry) must not join the storm as open.
    pub async fn mark_alone(&self, rk: &str, source: &str, at: i64) -> Result<(), LedgerError> {
        let u = Update {
            set: Item::default()
                .n(ALONE_AT, at)
                .n(EXPIRES_AT, self.expires()),
            guard: Some((ALONE_AT.into(), at)),
            ..Update::default()
        };
        self.ledger
            .update(&format!("storm|{rk}|member|{source}"), u, Cond::Always)
            .await
            .map(|_| ())
    }

    pub async fn enrol(&self, rk: &str, source: &str, id: i64) -> Result<(), LedgerError> {
        let item = Item::default().n(VERSION, id).n(EXPIRES_AT, self.expires());
        self.ledger
            .put(&format!("storm|{rk}|member|{source}"), item, Cond::Always)
            .await
            .map(|_| ())
    }

    /// Keep `member` as `source`'s state in the storm, unless a newer one (or this same
    /// `transition`, a digest of its dedupe key) is kept: true when kept.
    pub async fn keep_member(
        &self,
        storm: &StormRef,
        source: &str,
        transition: &str,
        member: &Member,
    ) -> Result<bool, LedgerError> {
        let shard = shard_of(source);
        let body = serde_json::to_string(member).unwrap_or_default();
        // Ordered by the event's time; two changes within one second by their dedupe keys, so
        // the same change delivered twice is refused (nothing to show again).
        let version =
            member.at * 1000 + i64::from_str_radix(&transition[..3], 16).unwrap_or(0) % 1000;
        let u = Update {
            set: Item::default()
                .s(&format!("m:{source}"), body)
                .n(&format!("v:{source}"), version)
                .n(EXPIRES_AT, self.expires()),
            guard: Some((format!("v:{source}"), version)),
            ..Update::default()
        };
        Ok(self
            .ledger
            .update(&format!("{}|{shard}", storm.item()), u, Cond::Always)
            .await?
            .is_some())
    }

    /// `source`'s state in the storm, if kept.
    pub async fn member(
        &self,
        storm: &StormRef,
        source: &str,
    ) -> Result<Option<Member>, LedgerError> {
        let key = format!("{}|{}", storm.item(), shard_of(source));
        Ok(self.ledger.get(&key).await?.and_then(|i| {
            i.get_s(&format!("m:{source}"))
                .and_then(|m| serde_json::from_str(m).ok())
        }))
    }

    /// Count one change of the storm: its new count, or `None` when the storm is over.
    pub async fn changed(&self, storm: &StormRef) -> Result<Option<i64>, LedgerError> {
        let mut u = Update::default();
        u.add.insert(COUNT.into(), 1);
        Ok(self
            .ledger
            .update(&storm.item(), u, Cond::OpenVersion(storm.id))
            .await?
            .and_then(|i| i.get_n(COUNT)))
    }

    pub async fn tally(&self, storm: &StormRef) -> Result<Tally, LedgerError> {
        let item = self.ledger.get(&storm.item()).await?.unwrap_or_default();
        Ok(Tally {
            count: item.get_n(COUNT).unwrap_or(0),
            open: item.get_s(STATE) == Some(OPEN),
        })
    }

    /// Every member's latest state (one read per shard).
    pub async fn members(&self, storm: &StormRef) -> Result<Vec<Member>, LedgerError> {
        // The shards at once: a flusher holds the digest's lease for one read's time, not 16.
        let keys: Vec<String> = (0..SHARDS)
            .map(|shard| format!("{}|{shard}", storm.item()))
            .collect();
        let shards =
            futures_util::future::try_join_all(keys.iter().map(|k| self.ledger.get(k))).await?;
        let mut out = BTreeMap::new();
        for item in shards.into_iter().flatten() {
            for (k, v) in &item.s {
                if let Some(source) = k.strip_prefix("m:")
                    && let Ok(m) = serde_json::from_str::<Member>(v)
                {
                    out.insert(source.to_owned(), m);
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// Close the storm if nothing changed since `count`: true when closed now. The route's item
    /// is freed for the next storm.
    pub async fn close(&self, storm: &StormRef, count: i64) -> Result<bool, LedgerError> {
        let u = Update {
            set: Item::default().s(STATE, CLOSED),
            ..Update::default()
        };
        if self
            .ledger
            .update(&storm.item(), u.clone(), Cond::OpenAt(storm.id, count))
            .await?
            .is_none()
        {
            return Ok(false);
        }
        self.free_route(storm).await?;
        Ok(true)
    }

    /// The route's item no longer names `storm` as open (it is over).
    pub async fn free_route(&self, storm: &StormRef) -> Result<(), LedgerError> {
        let u = Update {
            set: Item::default().s(STATE, CLOSED),
            ..Update::default()
        };
        self.ledger
            .update(
                &format!("storm|{}", storm.rk),
                u,
                Cond::OpenVersion(storm.id),
            )
            .await
            .map(|_| ())
    }

    fn record_key(storm: &StormRef, dest: &str) -> String {
        format!("digest|{}|{}|{}", storm.rk, storm.id, source_key(dest))
    }

    pub async fn digest_record(
        &self,
        storm: &StormRef,
        dest: &str,
    ) -> Result<DigestRecord, LedgerError> {
        let Some(i) = self.ledger.get(&Self::record_key(storm, dest)).await? else {
            return Ok(DigestRecord::default());
        };
        Ok(DigestRecord {
            channel: i.get_s("channel").map(str::to_owned),
            ts: i.get_s("ts").map(str::to_owned),
            flushed: i.get_n("flushed").unwrap_or(0),
            sent_at: i.get_n("sent_at").unwrap_or(0),
            upto: i.get_n("upto").unwrap_or(0),
            resolved: i.get_n("resolved") == Some(1),
            posted: i.get_n("posted") == Some(1),
        })
    }

    pub async fn save_digest_record(
        &self,
        storm: &StormRef,
        dest: &str,
        r: &DigestRecord,
    ) -> Result<(), LedgerError> {
        let mut item = Item::default()
            .n("flushed", r.flushed)
            .n("sent_at", r.sent_at)
            .n("upto", r.upto)
            .n("resolved", i64::from(r.resolved))
            .n("posted", i64::from(r.posted))
            .n(EXPIRES_AT, self.expires());
        if let (Some(c), Some(t)) = (&r.channel, &r.ts) {
            item = item.s("channel", c.clone()).s("ts", t.clone());
        }
        self.ledger
            .put(&Self::record_key(storm, dest), item, Cond::Always)
            .await
            .map(|_| ())
    }

    /// Take the digest's flusher lease without waiting: `None` when another holds it.
    pub async fn try_flusher(
        &self,
        storm: &StormRef,
        dest: &str,
        deadline: Deadline,
    ) -> Result<Option<i64>, LedgerError> {
        let key = format!("lock|{}", Self::record_key(storm, dest));
        let lease = lease_until(self.ledger.now(), deadline);
        let item = Item::default().n("lease_until", lease).n(EXPIRES_AT, lease);
        Ok(self
            .ledger
            .put(&key, item, Cond::LeaseLapsed)
            .await?
            .then_some(lease))
    }

    /// Whether a live lease is held on the digest's flusher.
    pub async fn flusher_held(&self, storm: &StormRef, dest: &str) -> Result<bool, LedgerError> {
        let key = format!("lock|{}", Self::record_key(storm, dest));
        let now = self.ledger.now();
        Ok(self
            .ledger
            .get(&key)
            .await?
            .and_then(|i| i.get_n("lease_until"))
            .is_some_and(|l| l >= now))
    }

    pub async fn release_flusher(
        &self,
        storm: &StormRef,
        dest: &str,
        lease: i64,
    ) -> Result<(), LedgerError> {
        let key = format!("lock|{}", Self::record_key(storm, dest));
        self.ledger
            .delete(&key, Cond::Holds(lease))
            .await
            .map(|_| ())
    }

    /// Reserve the next slot of `key`'s pace, calls at least `interval_ms` apart across every
    /// invocation, in the order they ask: how long until ours (ms; 0: now). `None` when the next
    /// free slot is more than `max_wait_ms` away (nothing reserved).
    pub async fn rate_slot(
        &self,
        key: &str,
        interval_ms: i64,
        max_wait_ms: i64,
    ) -> Result<Option<i64>, LedgerError> {
        let key = format!("rate|{key}");
        let now = self.ledger.now_ms();
        let item = Item::default()
            .n(VERSION, now + interval_ms)
            .n(EXPIRES_AT, self.ledger.now() + 600);
        // Free now: ours, one conditional write.
        let next = match self
            .ledger
            .put_or_get(&key, item, Cond::NotNewer(now))
            .await?
        {
            // Ours from `now`, the call going when the answer is back: an answer later than the
            // slack (a slow table) would put the call near the next slot's, so take that slot.
            Put::Written if self.ledger.now_ms() - now <= RATE_SLACK_MS => return Ok(Some(0)),
            Put::Written => now + interval_ms,
            Put::Refused(held) => held.and_then(|i| i.get_n(VERSION)).unwrap_or(now),
        };
        if next - now > max_wait_ms {
            return Ok(None);
        }
        // Taken: the next slot is ours, after everyone who asked before us (an atomic add). The
        // item lives past the queue it holds (an expired one would read as free).
        let mut u = Update::default();
        u.add.insert(VERSION.into(), interval_ms);
        u.set = Item::default().n(EXPIRES_AT, self.ledger.now() + 600);
        let ours = self
            .ledger
            .update(&key, u, Cond::Always)
            .await?
            .and_then(|i| i.get_n(VERSION))
            .map_or(next, |v| v - interval_ms);
        // Waited from when the answer came back, not from when we asked: on time, not late by
        // our own round trips.
        Ok(Some((ours - self.ledger.now_ms()).max(0)))
    }
}
