//! One notification pipeline for every function: a function builds a [`Notification`] and hands
//! it to the [`Notifier`], which routes it by rules to SNS topics, Slack (webhooks or the Web API),
//! PagerDuty and Microsoft Teams, and delivers it to each destination on its own. Every
//! notification is a phase of an [`Incident`]. The path reads straight down:
//!
//! - [`route`]: which destinations;
//! - [`deliver`]: per destination, claim → lock → [`incident`] decision → [`services`] call → record;
//! - [`incident`]: the pure state machine (record + transition → what to send, the next record);
//! - [`services`]: the destination port and its one retry policy; [`destinations`]: its adapter
//!   ([`destinations::Live`]), one file per service, each with its fake, with the renderers [`slack`], [`sns`], [`pagerduty`], [`teams`];
//! - [`book`] over the [`ledger`] port: claims, incident records and locks, facts, the stash
//!   ([`ledger_dynamodb`] adapter, or [`ledger::MemoryLedger`]);
//! - [`storm`]: many sources opening on one route at once go to one digest per destination;
//!   `rate`: every call within its service's documented pace.

pub mod account_view;
pub mod book;
mod deadline;
pub mod deliver;
pub mod destinations;
mod http;
pub mod incident;
mod keep;
pub mod ledger;
pub mod ledger_dynamodb;
mod marks;
pub mod pagerduty;
#[cfg(test)]
mod pipeline_tests;
pub(crate) mod rate;
pub mod route;
pub mod services;
mod settings;
pub mod slack;
pub mod sns;
pub mod storm;
pub mod teams;
pub mod webhook;

pub use incident::{Incident, Phase};

pub use deadline::Deadline;
pub use deliver::{DeliveryError, DeliveryReport, Notifier};
pub use route::{Destination, Route, Rules};
pub use settings::AnyLedger;
pub use webhook::WebhookUrl;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What happened, as subscribers filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationKind {
    SpotInterruption,
    RebalanceRecommendation,
    DrainStarted,
    DrainCompleted,
    DrainForced,
    LaunchCompleted,
    LaunchAbandoned,
    DeploymentFailed,
    RollbackStarted,
    RollbackCompleted,
    DeploymentCompleted,
    ServiceImpaired,
    FargateSpotInterruption,
    TaskFailed,
    Alarm,
    ScheduledMaintenance,
    InstanceStopping,
    LaunchFailed,
    InstanceRefreshFailed,
    /// A drain fleetguard undid: the instance is back in service (its drain incident resolves).
    BackInService,
    /// A hub cannot act in a member account: its role there cannot be assumed.
    MemberUnreachable,
    /// A storm's digest: many sources' incidents on one route, in one message.
    Storm,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::SpotInterruption => "spot-interruption",
            NotificationKind::RebalanceRecommendation => "rebalance-recommendation",
            NotificationKind::DrainStarted => "drain-started",
            NotificationKind::DrainCompleted => "drain-completed",
            NotificationKind::DrainForced => "drain-forced",
            NotificationKind::LaunchCompleted => "launch-completed",
            NotificationKind::LaunchAbandoned => "launch-abandoned",
            NotificationKind::DeploymentFailed => "deployment-failed",
            NotificationKind::RollbackStarted => "rollback-started",
            NotificationKind::RollbackCompleted => "rollback-completed",
            NotificationKind::DeploymentCompleted => "deployment-completed",
            NotificationKind::ServiceImpaired => "service-impaired",
            NotificationKind::FargateSpotInterruption => "fargate-spot-interruption",
            NotificationKind::TaskFailed => "task-failed",
            NotificationKind::Alarm => "alarm",
            NotificationKind::ScheduledMaintenance => "scheduled-maintenance",
            NotificationKind::InstanceStopping => "instance-stopping",
            NotificationKind::LaunchFailed => "launch-failed",
            NotificationKind::InstanceRefreshFailed => "instance-refresh-failed",
            NotificationKind::BackInService => "back-in-service",
            NotificationKind::MemberUnreachable => "member-unreachable",
            NotificationKind::Storm => "storm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        use NotificationKind::*;
        [
            SpotInterruption,
            RebalanceRecommendation,
            DrainStarted,
            DrainCompleted,
            DrainForced,
            LaunchCompleted,
            LaunchAbandoned,
            DeploymentFailed,
            RollbackStarted,
            RollbackCompleted,
            DeploymentCompleted,
            ServiceImpaired,
            FargateSpotInterruption,
            TaskFailed,
            Alarm,
            ScheduledMaintenance,
            InstanceStopping,
            LaunchFailed,
            InstanceRefreshFailed,
            BackInService,
            MemberUnreachable,
            Storm,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Also the spellings teams put in a `severity` tag: `sev1`…`sev4`, `p1`…`p4`, `warning`, `error`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "sev1" | "p1" | "fatal" => Severity::Critical,
            "high" | "sev2" | "p2" | "error" | "major" => Severity::High,
            "medium" | "sev3" | "p3" | "warning" | "warn" | "minor" => Severity::Medium,
            "low" | "sev4" | "p4" => Severity::Low,
            "info" | "informational" | "ok" | "none" => Severity::Info,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// Where the notification comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Source {
    pub function: String,
    pub account: String,
    /// The account's name (`ACCOUNT_NAMES`), filled by the notifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    pub region: String,
    pub event_id: String,
    pub detail_type: String,
    pub event_time: Option<String>,
}

impl Source {
    /// The account as messages show it: `name (id)`, or the id alone.
    pub fn account_label(&self) -> String {
        match &self.account_name {
            Some(n) if !self.account.is_empty() => format!("{n} ({})", self.account),
            _ => self.account.clone(),
        }
    }
}

/// A message for people, built by a function, delivered by the [`Notifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub severity: Severity,
    pub title: String,
    /// Slack mrkdwn-free plain text; renderers escape it.
    pub summary: String,
    pub fields: Vec<Field>,
    pub links: Vec<Link>,
    /// Same key, same message: a duplicate event or a retry sends nothing twice (with `DEDUPE_TABLE`).
    pub dedupe_key: String,
    /// How long the dedupe record lives.
    #[serde(skip, default = "default_dedupe_ttl")]
    pub dedupe_ttl: Duration,
    /// A state subscribers filter on (an alarm's `ALARM`/`OK`/`INSUFFICIENT_DATA`).
    pub state: Option<String>,
    /// For routing by name (alarm name, service name).
    pub resource_name: Option<String>,
    /// Tags routing and filters read (an alarm's tags).
    pub tags: BTreeMap<String, String>,
    pub source: Source,
    /// The incident this notification is a phase of; `None`: a one-off message (its own incident,
    /// keyed by `dedupe_key`, opened and never resolved).
    #[serde(default)]
    pub incident: Option<Incident>,
}

