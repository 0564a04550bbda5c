//! CloudWatch alarms, from any of the three ways they arrive, normalised into one type:
//! - EventBridge `CloudWatch Alarm State Change` (`detail`, camelCase, `reasonData` is a JSON string),
//! - an SNS notification (`Message` is PascalCase JSON; metric-math alarms have `Trigger.Metrics[]`,
//!   composite alarms have no `Trigger`; `Region` is a display name, so the region comes from the ARN),
//! - the direct Lambda alarm action (`alarmData`).
//!
//! Every field beyond the alarm's name and state is optional: the Rust `aws_lambda_events` types
//! fail on metric-math and composite payloads, these must not.

use crate::events::lenient;
use crate::ids::Arn;
use crate::time::EventTime;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

mod sns;
pub(crate) use sns::SnsAlarm;

crate::open_enum!(
    AlarmStateValue {
        Ok = "OK",
        Alarm = "ALARM",
        InsufficientData = "INSUFFICIENT_DATA",
    }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmKind {
    Metric,
    MetricMath,
    AnomalyDetection,
    /// A Metrics Insights query alarm that tracks each contributor (time series) separately.
    MultiTimeSeries,
    Composite,
}

/// A CloudWatch alarm state change, whichever way it arrived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmStateChange {
    pub alarm_name: String,
    pub alarm_arn: Option<Arn>,
    pub account: Option<String>,
    /// The region code (`us-east-1`), from the alarm ARN or the envelope.
    pub region: Option<String>,
    pub description: Option<String>,
    pub kind: AlarmKind,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    /// `configuration.metrics` (EventBridge, alarm action) or the SNS `Trigger`, normalised.
    pub metrics: Vec<AlarmMetric>,
    /// Known only from SNS (`Trigger`); otherwise the threshold is in the state's reason data.
    pub threshold: Option<ThresholdRule>,
    /// Composite alarms.
    pub alarm_rule: Option<String>,
    pub triggering_children: Vec<TriggeringChild>,
    pub actions_suppressor: Option<String>,
    /// Set when an alarm mute rule muted this alarm (EventBridge does not mute: we must).
    pub mute: Option<MuteDetail>,
    /// Alarm tags, when tag propagation is enabled on the alarm.
    pub tags: BTreeMap<String, String>,
    /// Set for `CloudWatch Alarm Contributor State Change` (multi-time-series contributors).
    pub contributor: Option<AlarmContributor>,
}

