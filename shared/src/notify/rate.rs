//! Each service's documented rate, kept across every concurrent invocation: before each attempt,
//! a call reserves the next slot of its pace in the ledger (`rate|<pace>`: the time the next
//! call may go; one conditional write when free, else one atomic add that queues it behind
//! everyone who asked before), and waits for it. Calls are spaced, not counted per second: no
//! burst at a second's edge, and no caller starves.
//!
//! - Slack's Web API: `chat.postMessage` (messages, thread replies) one a second per channel;
//!   `chat.update` 50 a minute per workspace (Tier 3);
//! - Slack incoming webhooks: one a second per webhook;
//! - PagerDuty's Events API: 120 events a minute per routing key, two a second;
//! - Teams and SNS: no documented per-destination pace is kept; their 429s and throttling are
//!   honoured by the retry policy (`Retry-After`).
//!
//! When the ledger cannot be reached the call goes ahead unpaced (logged): the service's 429 and
//! `Retry-After` then hold it back.

use super::ledger::Ledger;
use super::services::{self, Call, Failure, Method, Reply, Services};
use super::{Deadline, Destination, Notifier};
use std::time::Duration;

/// The pace a call keeps: its key and the least time between two calls under it (ms), or
/// `None` when none is kept. A quarter over the documented pace, for the time between taking a
/// slot and the request arriving varies (a slow network, a loaded table), and two calls spaced
/// exactly a second apart here may arrive less than a second apart there.
pub fn pace(dest: &Destination, method: Method) -> Option<(String, i64)> {
    match (dest, method) {
        // chat.update is Tier 3 (50+ a minute) per workspace, not per channel.
        (Destination::SlackChannel { .. }, Method::ChatUpdate) => {
            Some(("slack-api:chat.update".to_owned(), 1250))
        }
        // chat.postMessage (messages and thread replies): one a second per channel.
        (Destination::SlackChannel { .. }, _) => Some((dest.id(), 1250)),
        // Incoming webhooks: one a second each.
        (Destination::SlackSecret { .. } | Destination::SlackUrl, _) => Some((dest.id(), 1250)),
        // PagerDuty's Events API: 120 a minute per routing key (96 here).
        (Destination::PagerDuty { .. }, _) => Some((dest.id(), 625)),
        (Destination::Teams { .. } | Destination::Sns { .. }, _) => None,
    }
}

impl<L: Ledger, S: Services> Notifier<L, S> {
    /// One call with the retry policy, each attempt within its pace.
    pub(super) async fn call_service(
        &self,
        dest: &Destination,
        c: &Call,
        deadline: Deadline,
    ) -> Result<Reply, (Failure, usize)> {
        let pace = || self.pace(dest, c.method, deadline);
        services::call_paced(&self.services, dest, c, deadline, self.max_attempts, pace).await
    }

    /// Wait for our slot in the call's pace (never past the deadline).
    async fn pace(
        &self,
        dest: &Destination,
        method: Method,
        deadline: Deadline,
    ) -> Result<(), Failure> {
        let Some((key, interval)) = pace(dest, method) else {
            return Ok(());
        };
        let max_wait = deadline.remaining().saturating_sub(Duration::from_secs(2));
        match self
            .book
            .rate_slot(&key, interval, max_wait.as_millis() as i64)
            .await
        {
            Ok(Some(0)) => Ok(()),
            Ok(Some(wait)) => {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                Ok(())
            }
            Ok(None) => Err(Failure::Throttled {
                retry_after: None,
                detail: format!("no slot in {key}'s pace before the deadline"),
            }),
            Err(e) => {
                tracing::warn!(pace = %key, error = %e, "cannot pace the call (ledger); calling unpaced");
                Ok(())
            }
        }
    }
}
