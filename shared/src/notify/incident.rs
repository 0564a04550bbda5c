//! Incidents: every notification is a phase (opened, updated, resolved) of an incident with a
//! stable key (an alarm's ARN, an instance's drain, a service's deployment, a maintenance event and
//! instance). Destinations that can keep one thing per incident (a Slack Web API message updated in
//! place, a PagerDuty alert) keep what they need in the dedupe table, under
//! `incident|<key>|<destination>`; this module holds the pure decisions over that record.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Opened,
    Updated,
    Resolved,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Opened => "opened",
            Phase::Updated => "updated",
            Phase::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opened" => Some(Phase::Opened),
            "updated" => Some(Phase::Updated),
            "resolved" => Some(Phase::Resolved),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Incident {
    pub key: String,
    pub phase: Phase,
}

/// The incident of an instance leaving service (a Spot interruption, a stop, a drain before
/// termination): one key whichever function sees it first, so Slack shows one message from the
/// warning to the drained instance.
pub fn drain_key(instance_id: &str, dry_run: bool) -> String {
    format!(
        "drain|{instance_id}{}",
        if dry_run { "|dry-run" } else { "" }
    )
}

/// What a destination keeps of an incident (one item in the dedupe table).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncidentRecord {
    /// Slack: the channel's ID and the message's `ts`, as `chat.postMessage` answered.
    pub channel: Option<String>,
    pub ts: Option<String>,
    /// The phase last shown.
    pub phase: Option<Phase>,
    /// When the incident opened (the event's time, seconds since the epoch).
    pub opened_at: Option<i64>,
    /// The time of the event last shown (RFC 3339, UTC): an older one arriving late never
    /// overwrites a newer state.
    pub event_time: Option<String>,
}

impl IncidentRecord {
    pub fn is_open(&self) -> bool {
        self.phase.is_some_and(|p| p != Phase::Resolved)
    }

    /// The record once `n` is shown: its phase, and its event's time (kept when it has none).
    pub fn shown(mut self, n: &super::Notification) -> Self {
        self.phase = Some(n.phase());
        self.event_time = n.source.event_time.clone().or(self.event_time);
        self
    }
}

/// What to do in Slack (Web API) for a notification, given the incident's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackStep {
    /// A new message: no record, or the last incident under this key was resolved and this one
    /// opens a new one.
    Post,
    /// Update the incident's message in place and reply in its thread. `refresh` is false when
    /// the notification is older than what the message shows (delivered late): the message keeps
    /// its newer state and the thread still gets the reply.
    Update {
        channel: String,
        ts: String,
        refresh: bool,
    },
}

pub fn slack_step(
    record: Option<&IncidentRecord>,
    phase: Phase,
    event_time: Option<&str>,
) -> SlackStep {
    let Some(r) = record else {
        return SlackStep::Post;
    };
    let (Some(channel), Some(ts)) = (r.channel.clone(), r.ts.clone()) else {
        return SlackStep::Post;
    };
    let newer_or_same = match (event_time, r.event_time.as_deref()) {
        (Some(new), Some(old)) => new >= old,
        _ => true,
    };
    if !r.is_open() && phase == Phase::Opened && newer_or_same {
        return SlackStep::Post;
    }
    SlackStep::Update {
        channel,
        ts,
        refresh: newer_or_same,
    }
}

/// What to send PagerDuty: open and update trigger (PagerDuty folds a trigger with a live
/// `dedup_key` into the open alert), resolve resolves. A resolve for an incident this destination
/// never triggered is skipped (known only with the table; without it, resolve is sent and
/// PagerDuty ignores an unknown key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagerDutyAction {
    Trigger,
    Resolve,
}

impl PagerDutyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PagerDutyAction::Trigger => "trigger",
            PagerDutyAction::Resolve => "resolve",
        }
    }
}

pub fn pagerduty_action(
    record: Option<&IncidentRecord>,
    phase: Phase,
    event_time: Option<&str>,
    with_table: bool,
) -> Option<PagerDutyAction> {
    let older = match (event_time, record.and_then(|r| r.event_time.as_deref())) {
        (Some(new), Some(old)) => new < old,
        _ => false,
    };
    match phase {
        // A trigger older than a resolve already sent would reopen what is over.
        Phase::Opened | Phase::Updated
            if older && record.is_some_and(|r| r.phase == Some(Phase::Resolved)) =>
        {
            None
        }
        Phase::Opened | Phase::Updated => Some(PagerDutyAction::Trigger),
        Phase::Resolved if with_table && !record.is_some_and(IncidentRecord::is_open) => None,
        Phase::Resolved => Some(PagerDutyAction::Resolve),
    }
}

