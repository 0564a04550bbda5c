//! Joining a storm, and flushing its digest.
//!
//! A member's change is kept (its shard, then the storm's count: the order matters, for a
//! flusher that reads the count first then sees every change it counts). Then, per digested
//! destination, the change is shown already (the digest's record counts it), or this invocation
//! takes the digest's flusher lease and shows everything up to the latest count, or another live
//! flusher holds it and shows it: after releasing its lease a flusher reads the count again and
//! flushes once more when it moved, so a change counted while it held the lease is never left
//! behind (where it found the next update not due and folded, only when those changes may be the
//! storm's end). A flusher that dies holding the lease fails its invocation, whose retry flushes.

use super::book::{DigestRecord, StormRef, route_key, source_key};
use super::{Digest, Member, PagerDutyStorm, StormSettings};
use crate::notify::deliver::Failed;
use crate::notify::incident::{PagerDutyAction, Transition};
use crate::notify::ledger::{Ledger, LedgerError};
use crate::notify::route::{Destination, Route};
use crate::notify::services::{Call, Method, Services};
use crate::notify::{Deadline, Notification, Notifier, Phase, pagerduty, slack, teams};
use std::time::Duration;

/// A notification that belongs to a storm's digest, and the count of the storm's changes the
/// digest must show for it (its own change's, or the count when it changed nothing).
#[derive(Debug, Clone)]
pub struct Joined {
    pub storm: StormRef,
    pub count: i64,
    /// The change is a recovery (it may be the storm's last: the digest's end goes at once).
    pub resolves: bool,
}

/// Whether `dest` shows a storm as a digest under `settings` (SNS never does).
pub fn digested(dest: &Destination, settings: &StormSettings) -> bool {
    match dest {
        Destination::Sns { .. } => false,
        Destination::PagerDuty { .. } => settings.pagerduty == PagerDutyStorm::Storm,
        _ => true,
    }
}

/// Time kept for the call itself when deciding whether a paced update still fits.
const MARGIN: Duration = Duration::from_secs(4);
/// How long (in quarter seconds) a flusher waits for another invocation to take over.
const HANDOVER_POLLS: usize = 1;
/// A flusher this long at it waits longer for another to take over: its own change was shown
/// long ago, and its invocation has a deadline.
const FLUSHING_LONG: Duration = Duration::from_secs(8);

/// How a flush ended.
enum Flushed {
    /// Everything counted is shown.
    Done,
    /// The next update of a destination that posts a message per update is not due: it comes
    /// with the next change after the interval, or the storm's end. Holds the count it read
    /// and how many members were open in what it read.
    Later { seen: i64, open: usize },
    /// Slack's in-place update is due in this many seconds, after this invocation's deadline.
    DueAfterDeadline(i64),
}

