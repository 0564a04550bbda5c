//! Each service's documented rate, kept across every concurrent invocation: before each attempt,
//! a call takes one of the destination's slots for the current second in the ledger
//! (`rate|<destination>|<second>`, one atomic add), or waits for the next second.
//!
//! - Slack's Web API: one call a second per channel (`chat.postMessage`'s documented pace;
//!   `chat.update` and thread replies share it, so a channel never sees more than one a second);
//! - Slack incoming webhooks: one a second per webhook;
//! - PagerDuty's Events API: 120 events a minute per routing key, two a second;
//! - Teams and SNS: no documented per-destination pace is kept; their 429s and throttling are
//!   honoured by the retry policy (`Retry-After`).
//!
//! When the ledger cannot be reached the call goes ahead unpaced (logged): the service's 429 and
//! `Retry-After` then hold it back.

use super::ledger::Ledger;
use super::services::{self, Call, Failure, Reply, Services};
use super::{Deadline, Destination, Notifier};
use std::time::Duration;

/// Calls a second the destination takes, or `None` when none is kept.
pub fn per_second(dest: &Destination) -> Option<i64> {
    match dest {
        Destination::SlackChannel { .. } | Destination::SlackSecret { .. } => Some(1),
        Destination::SlackUrl => Some(1),
        Destination::PagerDuty { .. } => Some(2),
        Destination::Teams { .. } | Destination::Sns { .. } => None,
    }
}

impl<L: Ledger, S: Services> Notifier<L, S> {
    /// One call with the retry policy, each attempt within the destination's rate.
    pub(super) async fn call_service(
        &self,
        dest: &Destination,
        c: &Call,
        deadline: Deadline,
    ) -> Result<Reply, (Failure, usize)> {
        let pace = || self.pace(dest, deadline);
        services::call_paced(&self.services, dest, c, deadline, self.max_attempts, pace).await
    }

    /// Wait for a slot in `dest`'s rate (never past the deadline).
    async fn pace(&self, dest: &Destination, deadline: Deadline) -> Result<(), Failure> {
        let Some(limit) = per_second(dest) else {
            return Ok(());
        };
        let key = dest.id();
        loop {
            match self.book.rate_slot(&key, limit).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(destination = %key, error = %e, "cannot pace the call (ledger); calling unpaced");
                    return Ok(());
                }
            }
            if deadline.remaining() < Duration::from_secs(2) {
                return Err(Failure::Throttled {
                    retry_after: None,
                    detail: "no slot in the destination's rate before the deadline".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
