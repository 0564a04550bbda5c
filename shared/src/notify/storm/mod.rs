//! Storms: when more than `sources` sources open incidents on one route within `window_seconds`,
//! the route's later openings go to one **digest** per destination instead of one message each,
//! until the openings calm down; the digest resolves when its last source recovers.
//!
//! - [`book`]: what a storm keeps in the ledger (the openings per window, the route's open storm,
//!   each member's latest state in one of 16 shards, the change counter, each destination's
//!   digest record) and the rate slots every service call takes;
//! - [`flush`]: joining a storm, and the one flusher per digest and destination (a lease) that
//!   folds every change since its last update into the next, at the destination's pace;
//! - this file: the settings and the pure view of a digest ([`Digest`]) as a [`Notification`]
//!   the usual renderers show.
//!
//! SNS is never digested: machine consumers get every transition.

pub mod book;
mod flush;
pub use flush::{Joined, digested};

use super::{Notification, NotificationKind, Phase, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What PagerDuty gets in a storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PagerDutyStorm {
    /// One alert for the whole storm, its sources in `custom_details`.
    #[default]
    Storm,
    /// One alert per source, as outside a storm, paced within the routing key's rate.
    Source,
}

/// A route's `storm` settings (`NOTIFY_ROUTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StormSettings {
    /// Digest storms on this route (false: every transition is its own message, always).
    pub digest: bool,
    /// A storm is more than this many sources opening within the window.
    pub sources: u32,
    pub window_seconds: u64,
    /// The least time between two digest updates at destinations that post a new message per
    /// update (Teams, Slack webhooks) and PagerDuty's alert details. A Slack channel's digest is
    /// updated in place at the channel's pace (one call a second).
    pub update_seconds: u64,
    pub pagerduty: PagerDutyStorm,
}

impl Default for StormSettings {
    fn default() -> Self {
        Self {
            digest: true,
            sources: 10,
            window_seconds: 120,
            update_seconds: 30,
            pagerduty: PagerDutyStorm::Storm,
        }
    }
}

impl StormSettings {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.sources) {
            return Err(format!(
                "storm.sources must be 1 to 10000, got {}",
                self.sources
            ));
        }
        if !(10..=3600).contains(&self.window_seconds) {
            return Err(format!(
                "storm.window_seconds must be 10 to 3600, got {}",
                self.window_seconds
            ));
        }
        if !(1..=300).contains(&self.update_seconds) {
            return Err(format!(
                "storm.update_seconds must be 1 to 300, got {}",
                self.update_seconds
            ));
        }
        Ok(())
    }

    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_seconds)
    }
}

/// One source's latest state in a digest, as kept in its shard (short names: up to thousands
/// of these share 16 items of at most 400 KB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The resource's name (an alarm's), or the notification's title.
    #[serde(rename = "n")]
    pub name: String,
    /// The alarm state, or the incident's phase.
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "r")]
    pub resolved: bool,
    #[serde(rename = "v")]
    pub severity: Severity,
    /// The event's time (seconds since the epoch).
    #[serde(rename = "t")]
    pub at: i64,
    #[serde(rename = "a", default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Member {
    pub fn of(n: &Notification, at: i64) -> Self {
        let name = n.resource_name.clone().unwrap_or_else(|| n.title.clone());
        Self {
            name: crate::text::cut(&name, 200),
            state: n
                .state
                .clone()
                .unwrap_or_else(|| n.phase().as_str().to_owned()),
            resolved: n.phase() == Phase::Resolved,
            severity: n.severity,
            at,
            account: n.source.account_label(),
            link: n
                .links
                .first()
                .map(|l| l.url.clone())
                .filter(|u| u.len() <= 400),
        }
    }
}

/// A digest's content at one count of changes: every member's latest state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub route: String,
    pub members: Vec<Member>,
    /// The latest event time the previous update showed: members after it are new.
    pub since: i64,
}

/// Names listed per section before "…and N more" (the counts are always whole).
const LISTED: usize = 60;