fn default_dedupe_ttl() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

impl Notification {
    pub fn new(
        kind: NotificationKind,
        severity: Severity,
        title: impl Into<String>,
        dedupe_key: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            severity,
            title: title.into(),
            summary: String::new(),
            fields: Vec::new(),
            links: Vec::new(),
            dedupe_key: dedupe_key.into(),
            dedupe_ttl: default_dedupe_ttl(),
            state: None,
            resource_name: None,
            tags: BTreeMap::new(),
            source: Source::default(),
            incident: None,
        }
    }

    /// Make this notification the `phase` of the incident `key`.
    pub fn incident(mut self, key: impl Into<String>, phase: Phase) -> Self {
        self.incident = Some(Incident {
            key: key.into(),
            phase,
        });
        self
    }

    /// The incident's key: its own, or the dedupe key of a one-off message.
    pub fn incident_key(&self) -> &str {
        self.incident
            .as_ref()
            .map_or(self.dedupe_key.as_str(), |i| i.key.as_str())
    }

    /// The phase of its incident (a one-off message opens its own).
    pub fn phase(&self) -> Phase {
        self.incident.as_ref().map_or(Phase::Opened, |i| i.phase)
    }

    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.fields.push(Field {
                name: name.into(),
                value,
            });
        }
        self
    }

    pub fn link(mut self, label: impl Into<String>, url: impl Into<String>) -> Self {
        self.links.push(Link {
            label: label.into(),
            url: url.into(),
        });
        self
    }

    pub fn summary(mut self, s: impl Into<String>) -> Self {
        self.summary = s.into();
        self
    }

    /// Fill `source` from the event being handled.
    pub fn from_event(mut self, function: &str, event: &crate::Event) -> Self {
        self.source = Source {
            function: function.to_owned(),
            account: event.envelope.account.clone(),
            account_name: None,
            region: event.envelope.region.clone(),
            event_id: event.envelope.id.clone(),
            detail_type: event.envelope.detail_type.clone(),
            event_time: event
                .envelope
                .time
                .at()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        };
        self
    }
}

/// What a secret holds: its bare text, or the first of `keys` in a JSON object (the forms
/// people store in Secrets Manager). Errors name `label` (the secret), never the value.
pub(crate) fn secret_field(value: &str, label: &str, keys: &[&str]) -> Result<String, String> {
    let t = value.trim();
    if !t.starts_with('{') {
        return Ok(t.to_owned());
    }
    let v: serde_json::Value =
        serde_json::from_str(t).map_err(|_| format!("{label}: secret is not valid JSON"))?;
    keys.iter()
        .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str))
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| format!("{label}: secret JSON has no string {:?}", keys[0]))
}

/// A stable short digest of `s` (the first 16 bytes of its SHA-256, hex), for keys that must
/// stay within a service's limit and the same in every release.
pub(crate) fn digest(s: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The AWS console's host for a partition.
pub fn console_host(partition: &str, region: &str) -> String {
    match partition {
        "aws-cn" => "console.amazonaws.cn".to_owned(),
        "aws-us-gov" => "console.amazonaws-us-gov.com".to_owned(),
        _ if region.is_empty() => "console.aws.amazon.com".to_owned(),
        _ => format!("{region}.console.aws.amazon.com"),
    }
}

/// Percent-encode a URL path or fragment component (RFC 3986 unreserved characters kept).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_severities_round_trip() {
        assert_eq!(
            NotificationKind::parse("drain-forced"),
            Some(NotificationKind::DrainForced)
        );
        assert_eq!(NotificationKind::parse("nope"), None);
        assert_eq!(Severity::parse("SEV1"), Some(Severity::Critical));
        assert_eq!(Severity::parse("warning"), Some(Severity::Medium));
        assert_eq!(Severity::parse("purple"), None);
        assert!(Severity::Critical > Severity::High);
    }

    #[test]
    fn console_and_encoding() {
        assert_eq!(
            console_host("aws", "eu-west-1"),
            "eu-west-1.console.aws.amazon.com"
        );
        assert_eq!(console_host("aws-cn", "cn-north-1"), "console.amazonaws.cn");
        assert_eq!(url_encode("High CPU/ä"), "High%20CPU%2F%C3%A4");
    }
}
