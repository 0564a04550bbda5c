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
    /// The time of the last opening or resolution shown (RFC 3339, UTC): an event older than it,
    /// arriving late, never overwrites the newer state.
    pub event_time: Option<String>,
}

impl IncidentRecord {
    pub fn is_open(&self) -> bool {
        self.phase.is_some_and(|p| p != Phase::Resolved)
    }
}

/// What a notification asks of its incident at one destination: the phase, with the route's
/// `INSUFFICIENT_DATA` policy applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Open,
    Update,
    /// Update an open incident; never open or reopen one, never page (an alarm's
    /// `INSUFFICIENT_DATA` under the default policy).
    UpdateIfOpen,
    Resolve,
}

impl Transition {
    pub fn of(phase: Phase) -> Self {
        match phase {
            Phase::Opened => Transition::Open,
            Phase::Updated => Transition::Update,
            Phase::Resolved => Transition::Resolve,
        }
    }
}

/// What a destination that keeps one thing per incident does for one transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackStep {
    /// A new message (with the route's mentions).
    Post,
    /// Update the incident's message in place, then reply in its thread.
    Update {
        channel: String,
        ts: String,
    },
    /// Only a reply in the thread: the message keeps its state (a late event, an update of a
    /// resolved incident).
    Reply {
        channel: String,
        ts: String,
        late: bool,
    },
    Nothing,
}

/// Whether `event_time` is older than what the record shows: delivered late.
fn older(record: Option<&IncidentRecord>, event_time: Option<&str>) -> bool {
    match (event_time, record.and_then(|r| r.event_time.as_deref())) {
        (Some(new), Some(old)) => new < old,
        _ => false,
    }
}

/// Slack's Web API: one message per incident (see the table in `docs/incidents.md`).
pub fn slack_step(
    record: Option<&IncidentRecord>,
    t: Transition,
    event_time: Option<&str>,
) -> SlackStep {
    let message = record.and_then(|r| Some((r.channel.clone()?, r.ts.clone()?)));
    let Some((channel, ts)) = message else {
        // No message known: post one, but never for a quiet update (nothing is open).
        return match t {
            Transition::UpdateIfOpen => SlackStep::Nothing,
            _ => SlackStep::Post,
        };
    };
    let open = record.is_some_and(IncidentRecord::is_open);
    if older(record, event_time) {
        return SlackStep::Reply {
            channel,
            ts,
            late: true,
        };
    }
    match (t, open) {
        (Transition::Open, false) => SlackStep::Post,
        (Transition::Resolve, false) => SlackStep::Nothing,
        (Transition::Update | Transition::UpdateIfOpen, false) => SlackStep::Reply {
            channel,
            ts,
            late: false,
        },
        (_, true) => SlackStep::Update { channel, ts },
    }
}

/// What to send PagerDuty: an opening triggers, a resolution resolves, both by the `dedup_key`
/// derived from the incident's key (so a resolve never needs the record). Updates page nobody.
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
    t: Transition,
    event_time: Option<&str>,
) -> Option<PagerDutyAction> {
    if older(record, event_time) {
        return None;
    }
    let open = record.is_some_and(IncidentRecord::is_open);
    match t {
        Transition::Open if !open => Some(PagerDutyAction::Trigger),
        // Always, even when the record says resolved or has none: a trigger may have landed
        // unrecorded (an invocation stopped after its call, found by the incident simulator), and
        // resolving a resolved or unknown key is harmless.
        Transition::Resolve => Some(PagerDutyAction::Resolve),
        _ => None,
    }
}

/// The record once transition `t` of the event at `event_time` (seconds `at`) is applied.
/// Late events change nothing; a quiet update of a closed incident changes nothing.
pub fn next_record(
    record: Option<&IncidentRecord>,
    t: Transition,
    event_time: Option<&str>,
    at: i64,
) -> IncidentRecord {
    let mut next = record.cloned().unwrap_or_default();
    if older(record, event_time) {
        return next;
    }
    let open = next.is_open();
    let phase = match (t, open) {
        (Transition::Open, _) => Phase::Opened,
        (Transition::Resolve, _) => Phase::Resolved,
        (Transition::Update | Transition::UpdateIfOpen, true) => Phase::Updated,
        // An update never reopens what is resolved (or was never opened here).
        (Transition::Update | Transition::UpdateIfOpen, false) => return next,
    };
    if phase == Phase::Opened && !open {
        next.opened_at = Some(at);
    }
    next.phase = Some(phase);
    // Only an opening or a resolution sets the time later events are judged late against: an
    // OK delivered after a newer INSUFFICIENT_DATA still resolves (found by the incident
    // simulator: the OK was taken for late and the page stayed open).
    if phase != Phase::Updated {
        next.event_time = event_time.map(str::to_owned).or(next.event_time);
    }
    next
}