impl Digest {
    pub fn open(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| !m.resolved)
    }

    pub fn all_resolved(&self) -> bool {
        self.open().next().is_none()
    }

    /// Open members by state, and by severity.
    pub fn counts(&self) -> (BTreeMap<&str, usize>, BTreeMap<Severity, usize>) {
        let (mut states, mut severities) = (BTreeMap::new(), BTreeMap::new());
        for m in self.open() {
            *states.entry(m.state.as_str()).or_default() += 1;
            *severities.entry(m.severity).or_default() += 1;
        }
        (states, severities)
    }

    /// The latest event time shown.
    pub fn upto(&self) -> i64 {
        self.members
            .iter()
            .map(|m| m.at)
            .max()
            .unwrap_or(self.since)
    }

    /// The digest as a notification of incident `key`, in `phase`, for the usual renderers.
    pub fn notification(&self, key: &str, phase: Phase) -> Notification {
        let open: Vec<&Member> = {
            let mut v: Vec<&Member> = self.open().collect();
            // The worst first, then the most recent.
            v.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.at.cmp(&a.at)));
            v
        };
        let recovered = self.members.len() - open.len();
        let severity = open.first().map_or(Severity::Info, |m| m.severity);
        let title = if open.is_empty() {
            format!(
                "Storm over on {}: all {} sources recovered",
                self.route,
                self.members.len()
            )
        } else {
            format!(
                "Storm on {}: {} open, {recovered} recovered",
                self.route,
                open.len()
            )
        };
        let (states, severities) = self.counts();
        let join = |m: BTreeMap<String, usize>| {
            m.into_iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        let mut n = Notification::new(NotificationKind::Storm, severity, title, key)
            .incident(key, phase)
            .summary(format!(
                "{} sources opened incidents on route {} within the storm window: one message, \
                 updated as they change, instead of one each. Machine consumers (SNS) still get \
                 every transition.",
                self.members.len(),
                self.route
            ))
            .field(
                "Open by state",
                join(states.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
            )
            .field(
                "Open by severity",
                join(
                    severities
                        .into_iter()
                        .rev()
                        .map(|(k, v)| (k.as_str().to_owned(), v))
                        .collect(),
                ),
            );
        let new: Vec<&Member> = self.members.iter().filter(|m| m.at > self.since).collect();
        n = n
            .field("New since the last update", listed(&new))
            .field(format!("Open ({})", open.len()), listed(&open));
        let done: Vec<&Member> = self.members.iter().filter(|m| m.resolved).collect();
        n = n.field(format!("Recovered ({recovered})"), listed(&done));
        for m in open.iter().filter(|m| m.link.is_some()).take(3) {
            n = n.link(m.name.clone(), m.link.clone().unwrap_or_default());
        }
        n.state = Some(if open.is_empty() { "OK" } else { "ALARM" }.to_owned());
        n.resource_name = Some(format!("storm on {}", self.route));
        n
    }
}

/// Names with their state, at most [`LISTED`], then how many more.
fn listed(members: &[&Member]) -> String {
    let mut out: Vec<String> = members
        .iter()
        .take(LISTED)
        .map(|m| {
            let account = if m.account.is_empty() {
                String::new()
            } else {
                format!(" [{}]", m.account)
            };
            format!("{} ({}){account}", m.name, m.state)
        })
        .collect();
    if members.len() > LISTED {
        out.push(format!("…and {} more", members.len() - LISTED));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, state: &str, severity: Severity, at: i64) -> Member {
        Member {
            name: name.into(),
            state: state.into(),
            resolved: state == "OK",
            severity,
            at,
            account: String::new(),
            link: None,
        }
    }

    #[test]
    fn a_digest_counts_every_member_and_lists_the_worst_first() {
        let mut members = vec![
            member("a", "ALARM", Severity::High, 10),
            member("b", "OK", Severity::High, 11),
            member("c", "INSUFFICIENT_DATA", Severity::Medium, 12),
            member("d", "ALARM", Severity::Critical, 5),
        ];
        for i in 0..100 {
            members.push(member(&format!("x{i}"), "ALARM", Severity::Low, 20 + i));
        }
        let d = Digest {
            route: "payments".into(),
            members,
            since: 11,
        };
        let (states, severities) = d.counts();
        assert_eq!(states["ALARM"], 102);
        assert_eq!(states["INSUFFICIENT_DATA"], 1);
        assert_eq!(severities[&Severity::Critical], 1);
        let n = d.notification("storm|x", Phase::Updated);
        assert_eq!(n.title, "Storm on payments: 103 open, 1 recovered");
        assert_eq!(n.severity, Severity::Critical);
        let open = &n
            .fields
            .iter()
            .find(|f| f.name == "Open (103)")
            .unwrap()
            .value;
        assert!(open.starts_with("d (ALARM), a (ALARM)"), "{open}");
        assert!(open.ends_with("…and 43 more"), "{open}");
        let new = &n.fields[2];
        assert_eq!(new.name, "New since the last update");
        assert!(
            new.value.starts_with("c (INSUFFICIENT_DATA)"),
            "{}",
            new.value
        );
        assert!(!d.all_resolved());
        // Everything recovered: the digest's resolution.
        let done = Digest {
            route: "payments".into(),
            members: vec![member("a", "OK", Severity::High, 30)],
            since: 0,
        };
        assert!(done.all_resolved());
        let n = done.notification("storm|x", Phase::Resolved);
        assert_eq!(n.state.as_deref(), Some("OK"));
        assert!(n.title.starts_with("Storm over on payments"));
    }

    #[test]
    fn settings_have_defaults_and_bounds() {
        let s: StormSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, StormSettings::default());
        assert!(s.check().is_ok());
        let s: StormSettings = serde_json::from_str(r#"{"sources": 0}"#).unwrap();
        assert!(s.check().unwrap_err().contains("storm.sources"));
        assert!(serde_json::from_str::<StormSettings>(r#"{"threshold": 3}"#).is_err());
        assert!(serde_json::from_str::<StormSettings>(r#"{"pagerduty": "each"}"#).is_err());
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod pipeline_tests;
