//! The destinations that keep one thing per incident (Slack's Web API: one message; PagerDuty:
//! one alert): one phase at a time under the incident's lock, its record read, the pure
//! decision of `incident.rs` applied, the service called, the record saved.

use super::deliver::Failed;
use super::deliver::dedupe_key;
use super::incident::{self, IncidentRecord, PagerDutyAction, SlackStep, Transition};
use super::ledger::Ledger;
use super::route::Destination;
use super::services::{Call, Method, Services};
use super::{Deadline, Notification, Notifier, Phase, pagerduty, slack};

impl<L: Ledger, S: Services> Notifier<L, S> {
    /// Deliver `n` holding its incident's lock for `dest` (waiting for another holder).
    pub(super) async fn keep(
        &self,
        dest: &Destination,
        n: &Notification,
        t: Transition,
        mentions: &[String],
        deadline: Deadline,
    ) -> Result<&'static str, Failed> {
        let pk = incident_pk(n.incident_key(), &dest.id());
        let lease = match self.book.lock(&pk, deadline).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                return Err(Failed::known(
                    "another invocation held this incident until the deadline",
                ));
            }
            Err(e) => return Err(Failed::known(format!("cannot lock the incident: {e}"))),
        };
        let done = self.incident(&pk, dest, n, t, mentions, deadline).await;
        if let Err(e) = self.book.unlock(&pk, lease).await {
            tracing::warn!(error = %e, "could not release the incident lock; it runs out by itself");
        }
        done
    }

    /// One phase of an incident at a destination that keeps one thing per incident, under its lock.
    async fn incident(
        &self,
        pk: &str,
        dest: &Destination,
        n: &Notification,
        t: Transition,
        mentions: &[String],
        deadline: Deadline,
    ) -> Result<&'static str, Failed> {
        let record = self
            .book
            .record(pk)
            .await
            .map_err(|e| Failed::known(format!("cannot read the incident record: {e}")))?;
        let event_time = n.source.event_time.as_deref();
        let next = incident::next_record(record.as_ref(), t, event_time, event_epoch(n));
        let call = |method, body| async move {
            let c = Call {
                method,
                body,
                origin: n.dedupe_key.clone(),
            };
            self.call_service(dest, &c, deadline)
                .await
                // Slack's errors name the method; PagerDuty has one.
                .map_err(|e| {
                    Failed::call(
                        if method == Method::Enqueue {
                            ""
                        } else {
                            method.as_str()
                        },
                        e,
                    )
                })
        };
        let done = match dest {
            Destination::PagerDuty { .. } => {
                match incident::pagerduty_action(record.as_ref(), t, event_time) {
                    None => "nothing to do in PagerDuty (not opened, already so, or a late event)",
                    Some(action) => {
                        call(Method::Enqueue, pagerduty::render(n, action, "")).await?;
                        match action {
                            PagerDutyAction::Trigger => "triggered",
                            PagerDutyAction::Resolve => "resolved",
                        }
                    }
                }
            }
            Destination::SlackChannel { channel } => {
                let mut shown = n.clone();
                if n.phase() == Phase::Resolved
                    && let Some(secs) = incident::open_for(record.as_ref(), event_epoch(n))
                {
                    shown = shown.field("Open for", crate::time::human_duration(secs));
                }
                match incident::slack_step(record.as_ref(), t, event_time) {
                    SlackStep::Nothing => "nothing to change in Slack",
                    SlackStep::Reply { channel, ts, late } => {
                        call(
                            Method::ChatPostMessage,
                            slack::thread_reply(n, &channel, &ts, late),
                        )
                        .await?;
                        "replied in the thread"
                    }
                    SlackStep::Post => {
                        let posted =
                            self.post(pk, dest, channel, &shown, mentions, &next, deadline);
                        return posted.await;
                    }
                    SlackStep::Update { channel: id, ts } => {
                        match call(Method::ChatUpdate, slack::update_message(&shown, &id, &ts))
                            .await
                        {
                            Ok(_) => {}
                            Err(f) if f.gone => {
                                // Deleted, or past the workspace's edit window: a new message,
                                // linked from the old one when it is still there.
                                tracing::warn!(destination = %dest.id(), error = %f.why, "incident message can no longer be edited; posting a new one");
                                let shown = shown.field(
                                    "Earlier message",
                                    format!("{ts} (can no longer be edited)"),
                                );
                                let done = self
                                    .post(pk, dest, channel, &shown, mentions, &next, deadline)
                                    .await?;
                                let note = slack::continued(&id, &ts);
                                if let Err(e) = call(Method::ChatPostMessage, note).await {
                                    tracing::info!(error = %e.why, "could not link the old message to the new one");
                                }
                                return Ok(done);
                            }
                            Err(f) => return Err(f),
                        }
                        call(
                            Method::ChatPostMessage,
                            slack::thread_reply(n, &id, &ts, false),
                        )
                        .await?;
                        "updated its message and replied in the thread"
                    }
                }
            }
            other => {
                return Err(Failed::known(format!(
                    "{} keeps nothing per incident",
                    other.id()
                )));
            }
        };
        if record.as_ref() != Some(&next) {
            self.save(pk, &next).await;
        }
        Ok(done)
    }

    /// The incident's new Slack message (`shown`, with the mentions), and its record.
    #[allow(clippy::too_many_arguments)]
    async fn post(
        &self,
        pk: &str,
        dest: &Destination,
        channel: &str,
        shown: &Notification,
        mentions: &[String],
        next: &IncidentRecord,
        deadline: Deadline,
    ) -> Result<&'static str, Failed> {
        let c = Call {
            method: Method::ChatPostMessage,
            body: slack::post_message(shown, channel, mentions),
            origin: shown.dedupe_key.clone(),
        };
        let reply = self
            .call_service(dest, &c, deadline)
            .await
            .map_err(|e| Failed::call("chat.postMessage", e))?;
        let mut next = next.clone();
        next.channel = reply.0["channel"].as_str().map(str::to_owned);
        next.ts = reply.0["ts"].as_str().map(str::to_owned);
        if next.phase.is_none() {
            next.phase = Some(shown.phase());
        }
        self.save(pk, &next).await;
        Ok("posted the incident's message")
    }

    /// Keep the incident's record. A failure is logged, not raised: the message is out, and
    /// failing now would only send it again. The next phase then posts a new Slack message.
    async fn save(&self, pk: &str, r: &IncidentRecord) {
        if let Err(e) = self.book.save(pk, r).await {
            tracing::warn!(error = %e, "could not keep the incident record; its next phase may post a new message");
        }
    }
}

/// The incident record's key for one destination.
pub(super) fn incident_pk(incident_key: &str, destination: &str) -> String {
    format!("incident|{}", dedupe_key(incident_key, destination))
}

/// The notification's event time in seconds since the epoch (now when it has none).
pub(super) fn event_epoch(n: &Notification) -> i64 {
    n.source
        .event_time
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(crate::time::now_epoch, |t| t.timestamp())
}