/// How long the incident was open (seconds), from its record and the resolving event's time.
pub fn open_for(record: Option<&IncidentRecord>, resolved_at: i64) -> Option<i64> {
    let from = record?.opened_at?;
    (resolved_at >= from).then_some(resolved_at - from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(phase: Phase, at: &str) -> IncidentRecord {
        IncidentRecord {
            channel: Some("C1".into()),
            ts: Some("1.2".into()),
            phase: Some(phase),
            opened_at: Some(100),
            event_time: Some(at.into()),
        }
    }

    #[test]
    fn slack_posts_once_then_updates() {
        assert_eq!(slack_step(None, Phase::Resolved, None), SlackStep::Post);
        let open = rec(Phase::Opened, "2026-01-01T00:00:00Z");
        assert_eq!(
            slack_step(Some(&open), Phase::Resolved, Some("2026-01-01T00:05:00Z")),
            SlackStep::Update {
                channel: "C1".into(),
                ts: "1.2".into(),
                refresh: true
            }
        );
        // A duplicate opening of a live incident updates, never posts again.
        assert!(matches!(
            slack_step(Some(&open), Phase::Opened, Some("2026-01-01T00:00:00Z")),
            SlackStep::Update { .. }
        ));
        // Resolved, then opened again later: a new incident, a new message.
        let done = rec(Phase::Resolved, "2026-01-01T00:05:00Z");
        assert_eq!(
            slack_step(Some(&done), Phase::Opened, Some("2026-01-01T01:00:00Z")),
            SlackStep::Post
        );
        // The ALARM delivered after its OK: the message stays resolved, the thread says it.
        assert_eq!(
            slack_step(Some(&done), Phase::Opened, Some("2026-01-01T00:00:00Z")),
            SlackStep::Update {
                channel: "C1".into(),
                ts: "1.2".into(),
                refresh: false
            }
        );
        // A record without a message (posting failed half-way): post.
        let empty = IncidentRecord::default();
        assert_eq!(
            slack_step(Some(&empty), Phase::Updated, None),
            SlackStep::Post
        );
    }

    #[test]
    fn pagerduty_triggers_and_resolves() {
        use PagerDutyAction::*;
        assert_eq!(
            pagerduty_action(None, Phase::Opened, None, true),
            Some(Trigger)
        );
        assert_eq!(pagerduty_action(None, Phase::Resolved, None, true), None);
        assert_eq!(
            pagerduty_action(None, Phase::Resolved, None, false),
            Some(Resolve)
        );
        let open = rec(Phase::Opened, "2026-01-01T00:00:00Z");
        assert_eq!(
            pagerduty_action(
                Some(&open),
                Phase::Resolved,
                Some("2026-01-01T00:05:00Z"),
                true
            ),
            Some(Resolve)
        );
        let done = rec(Phase::Resolved, "2026-01-01T00:05:00Z");
        assert_eq!(
            pagerduty_action(
                Some(&done),
                Phase::Opened,
                Some("2026-01-01T00:00:00Z"),
                true
            ),
            None,
            "a late trigger never reopens"
        );
        assert_eq!(
            pagerduty_action(
                Some(&done),
                Phase::Opened,
                Some("2026-01-01T02:00:00Z"),
                true
            ),
            Some(Trigger)
        );
        assert_eq!(
            pagerduty_action(Some(&done), Phase::Resolved, None, true),
            None
        );
    }

    #[test]
    fn open_for_and_shown() {
        let r = rec(Phase::Opened, "x");
        assert_eq!(open_for(Some(&r), 352), Some(252));
        assert_eq!(open_for(Some(&r), 50), None);
        assert_eq!(open_for(None, 50), None);
        let mut n = crate::notify::Notification::new(
            crate::notify::NotificationKind::Alarm,
            crate::notify::Severity::High,
            "t",
            "k",
        )
        .incident("a", Phase::Resolved);
        let next = r.clone().shown(&n);
        assert_eq!(next.phase, Some(Phase::Resolved));
        assert_eq!(next.event_time.as_deref(), Some("x"), "kept without a time");
        n.source.event_time = Some("y".into());
        assert_eq!(r.shown(&n).event_time.as_deref(), Some("y"));
    }
}
