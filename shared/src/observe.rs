//! Logs and metrics, the same for every function.
//!
//! Logs: `tracing`, JSON when Lambda's log format is JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`), readable
//! text otherwise; every line of an invocation carries the event id, detail-type and subject
//! through the `event` span.
//!
//! Metrics: CloudWatch Embedded Metric Format lines on stdout. CloudWatch Logs turns them into
//! metrics, so metrics cost no AWS call.

use crate::events::{Event, EventKind};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Install the log subscriber once, at init.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The span every log line of one event's handling is recorded in.
pub fn event_span(function: &str, event: &Event) -> tracing::Span {
    tracing::info_span!(
        "event",
        function = function,
        event_id = %crate::text::excerpt(&event.envelope.id, 64),
        detail_type = %crate::text::excerpt(&event.envelope.detail_type, 64),
        subject = %crate::text::excerpt(&event.subject(), 200),
    )
}

/// What a function did to AWS or for people, a metric dimension. Typed, so a metric never
/// depends on the wording of a summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Take an instance out of service (container instance DRAINING and deregistration).
    DrainInstance,
    DrainContainerInstance,
    /// A drain of ours undone: the container instance ACTIVE again.
    ActivateContainerInstance,
    /// fleetguard's mark on a drain it will undo (an ECS attribute).
    MarkDrain,
    DeregisterTargets,
    /// A deregistration of ours undone: the instance registered again.
    RegisterTargets,
    CompleteLifecycleAction,
    RecordLifecycleActionHeartbeat,
    /// Gather evidence for a message (a failure here never blocks the message).
    Enrich,
    Notify,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::DrainInstance => "DrainInstance",
            Action::DrainContainerInstance => "DrainContainerInstance",
            Action::ActivateContainerInstance => "ActivateContainerInstance",
            Action::MarkDrain => "MarkDrain",
            Action::DeregisterTargets => "DeregisterTargets",
            Action::RegisterTargets => "RegisterTargets",
            Action::CompleteLifecycleAction => "CompleteLifecycleAction",
            Action::RecordLifecycleActionHeartbeat => "RecordLifecycleActionHeartbeat",
            Action::Enrich => "Enrich",
            Action::Notify => "Notify",
        }
    }
}

/// Result of an action, a metric dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    AlreadyDone,
    Skipped,
    DryRun,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::AlreadyDone => "already-done",
            Outcome::Skipped => "skipped",
            Outcome::DryRun => "dry-run",
            Outcome::Failed => "failed",
        }
    }
}

/// The fleet's interruption picture: how capacity went away, per pool. Emitted without the
/// `Function` dimension so the dashboard sums them across functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FleetMetric {
    SpotInterruptions,
    RebalanceRecommendations,
    ScheduledMaintenance,
    /// Drains completed (with `DrainDuration`).
    Drains,
    /// Lifecycle actions completed with work still on the instance (`MAX_DRAIN_SECONDS`).
    ForcedCompletions,
    LaunchFailures,
}

impl FleetMetric {
    pub const ALL: [FleetMetric; 6] = [
        Self::SpotInterruptions,
        Self::RebalanceRecommendations,
        Self::ScheduledMaintenance,
        Self::Drains,
        Self::ForcedCompletions,
        Self::LaunchFailures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpotInterruptions => "SpotInterruptions",
            Self::RebalanceRecommendations => "RebalanceRecommendations",
            Self::ScheduledMaintenance => "ScheduledMaintenance",
            Self::Drains => "Drains",
            Self::ForcedCompletions => "ForcedCompletions",
            Self::LaunchFailures => "LaunchFailures",
        }
    }
}

/// `DrainDuration`, in seconds, beside each `Drains`.
pub const DRAIN_DURATION: &str = "DrainDuration";

/// The dimensions of every fleet metric, in this order.
pub const POOL_DIMENSIONS: [&str; 3] = ["InstanceType", "AvailabilityZone", "AutoScalingGroup"];

/// A pool: instance type, Availability Zone and group. What is not known reads `unknown`
/// (and `none` for an instance in no group), so every line has the same dimension set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    pub instance_type: Option<String>,
    pub availability_zone: Option<String>,
    pub group: Option<String>,
}

impl Pool {
    fn values(&self) -> [String; 3] {
        let or = |v: &Option<String>, d: &str| {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or(d)
                .to_owned()
        };
        [
            or(&self.instance_type, "unknown"),
            or(&self.availability_zone, "unknown"),
            or(&self.group, "none"),
        ]
    }
}

/// Collects one invocation's metrics and writes them as EMF lines.
#[derive(Debug)]
pub struct Metrics {
    namespace: String,
    function: &'static str,
    /// The `level` every line carries: the function's own log level, so that Lambda's
    /// log-level filter (which counts a line without `level` as INFO) never drops a metric.
    level: &'static str,
    /// A hub's: the account an event is about, a second dimension set on every line.
    account: Option<String>,
    lines: Vec<String>,
}