impl<L: Ledger, S: Services> Notifier<L, S> {
    /// The storm `n` belongs to on `route`, its change kept; `None`: its own messages. A ledger
    /// problem sends it on its own (a flood rather than a loss).
    pub(in crate::notify) async fn storm_of(
        &self,
        n: &Notification,
        route: &Route,
        t: Transition,
    ) -> Option<Joined> {
        let settings = &route.storm;
        if !settings.digest || !route.destinations.iter().any(|d| digested(d, settings)) {
            return None;
        }
        // Boxed, like the digest's flush: nested in every caller's future they would overflow
        // rustc's query depth computing its layout.
        match Box::pin(self.join_storm(n, route, t)).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep storm bookkeeping; sent on its own");
                None
            }
        }
    }

    async fn join_storm(
        &self,
        n: &Notification,
        route: &Route,
        t: Transition,
    ) -> Result<Option<Joined>, LedgerError> {
        let name = route.rules.join("+");
        let rk = route_key(&name);
        let source = source_key(n.incident_key());
        let open = self.book.open_storm(&rk).await?;
        let (pointer, alone_at) = self.book.membership(&rk, &source).await?;
        let at = crate::notify::keep::event_epoch(n);
        let mut id = open.filter(|o| pointer == Some(*o));
        if id.is_none()
            && let Some(p) = pointer
        {
            // A member of a storm that is over, with an event no newer than the digest keeps (a
            // late delivery, a retry, a redrive): it is the digest's to show (its last update
            // may be what that retry owes), never a message of its own.
            let over = StormRef {
                route: name.clone(),
                rk: rk.clone(),
                id: p,
            };
            if self
                .book
                .member(&over, &source)
                .await?
                .is_some_and(|m| m.at >= at)
            {
                let count = self.book.tally(&over).await?.count;
                return Ok(Some(Joined {
                    storm: over,
                    count,
                    resolves: true,
                }));
            }
        }
        if id.is_none() && t == Transition::Open {
            let window = route.storm.window_seconds as i64;
            let opened = self.book.opened(&rk, &source, window).await?;
            // A source with its own open incident keeps it: its resolution goes there.
            // An opening older than a change the source had on its own during the storm (a
            // retry delivered after its recovery) stays on its own, where it is ordered.
            if opened > route.storm.sources as usize
                && alone_at < at
                && !self.open_alone(n, route).await?
            {
                let storm = match open {
                    Some(id) => id,
                    None => self.book.start(&name, &rk).await?,
                };
                self.book.enrol(&rk, &source, storm).await?;
                id = Some(storm);
            }
        }
        let Some(id) = id else {
            if open.is_some() && t != Transition::Open {
                self.book.mark_alone(&rk, &source, at).await?;
            }
            return Ok(None);
        };
        let storm = StormRef {
            route: name,
            rk,
            id,
        };
        // Nothing new to show; but the digest is seen up to date (this may be the retry of an
        // invocation that kept its change and stopped before showing it).
        let unchanged = async |storm: StormRef| {
            let count = self.book.tally(&storm).await?.count;
            Ok(Some(Joined {
                storm,
                count,
                resolves: true,
            }))
        };
        if matches!(t, Transition::Update | Transition::UpdateIfOpen)
            && self
                .book
                .member(&storm, &source)
                .await?
                .is_none_or(|m| m.resolved)
        {
            // An update never reopens a member that recovered (as an incident's never does).
            return unchanged(storm).await;
        }
        let member = Member::of(n, crate::notify::keep::event_epoch(n));
        let change = crate::notify::digest(&n.dedupe_key);
        if !self
            .book
            .keep_member(&storm, &source, &change, &member)
            .await?
        {
            // An older event than the one the digest shows, or this one again: nothing changes.
            return unchanged(storm).await;
        }
        match self.book.changed(&storm).await? {
            Some(count) => Ok(Some(Joined {
                storm,
                count,
                resolves: member.resolved,
            })),
            // Over between our reads (another destination's flusher saw every member recovered,
            // ours included, and closed it): a recovery is the digests' to show over, at every
            // destination, whichever flusher folded it before.
            None if member.resolved => unchanged(storm).await,
            None => {
                // A new opening after the end: on its own, and the route free for the next storm.
                self.book.free_route(&storm).await?;
                Ok(None)
            }
        }
    }

    /// Whether `n`'s source has an open incident of its own at a destination of `route`, or
    /// this very change is being (or was) sent there on its own (a duplicate delivery).
    async fn open_alone(&self, n: &Notification, route: &Route) -> Result<bool, LedgerError> {
        for dest in &route.destinations {
            if matches!(
                dest,
                Destination::SlackChannel { .. } | Destination::PagerDuty { .. }
            ) {
                let pk = crate::notify::keep::incident_pk(n.incident_key(), &dest.id());
                if self.book.record(&pk).await?.is_some_and(|r| r.is_open()) {
                    return Ok(true);
                }
                let claim = crate::notify::deliver::dedupe_key(&n.dedupe_key, &dest.id());
                if self.book.ledger.get(&claim).await?.is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// See `j`'s change shown at `dest`: shown already, shown by us as the flusher, or left to a
    /// live flusher. `Err`: the digest could not be updated (the invocation fails and is retried).
    pub(in crate::notify) async fn digest_to(
        &self,
        dest: &Destination,
        j: &Joined,
        route: &Route,
        deadline: Deadline,
    ) -> Result<&'static str, String> {
        let id = dest.id();
        let ledger = |e: LedgerError| format!("storm digest: {e}");
        let mut flushed_by_us = false;
        let started = tokio::time::Instant::now();
        loop {
            let rec = self
                .book
                .digest_record(&j.storm, &id)
                .await
                .map_err(ledger)?;
            // A destination that posts a message per update, updated less than its interval
            // ago: this change goes into its next update (the next change after the interval, or
            // the storm's end, which a recovery may be), with no lease taken and nothing read.
            let due = rec.sent_at + interval(dest, &route.storm) <= self.book.ledger.now();
            if !flushed_by_us
                && rec.flushed < j.count
                && rec.posted
                && !due
                && !j.resolves
                && !matches!(dest, Destination::SlackChannel { .. })
            {
                return Ok("folded into the digest's next update");
            }
            // Not shown yet: no need to read the storm's count to know it (one read less per
            // change and destination, in a storm).
            if !flushed_by_us && rec.flushed < j.count {
                if let Some(done) = self.flush_as_leader(dest, j, route, deadline).await? {
                    return Ok(done);
                }
                flushed_by_us = true;
                continue;
            }
            let tally = self.book.tally(&j.storm).await.map_err(ledger)?;
            // A storm that is over is shown over; a change counted while we held the lease is
            // ours to show (its writer left).
            let upto = if flushed_by_us { tally.count } else { j.count };
            if rec.flushed >= upto && (tally.open || rec.resolved) {
                return Ok(if flushed_by_us {
                    "updated the storm's digest"
                } else {
                    "in the storm's digest"
                });
            }
            // Changes came while we flushed: in a storm still going, the next invocation takes
            // the lease and shows them; else we do.
            // One that has flushed for a while waits longer for another to take over.
            let polls = if started.elapsed() > FLUSHING_LONG {
                4 * HANDOVER_POLLS
            } else {
                HANDOVER_POLLS
            };
            if flushed_by_us && self.taken_over(dest, &j.storm, polls).await? {
                return Ok("updated the storm's digest (handed over to another invocation)");
            }
            if let Some(done) = self.flush_as_leader(dest, j, route, deadline).await? {
                return Ok(done);
            }
            flushed_by_us = true;
        }
    }

    /// Take the digest's lease and flush: `None` when flushed (the caller checks for changes
    /// that came meanwhile), else how this change is, or will be, shown.
    async fn flush_as_leader(
        &self,
        dest: &Destination,
        j: &Joined,
        route: &Route,
        deadline: Deadline,
    ) -> Result<Option<&'static str>, String> {
        let id = dest.id();
        let ledger = |e: LedgerError| format!("storm digest: {e}");
        let unshown = loop {
            let Some(lease) = self
                .book
                .try_flusher(&j.storm, &id, deadline)
                .await
                .map_err(ledger)?
            else {
                return Ok(Some(
                    "in the storm's digest (another invocation is updating it)",
                ));
            };
            let out = Box::pin(self.flush(dest, &j.storm, route, deadline)).await;
            if let Err(e) = self.book.release_flusher(&j.storm, &id, lease).await {
                tracing::warn!(error = %e, "could not release the digest's lease; it runs out by itself");
            }
            match out.map_err(|f| f.why)? {
                Flushed::Done => return Ok(None),
                Flushed::Later { seen, open } => {
                    // The changes counted while we held the lease were left to us by their
                    // writers. Folded, unless they may be the storm's end: each member open in
                    // what we read recovering takes a change counted after `seen` (its shard is
                    // written before it is counted), so fewer changes than open members cannot
                    // be the end. Else flush again, to show it.
                    // Closed meanwhile (by another destination's flusher): show it over.
                    let tally = self.book.tally(&j.storm).await.map_err(ledger)?;
                    if tally.open && tally.count - seen < open as i64 {
                        return Ok(Some("folded into the digest's next update"));
                    }
                    // Changes keep coming as long as the storm does: past our time, hand over.
                    if deadline.remaining() < MARGIN {
                        break "storm digest changes kept coming until this invocation's deadline"
                            .to_owned();
                    }
                }
                Flushed::DueAfterDeadline(wait) => {
                    break format!(
                        "storm digest update due in {wait} s, after this invocation's deadline"
                    );
                }
            }
        };
        // Wait for a taker as long as the deadline allows: in a storm still going, the next
        // invocation comes within that.
        let polls = (deadline
            .remaining()
            .saturating_sub(Duration::from_secs(1))
            .as_millis()
            / 250) as usize;
        if self.taken_over(dest, &j.storm, polls.max(2)).await? {
            Ok(Some(
                "in the storm's digest (handed over to another invocation)",
            ))
        } else {
            Err(format!(
                "{unshown}, and no other invocation took it over; retried to show it"
            ))
        }
    }

    /// Whether, within `polls` half seconds, another invocation took the digest's lease (it
    /// shows every change up to the count it reads) or everything counted was shown.
    async fn taken_over(
        &self,
        dest: &Destination,
        storm: &StormRef,
        polls: usize,
    ) -> Result<bool, String> {
        let id = dest.id();
        let ledger = |e: LedgerError| format!("storm digest: {e}");
        for _ in 0..polls {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if self.book.flusher_held(storm, &id).await.map_err(ledger)? {
                return Ok(true);
            }
            let tally = self.book.tally(storm).await.map_err(ledger)?;
            let rec = self.book.digest_record(storm, &id).await.map_err(ledger)?;
            if rec.flushed >= tally.count && (tally.open || rec.resolved) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Holding the lease: show every change up to the storm's latest count at `dest`.
    async fn flush(
        &self,
        dest: &Destination,
        storm: &StormRef,
        route: &Route,
        deadline: Deadline,
    ) -> Result<Flushed, Failed> {
        let id = dest.id();
        let ledger = |e: LedgerError| Failed::known(format!("storm digest: {e}"));
        loop {
            let tally = self.book.tally(storm).await.map_err(ledger)?;
            let mut rec = self.book.digest_record(storm, &id).await.map_err(ledger)?;
            if rec.flushed >= tally.count && (tally.open || rec.resolved) {
                return Ok(Flushed::Done);
            }
            let members = self.book.members(storm).await.map_err(ledger)?;
            let digest = Digest {
                route: storm.route.clone(),
                members,
                since: rec.upto,
            };
            // A closed storm shows over, whatever reached a shard after it closed (sent on its own).
            let resolved = digest.all_resolved() || !tally.open;
            let phase = match (resolved, rec.posted) {
                (true, _) => Phase::Resolved,
                (false, true) => Phase::Updated,
                (false, false) => Phase::Opened,
            };
            // An update waits for the destination's interval since the last one, folding in
            // whatever else changes meanwhile. The opening and the end go at once.
            if phase == Phase::Updated {
                let wait = rec.sent_at + interval(dest, &route.storm) - self.book.ledger.now();
                if wait > 0 {
                    if !matches!(dest, Destination::SlackChannel { .. }) {
                        // A new message per update: never waited for; the next change after the
                        // interval (or the storm's end) shows this one too.
                        return Ok(Flushed::Later {
                            seen: tally.count,
                            open: digest.open().count(),
                        });
                    }
                    if deadline.remaining() < Duration::from_secs(wait as u64) + MARGIN {
                        return Ok(Flushed::DueAfterDeadline(wait));
                    }
                    tokio::time::sleep(Duration::from_secs(wait as u64)).await;
                    continue;
                }
            }
            // The call waits for its slot in the destination's pace: time for it, or hand over.
            let pace = crate::notify::rate::pace(dest, Method::ChatUpdate).map_or(0, |(_, ms)| ms);
            if deadline.remaining() < Duration::from_millis(pace as u64) + MARGIN {
                return Ok(Flushed::DueAfterDeadline((pace + 999) / 1000));
            }
            let n = digest.notification(&storm.incident_key(), phase);
            self.show(dest, &n, route, &mut rec, deadline).await?;
            rec.flushed = tally.count;
            rec.sent_at = self.book.ledger.now();
            rec.upto = digest.upto();
            rec.posted = true;
            rec.resolved = resolved
                && (!tally.open || self.book.close(storm, tally.count).await.map_err(ledger)?);
            if let Err(e) = self.book.save_digest_record(storm, &id, &rec).await {
                // Shown already: the next flush shows it again (an update), never loses it.
                tracing::warn!(error = %e, "could not keep the digest's record");
            }
        }
    }

    /// Send the digest `n` to `dest`, keeping Slack's message in `rec`.
    async fn show(
        &self,
        dest: &Destination,
        n: &Notification,
        route: &Route,
        rec: &mut DigestRecord,
        deadline: Deadline,
    ) -> Result<(), Failed> {
        let call = |method, body| async move {
            let c = Call {
                method,
                body,
                origin: n.dedupe_key.clone(),
            };
            self.call_service(dest, &c, deadline)
                .await
                .map_err(|e| Failed::call(method.as_str(), e))
        };
        let mentions: &[String] = if rec.posted { &[] } else { &route.mentions };
        match dest {
            Destination::SlackChannel { channel } => {
                if let (Some(ch), Some(ts)) = (rec.channel.clone(), rec.ts.clone()) {
                    match call(Method::ChatUpdate, slack::update_message(n, &ch, &ts)).await {
                        Ok(_) => return Ok(()),
                        Err(f) if f.gone => {
                            tracing::warn!(error = %f.why, "digest message can no longer be edited; posting a new one");
                        }
                        Err(f) => return Err(f),
                    }
                }
                let reply = call(
                    Method::ChatPostMessage,
                    slack::post_message(n, channel, mentions),
                )
                .await?;
                rec.channel = reply.0["channel"].as_str().map(str::to_owned);
                rec.ts = reply.0["ts"].as_str().map(str::to_owned);
                Ok(())
            }
            Destination::SlackUrl | Destination::SlackSecret { .. } => {
                call(Method::Webhook, slack::render_with(n, mentions))
                    .await
                    .map(|_| ())
            }
            Destination::Teams { .. } => call(Method::Webhook, teams::render(n)).await.map(|_| ()),
            Destination::PagerDuty { .. } => {
                let action = if n.phase() == Phase::Resolved {
                    PagerDutyAction::Resolve
                } else {
                    PagerDutyAction::Trigger
                };
                call(Method::Enqueue, pagerduty::render(n, action, ""))
                    .await
                    .map(|_| ())
            }
            Destination::Sns { .. } => {
                Err(Failed::known("SNS gets every transition, never a digest"))
            }
        }
    }
}

/// The least time between two digest updates at `dest` (seconds).
fn interval(dest: &Destination, settings: &StormSettings) -> i64 {
    match dest {
        // In place, at the channel's pace.
        Destination::SlackChannel { .. } => 1,
        _ => settings.update_seconds as i64,
    }
}