/// How long the incident was open (seconds), from its record and the resolving event's time.
pub fn open_for(record: Option<&IncidentRecord>, resolved_at: i64) -> Option<i64> {
    let from = record?.opened_at?;
    (resolved_at >= from).then_some(resolved_at - from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Transition::*;

    const T0: &str = "2026-01-01T00:00:00Z";
    const LATER: &str = "2026-01-01T01:00:00Z";
    const EARLIER: &str = "2025-12-31T23:00:00Z";

    fn rec(phase: Phase) -> IncidentRecord {
        IncidentRecord {
            channel: Some("C1".into()),
            ts: Some("1.2".into()),
            phase: Some(phase),
            opened_at: Some(100),
            event_time: Some(T0.into()),
        }
    }

    /// The table of `docs/incidents.md`, row by row: the record before, the transition and
    /// whether its event is newer or older than the record's, then what Slack's Web API does,
    /// what PagerDuty gets, and the phase the record shows after.
    #[test]
    fn the_incident_table() {
        #[derive(Debug, PartialEq)]
        enum S {
            Post,
            Update,
            Reply,
            Late,
            Nothing,
        }
        let none = None;
        let open = Some(rec(Phase::Opened));
        let updated = Some(rec(Phase::Updated));
        let resolved = Some(rec(Phase::Resolved));
        use PagerDutyAction::{Resolve as R, Trigger as Tr};
        type Row<'a> = (
            &'a Option<IncidentRecord>,
            Transition,
            &'a str,
            S,
            Option<PagerDutyAction>,
            Option<Phase>,
        );
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            // never seen
            (&none, Open, LATER, S::Post, Some(Tr), Some(Phase::Opened)),
            (&none, Update, LATER, S::Post, None, None),
            (&none, UpdateIfOpen, LATER, S::Nothing, None, None),
            (&none, Resolve, LATER, S::Post, Some(R), Some(Phase::Resolved)),
            // open
            (&open, Open, T0, S::Update, None, Some(Phase::Opened)),
            (&open, Update, LATER, S::Update, None, Some(Phase::Updated)),
            (&open, UpdateIfOpen, LATER, S::Update, None, Some(Phase::Updated)),
            (&updated, UpdateIfOpen, LATER, S::Update, None, Some(Phase::Updated)),
            (&open, Resolve, LATER, S::Update, Some(R), Some(Phase::Resolved)),
            (&updated, Resolve, LATER, S::Update, Some(R), Some(Phase::Resolved)),
            (&open, Resolve, EARLIER, S::Late, None, Some(Phase::Opened)),
            // An OK delivered after a newer INSUFFICIENT_DATA (the update kept the opening's time).
            (&updated, Resolve, T0, S::Update, Some(R), Some(Phase::Resolved)),
            // resolved
            (&resolved, Open, LATER, S::Post, Some(Tr), Some(Phase::Opened)),
            (&resolved, Open, EARLIER, S::Late, None, Some(Phase::Resolved)),
            (&resolved, Update, LATER, S::Reply, None, Some(Phase::Resolved)),
            (&resolved, UpdateIfOpen, LATER, S::Reply, None, Some(Phase::Resolved)),
            (&resolved, Resolve, LATER, S::Nothing, Some(R), Some(Phase::Resolved)),
        ];
        for (i, (record, t, at, slack, pd, after)) in table.into_iter().enumerate() {
            let step = match slack_step(record.as_ref(), t, Some(at)) {
                SlackStep::Post => S::Post,
                SlackStep::Update { .. } => S::Update,
                SlackStep::Reply { late: true, .. } => S::Late,
                SlackStep::Reply { late: false, .. } => S::Reply,
                SlackStep::Nothing => S::Nothing,
            };
            assert_eq!(step, slack, "row {i}: Slack");
            assert_eq!(
                pagerduty_action(record.as_ref(), t, Some(at)),
                pd,
                "row {i}: PagerDuty"
            );
            assert_eq!(
                next_record(record.as_ref(), t, Some(at), 500).phase,
                after,
                "row {i}: record"
            );
        }
    }

    #[test]
    fn a_reopened_incident_counts_from_its_new_opening() {
        let r = next_record(Some(&rec(Phase::Resolved)), Open, Some(LATER), 900);
        assert_eq!(
            (r.opened_at, r.event_time.as_deref()),
            (Some(900), Some(LATER))
        );
        let r = next_record(Some(&rec(Phase::Opened)), Update, Some(LATER), 900);
        assert_eq!(r.opened_at, Some(100), "an update keeps the opening time");
        assert_eq!(
            r.event_time.as_deref(),
            Some(T0),
            "and the opening's event time"
        );
        // Without an event time, the record keeps the last one shown.
        let r = next_record(Some(&rec(Phase::Opened)), Resolve, None, 900);
        assert_eq!(r.event_time.as_deref(), Some(T0));
    }

    #[test]
    fn open_for_counts_from_the_opening() {
        let r = rec(Phase::Opened);
        assert_eq!(open_for(Some(&r), 352), Some(252));
        assert_eq!(open_for(Some(&r), 50), None);
        assert_eq!(open_for(None, 50), None);
    }
}