/// The levels Lambda's application log filter knows, least severe first.
pub const LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// The `level` of metric lines under the application log level Lambda was given
/// (`AWS_LAMBDA_LOG_LEVEL`, set with JSON logging): exactly that level, which the filter always
/// lets through; INFO without one (no filter applies then).
pub fn emf_level(configured: Option<&str>) -> &'static str {
    configured
        .and_then(|c| LOG_LEVELS.iter().find(|l| l.eq_ignore_ascii_case(c.trim())))
        .copied()
        .unwrap_or("INFO")
}

impl Metrics {
    pub fn new(namespace: &str, function: &'static str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            function,
            level: emf_level(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref()),
            account: None,
            lines: Vec::new(),
        }
    }

    /// Every later line also counts under `Account` (a hub's metrics per member); an empty
    /// account (an event that names none) stays without.
    pub fn set_account(&mut self, account: Option<String>) {
        self.account = account.filter(|a| !a.is_empty());
    }

    fn push(&mut self, dims: &[(&str, &str)], name: &str, unit: &str, value: f64) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut all = vec![("Function", self.function)];
        all.extend_from_slice(dims);
        self.lines.push(emf_line(
            &self.namespace,
            self.level,
            now_ms,
            &all,
            self.account.as_deref(),
            name,
            unit,
            value,
        ));
    }

    /// `EventsReceived` by `EventKind` (`Invalid` for input that did not parse).
    pub fn event_received(&mut self, kind: Option<EventKind>) {
        let k = kind.map(EventKind::as_str).unwrap_or("Invalid");
        self.push(&[("EventKind", k)], "EventsReceived", "Count", 1.0);
    }

    /// `Actions` by action and outcome, e.g. (`DrainContainerInstance`, `done`).
    /// A container instance's drain counted (and its mark, when ECS refused it); its words
    /// for the summary.
    pub fn container_instance_drain(&mut self, r: crate::ports::DrainResult) -> &'static str {
        use crate::ports::DrainResult;
        let (text, outcome) = match r {
            DrainResult::Drained => ("DRAINING", Outcome::Done),
            DrainResult::DrainedUnmarked => {
                self.action(Action::MarkDrain, Outcome::Failed);
                ("DRAINING, unmarked", Outcome::Done)
            }
            DrainResult::AlreadyDraining => ("already DRAINING", Outcome::AlreadyDone),
        };
        self.action(Action::DrainContainerInstance, outcome);
        text
    }

    pub fn action(&mut self, action: Action, outcome: Outcome) {
        self.push(
            &[("Action", action.as_str()), ("Outcome", outcome.as_str())],
            "Actions",
            "Count",
            1.0,
        );
    }

    /// `EventToActionLatency`: from the event's `time` to the action, in milliseconds.
    pub fn latency(&mut self, action: Action, event: &Event) {
        if let Some(t) = event.envelope.time.at() {
            let ms = (chrono::Utc::now() - t).num_milliseconds().max(0) as f64;
            self.push(
                &[("Action", action.as_str())],
                "EventToActionLatency",
                "Milliseconds",
                ms,
            );
        }
    }

    /// One of the fleet's metrics, counted once for `pool`.
    pub fn fleet(&mut self, metric: FleetMetric, pool: &Pool) {
        self.pool_line(pool, metric.as_str(), "Count", 1.0);
    }

    /// A completed drain: `Drains` and its `DrainDuration` (seconds).
    pub fn drain_completed(&mut self, pool: &Pool, seconds: Option<i64>) {
        self.fleet(FleetMetric::Drains, pool);
        if let Some(s) = seconds {
            self.pool_line(pool, DRAIN_DURATION, "Seconds", s.max(0) as f64);
        }
    }

    fn pool_line(&mut self, pool: &Pool, name: &str, unit: &str, value: f64) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let v = pool.values();
        let dims: Vec<(&str, &str)> = POOL_DIMENSIONS
            .iter()
            .zip(v.iter())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        self.lines.push(emf_line(
            &self.namespace,
            self.level,
            now_ms,
            &dims,
            self.account.as_deref(),
            name,
            unit,
            value,
        ));
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Write the lines to stdout, where Lambda's log capture picks them up.
    pub fn flush(&mut self) {
        let mut out = String::new();
        for l in self.lines.drain(..) {
            let _ = writeln!(out, "{l}");
        }
        if !out.is_empty() {
            print!("{out}");
        }
    }
}

