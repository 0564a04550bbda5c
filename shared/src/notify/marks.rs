//! Drain marks kept in the ledger ([`crate::kept_marks`]): `mark|<instance id>`, listed in the
//! item `mark-index` by place, so that the sweep finds them with one read.

use super::book::Book;
use super::deliver::Notifier;
use super::ledger::{EXPIRES_AT, Item, Ledger, LedgerError};
use super::services::Services;
use crate::kept_marks::{KeptMark, MarkLedger, MarkPlace};
use crate::ports::{DrainMark, Registration};

const MARK_INDEX: &str = "mark-index";
const PLACES: &str = "places";
/// A kept mark outlives its time by this much: past it, its instance is long gone or long back
/// (the sweep forgets it sooner, once it sees the container instance gone or ACTIVE).
const MARK_TTL_SECS: i64 = 86_400;

/// `<target group ARN>[:<port>]` back (an ARN's own colons come before its `/` parts, a port
/// after the last `/`).
fn parse_registration(s: &str) -> Registration {
    let (arn, port) = match s.rsplit_once(':') {
        Some((arn, p)) if !p.contains('/') => (arn, p.parse().ok()),
        _ => (s, None),
    };
    Registration {
        target_group_arn: arn.to_owned(),
        port,
        state: "unused".to_owned(),
    }
}

fn key(instance: &str) -> String {
    format!("mark|{instance}")
}

impl<L: Ledger> Book<L> {
    /// Keep `m` unless a mark that `m` does not supersede is kept already.
    pub async fn keep_mark(&self, m: &KeptMark) -> Result<(), LedgerError> {
        if let Some(old) = self.kept_mark(&m.place.instance).await?
            && old.place == m.place
            && !m.mark.supersedes(&old.mark)
        {
            return Ok(());
        }
        let now = self.ledger.now();
        let regs: Vec<String> = m
            .registrations
            .iter()
            .map(|r| match r.port {
                Some(p) => format!("{}:{p}", r.target_group_arn),
                None => r.target_group_arn.clone(),
            })
            .collect();
        let mut item = Item::default()
            .s("mark", m.mark.value())
            .s("place", m.place.entry())
            .n(EXPIRES_AT, m.mark.at.max(now) + MARK_TTL_SECS);
        if !regs.is_empty() {
            item = item.s("registrations", regs.join(" "));
        }
        // The index first: an entry without its item is forgotten by the sweep; an item
        // without its entry would never be found.
        self.ledger
            .set_member(MARK_INDEX, PLACES, &m.place.entry(), true)
            .await?;
        self.ledger
            .put(&key(&m.place.instance), item, super::ledger::Cond::Always)
            .await
            .map(|_| ())
    }

    pub async fn kept_mark(&self, instance: &str) -> Result<Option<KeptMark>, LedgerError> {
        let now = self.ledger.now();
        Ok(self
            .ledger
            .get(&key(instance))
            .await?
            .filter(|i| !i.expired(now))
            .and_then(|i| {
                Some(KeptMark {
                    place: MarkPlace::parse(i.get_s("place")?)?,
                    mark: DrainMark::parse(i.get_s("mark")?)?,
                    registrations: i
                        .get_s("registrations")
                        .unwrap_or("")
                        .split_whitespace()
                        .map(parse_registration)
                        .collect(),
                })
            }))
    }

    pub async fn drop_mark(&self, place: &MarkPlace) -> Result<(), LedgerError> {
        self.ledger
            .delete(&key(&place.instance), super::ledger::Cond::Always)
            .await?;
        self.ledger
            .set_member(MARK_INDEX, PLACES, &place.entry(), false)
            .await
    }

    pub async fn kept_marks(&self) -> Result<Vec<MarkPlace>, LedgerError> {
        Ok(self
            .ledger
            .get(MARK_INDEX)
            .await?
            .and_then(|mut i| i.ss.remove(PLACES))
            .map(|s| s.iter().filter_map(|e| MarkPlace::parse(e)).collect())
            .unwrap_or_default())
    }
}

/// The pipeline's table keeps the marks. A failure is logged and answered as "not kept" or
/// "none": the attribute is still the first place of a mark.
impl<L: Ledger + Clone, S: Services + Clone> MarkLedger for Notifier<L, S> {
    async fn keep_mark(&self, m: &KeptMark) -> bool {
        match self.book.keep_mark(m).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, instance = %m.place.instance, "could not keep the drain mark in the ledger");
                false
            }
        }
    }

    async fn kept_mark(&self, instance: &str) -> Option<KeptMark> {
        self.book.kept_mark(instance).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, instance, "could not read a kept drain mark");
            None
        })
    }

    async fn drop_mark(&self, place: &MarkPlace) {
        if let Err(e) = self.book.drop_mark(place).await {
            tracing::warn!(error = %e, instance = %place.instance, "could not forget a kept drain mark; it expires by itself");
        }
    }

    async fn kept_marks(&self) -> Vec<MarkPlace> {
        self.book.kept_marks().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the kept drain marks");
            Vec::new()
        })
    }
}