impl AlarmStateChange {
    /// Actions suppressed by a suppressor alarm (composite alarms), per the new state.
    pub fn actions_suppressed(&self) -> bool {
        self.state.actions_suppressed_by.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmState {
    pub value: AlarmStateValue,
    pub reason: Option<String>,
    pub reason_data: Option<ReasonData>,
    pub timestamp: EventTime,
    pub actions_suppressed_by: Option<String>,
    pub actions_suppressed_reason: Option<String>,
}

/// `reasonData`: JSON inside a string. Parsed when it is JSON; the datapoints that crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReasonData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub statistic: Option<String>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub period: Option<i64>,
    #[serde(default, deserialize_with = "numbers")]
    pub recent_datapoints: Vec<f64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub start_date: EventTime,
    #[serde(default)]
    pub triggering_alarms: Vec<RawTriggeringAlarm>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawTriggeringAlarm {
    #[serde(default)]
    pub arn: String,
    #[serde(default)]
    pub state: Option<RawChildState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawChildState {
    #[serde(default, alias = "Value")]
    pub value: Option<AlarmStateValue>,
    #[serde(default, alias = "Timestamp")]
    pub timestamp: EventTime,
}

fn numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.iter().filter_map(Value::as_f64).collect(),
        _ => Vec::new(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggeringChild {
    pub arn: String,
    pub name: String,
    pub state: Option<AlarmStateValue>,
    pub timestamp: EventTime,
}

impl TriggeringChild {
    fn new(arn: String, state: Option<AlarmStateValue>, timestamp: EventTime) -> Self {
        let name = Arn::parse(&arn)
            .map(|a| a.resource_name().to_owned())
            .unwrap_or_else(|_| arn.clone());
        Self {
            arn,
            name,
            state,
            timestamp,
        }
    }
}

/// One entry of the alarm's metric configuration: a metric, or a math/query expression.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AlarmMetric {
    pub id: Option<String>,
    pub label: Option<String>,
    pub expression: Option<String>,
    pub return_data: Option<bool>,
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: BTreeMap<String, String>,
    pub period: Option<i64>,
    pub stat: Option<String>,
    pub unit: Option<String>,
}

/// The comparison from an SNS alarm `Trigger`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ThresholdRule {
    pub comparison_operator: Option<String>,
    pub threshold: Option<f64>,
    pub threshold_metric_id: Option<String>,
    pub evaluation_periods: Option<i64>,
    pub datapoints_to_alarm: Option<i64>,
    pub treat_missing_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MuteDetail {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub muted_by_arn: Option<String>,
    #[serde(default)]
    pub mute_window_start: EventTime,
    #[serde(default)]
    pub mute_window_end: EventTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmContributor {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub attributes: BTreeMap<String, String>,
}

// ---- EventBridge `detail` and alarm-action `alarmData` (same camelCase shape) ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CamelAlarm {
    pub alarm_name: String,
    pub state: CamelState,
    #[serde(default)]
    pub previous_state: Option<CamelState>,
    #[serde(default)]
    pub configuration: CamelConfiguration,
    #[serde(default)]
    pub mute_detail: Option<MuteDetail>,
    #[serde(default, deserialize_with = "string_map")]
    pub alarm_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub alarm_contributor: Option<AlarmContributor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CamelState {
    pub value: AlarmStateValue,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reason_data: Option<String>,
    #[serde(default)]
    pub timestamp: EventTime,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub actions_suppressed_by: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub actions_suppressed_reason: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CamelConfiguration {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub description: Option<String>,
    #[serde(default)]
    pub metrics: Vec<CamelMetric>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub alarm_rule: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub actions_suppressor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CamelMetric {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub expression: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub return_data: Option<bool>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub period: Option<i64>,
    #[serde(default)]
    pub metric_stat: Option<CamelMetricStat>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CamelMetricStat {
    #[serde(default)]
    pub metric: Option<CamelMetricId>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub period: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub stat: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub unit: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CamelMetricId {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub dimensions: BTreeMap<String, String>,
}

impl CamelState {
    fn into_state(self) -> AlarmState {
        let reason_data = self
            .reason_data
            .as_deref()
            .and_then(|s| serde_json::from_str::<ReasonData>(s).ok());
        AlarmState {
            value: self.value,
            reason: self.reason,
            reason_data,
            timestamp: self.timestamp,
            actions_suppressed_by: self.actions_suppressed_by,
            actions_suppressed_reason: self.actions_suppressed_reason,
        }
    }
}

impl CamelAlarm {
    pub(crate) fn normalise(
        self,
        alarm_arn: Option<Arn>,
        account: Option<String>,
        region: Option<String>,
    ) -> AlarmStateChange {
        let metrics: Vec<AlarmMetric> = self
            .configuration
            .metrics
            .into_iter()
            .map(|m| {
                let (namespace, metric_name, dimensions, period, stat, unit) = match m.metric_stat {
                    Some(ms) => {
                        let (ns, name, dims) = match ms.metric {
                            Some(id) => (id.namespace, id.name, id.dimensions),
                            None => (None, None, BTreeMap::new()),
                        };
                        (ns, name, dims, ms.period.or(m.period), ms.stat, ms.unit)
                    }
                    None => (None, None, BTreeMap::new(), m.period, None, None),
                };
                AlarmMetric {
                    id: m.id,
                    label: m.label,
                    expression: m.expression,
                    return_data: m.return_data,
                    namespace,
                    metric_name,
                    dimensions,
                    period,
                    stat,
                    unit,
                }
            })
            .collect();
        let state = self.state.into_state();
        let triggering_children = state
            .reason_data
            .as_ref()
            .map(|rd| {
                rd.triggering_alarms
                    .iter()
                    .map(|t| {
                        let (v, ts) = match &t.state {
                            Some(s) => (s.value.clone(), s.timestamp.clone()),
                            None => (None, EventTime::Missing),
                        };
                        TriggeringChild::new(t.arn.clone(), v, ts)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let alarm_rule = self.configuration.alarm_rule;
        let kind = classify(
            alarm_rule.is_some(),
            &metrics,
            self.alarm_contributor.is_some(),
        );
        let region = alarm_arn
            .as_ref()
            .map(|a| a.region().to_owned())
            .filter(|r| !r.is_empty())
            .or(region);
        let account = alarm_arn
            .as_ref()
            .map(|a| a.account().to_owned())
            .filter(|a| !a.is_empty())
            .or(account);
        AlarmStateChange {
            alarm_name: self.alarm_name,
            alarm_arn,
            account,
            region,
            description: self.configuration.description,
            kind,
            state,
            previous_state: self.previous_state.map(CamelState::into_state),
            metrics,
            threshold: None,
            alarm_rule,
            triggering_children,
            actions_suppressor: self.configuration.actions_suppressor,
            mute: self.mute_detail,
            tags: self.alarm_tags,
            contributor: self.alarm_contributor,
        }
    }
}

fn classify(composite: bool, metrics: &[AlarmMetric], contributor: bool) -> AlarmKind {
    let expr = |prefix: &str| {
        metrics.iter().any(|m| {
            m.expression
                .as_deref()
                .is_some_and(|e| e.trim_start().to_ascii_uppercase().starts_with(prefix))
        })
    };
    if composite {
        AlarmKind::Composite
    } else if expr("ANOMALY_DETECTION_BAND") {
        AlarmKind::AnomalyDetection
    } else if contributor || expr("SELECT") {
        AlarmKind::MultiTimeSeries
    } else if metrics.len() > 1 || expr("") {
        AlarmKind::MetricMath
    } else {
        AlarmKind::Metric
    }
}

/// A string map given as an object (`{"InstanceId": "i-…"}`) or as a list of name/value pairs
/// (`[{"name": "InstanceId", "value": "i-…"}]`, `[{"Key": …, "Value": …}]`). Non-string values
/// are kept as their JSON text; anything else is an empty map.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    Ok(match Value::deserialize(d)? {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| {
                let k = ["name", "Name", "key", "Key"]
                    .iter()
                    .find_map(|k| i.get(*k))?
                    .as_str()?;
                let v = ["value", "Value"]
                    .iter()
                    .find_map(|k| i.get(*k))
                    .map(text)?;
                Some((k.to_owned(), v))
            })
            .collect(),
        _ => BTreeMap::new(),
    })
}