/// One EMF document: one metric with its dimension set, and with `account` the same set plus
/// `Account` (so the totals the dashboard reads stay as they are).
#[allow(clippy::too_many_arguments)]
pub fn emf_line(
    namespace: &str,
    level: &str,
    timestamp_ms: i64,
    dims: &[(&str, &str)],
    account: Option<&str>,
    name: &str,
    unit: &str,
    value: f64,
) -> String {
    let mut doc = serde_json::Map::new();
    let dim_names: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
    let mut sets = vec![dim_names.clone()];
    if let Some(a) = account {
        let mut with = dim_names;
        with.push("Account");
        sets.push(with);
        doc.insert("Account".into(), Value::String(a.into()));
    }
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": sets,
                "Metrics": [{"Name": name, "Unit": unit}],
            }],
        }),
    );
    doc.insert("level".into(), json!(level));
    for (k, v) in dims {
        doc.insert((*k).into(), Value::String((*v).into()));
    }
    doc.insert(name.into(), json!(value));
    Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lambda's application log filter: a line passes when its `level` (INFO when missing or
    /// not one of Lambda's) is at least the configured one.
    fn lambda_keeps(line: &str, configured: &str) -> bool {
        let v: Value = serde_json::from_str(line).unwrap();
        let rank = |l: &str| LOG_LEVELS.iter().position(|x| x.eq_ignore_ascii_case(l));
        let own = v["level"].as_str().and_then(rank).unwrap_or(2);
        own >= rank(configured).unwrap()
    }

    #[test]
    fn metric_lines_survive_every_log_level_lambda_allows() {
        for configured in LOG_LEVELS {
            let mut m = Metrics {
                level: emf_level(Some(&configured.to_lowercase())),
                ..Metrics::new("fleetguard", "spot-interruption")
            };
            m.push(&[], "EventsReceived", "Count", 1.0);
            let line = &m.lines()[0];
            assert!(lambda_keeps(line, configured), "{configured}: {line}");
        }
        // The mutation this guards against: a line without `level` is dropped under WARN.
        let bare = r#"{"_aws":{},"EventsReceived":1}"#;
        assert!(!lambda_keeps(bare, "WARN"));
        assert_eq!(emf_level(None), "INFO");
        assert_eq!(emf_level(Some("bogus")), "INFO");
    }

    #[test]
    fn emf_line_is_valid_emf() {
        let l = emf_line(
            "fleetguard",
            "INFO",
            1_700_000_000_000,
            &[
                ("Function", "spot-interruption"),
                ("EventKind", "SpotInterruptionWarning"),
            ],
            None,
            "EventsReceived",
            "Count",
            1.0,
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "fleetguard");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["Function", "EventKind"])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "EventsReceived"
        );
        assert_eq!(v["Function"], "spot-interruption");
        assert_eq!(v["EventKind"], "SpotInterruptionWarning");
        assert_eq!(v["EventsReceived"], 1.0);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(v.get("Account").is_none());
    }

    #[test]
    fn a_hubs_lines_count_per_account_beside_the_totals() {
        let mut m = Metrics::new("fleetguard", "spot-interruption");
        m.set_account(Some("111111111111".into()));
        m.event_received(Some(EventKind::SpotInterruptionWarning));
        m.fleet(FleetMetric::SpotInterruptions, &Pool::default());
        for line in m.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let sets = v["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
                .as_array()
                .unwrap()
                .clone();
            assert_eq!(sets.len(), 2, "{line}");
            let mut with = sets[0].as_array().unwrap().clone();
            with.push(json!("Account"));
            assert_eq!(sets[1], Value::Array(with));
            assert_eq!(v["Account"], "111111111111");
        }
        m.set_account(Some(String::new()));
        m.event_received(None);
        let v: Value = serde_json::from_str(m.lines().last().unwrap()).unwrap();
        assert!(v.get("Account").is_none());
    }

    #[test]
    fn metrics_collects_kinds_actions_and_latency() {
        let event = crate::events::parse_event(
            br#"{"version":"0","id":"e1","detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2",
                "account":"123456789012","time":"2020-01-01T00:00:00Z","region":"us-east-1","resources":[],
                "detail":{"instance-id":"i-0abcdef1234567890"}}"#,
        )
        .unwrap();
        let mut m = Metrics::new("ns", "spot-interruption");
        m.event_received(Some(event.kind()));
        m.event_received(None);
        m.action(Action::DrainContainerInstance, Outcome::Done);
        m.latency(Action::DrainContainerInstance, &event);
        let parsed: Vec<Value> = m
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0]["EventKind"], "RebalanceRecommendation");
        assert_eq!(parsed[1]["EventKind"], "Invalid");
        assert_eq!(parsed[2]["Outcome"], "done");
        assert_eq!(parsed[2]["Action"], "DrainContainerInstance");
        // The event is from 2020: latency is large and positive.
        assert!(parsed[3]["EventToActionLatency"].as_f64().unwrap() > 1.0e9);
    }
}
