//! An alarm as SNS delivers it: `Message` is PascalCase JSON; metric-math alarms have
//! `Trigger.Metrics[]`, composite alarms have no `Trigger`; `Region` is a display name, so the
//! region comes from the ARN.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnsAlarm {
    pub alarm_name: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub alarm_description: Option<String>,
    #[serde(
        rename = "AWSAccountId",
        default,
        deserialize_with = "lenient::opt_string"
    )]
    pub aws_account_id: Option<String>,
    pub new_state_value: AlarmStateValue,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub new_state_reason: Option<String>,
    #[serde(default)]
    pub state_change_time: EventTime,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub alarm_arn: Option<String>,
    #[serde(default)]
    pub old_state_value: Option<AlarmStateValue>,
    #[serde(default)]
    pub trigger: Option<SnsTrigger>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub alarm_rule: Option<String>,
    #[serde(default, deserialize_with = "children")]
    pub triggering_children: Vec<TriggeringChild>,
    #[serde(default, deserialize_with = "string_map")]
    pub alarm_tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnsTrigger {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub metric_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub statistic: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub extended_statistic: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub unit: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub period: Option<i64>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub evaluation_periods: Option<i64>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub datapoints_to_alarm: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub comparison_operator: Option<String>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub threshold: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub threshold_metric_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub treat_missing_data: Option<String>,
    #[serde(default)]
    pub metrics: Vec<SnsMetric>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnsMetric {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub expression: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub return_data: Option<bool>,
    #[serde(default)]
    pub metric_stat: Option<SnsMetricStat>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnsMetricStat {
    #[serde(default)]
    pub metric: Option<SnsMetricId>,
    #[serde(default, deserialize_with = "lenient::integer")]
    pub period: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub stat: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnsMetricId {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub metric_name: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub dimensions: BTreeMap<String, String>,
}

impl SnsAlarm {
    pub(crate) fn normalise(self, envelope_time: EventTime) -> AlarmStateChange {
        let alarm_arn = self.alarm_arn.as_deref().and_then(|a| Arn::parse(a).ok());
        let trigger = self.trigger.unwrap_or_default();
        let mut metrics: Vec<AlarmMetric> = trigger
            .metrics
            .into_iter()
            .map(|m| {
                let ms = m.metric_stat;
                let (id, period, stat, unit) = match ms {
                    Some(ms) => (ms.metric, ms.period, ms.stat, ms.unit),
                    None => (None, None, None, None),
                };
                let (namespace, metric_name, dimensions) = match id {
                    Some(i) => (i.namespace, i.metric_name, i.dimensions),
                    None => (None, None, BTreeMap::new()),
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
        if trigger.metric_name.is_some() {
            metrics.insert(
                0,
                AlarmMetric {
                    namespace: trigger.namespace,
                    metric_name: trigger.metric_name,
                    dimensions: trigger.dimensions,
                    period: trigger.period,
                    stat: trigger.statistic.or(trigger.extended_statistic),
                    unit: trigger.unit,
                    return_data: Some(true),
                    ..AlarmMetric::default()
                },
            );
        }
        let has_threshold = trigger.comparison_operator.is_some() || trigger.threshold.is_some();
        let threshold = has_threshold.then_some(ThresholdRule {
            comparison_operator: trigger.comparison_operator,
            threshold: trigger.threshold,
            threshold_metric_id: trigger.threshold_metric_id,
            evaluation_periods: trigger.evaluation_periods,
            datapoints_to_alarm: trigger.datapoints_to_alarm,
            treat_missing_data: trigger.treat_missing_data,
        });
        let kind = classify(self.alarm_rule.is_some(), &metrics, false);
        let timestamp = match self.state_change_time {
            EventTime::Missing => envelope_time,
            t => t,
        };
        AlarmStateChange {
            alarm_name: self.alarm_name,
            region: alarm_arn.as_ref().map(|a| a.region().to_owned()),
            account: self
                .aws_account_id
                .or_else(|| alarm_arn.as_ref().map(|a| a.account().to_owned())),
            alarm_arn,
            description: self.alarm_description,
            kind,
            state: AlarmState {
                value: self.new_state_value,
                reason: self.new_state_reason,
                reason_data: None,
                timestamp,
                actions_suppressed_by: None,
                actions_suppressed_reason: None,
            },
            previous_state: self.old_state_value.map(|v| AlarmState {
                value: v,
                reason: None,
                reason_data: None,
                timestamp: EventTime::Missing,
                actions_suppressed_by: None,
                actions_suppressed_reason: None,
            }),
            metrics,
            threshold,
            alarm_rule: self.alarm_rule,
            triggering_children: self.triggering_children,
            actions_suppressor: None,
            mute: None,
            tags: self.alarm_tags,
            contributor: None,
        }
    }
}

/// `TriggeringChildren`: objects `{Arn, State{Value, Timestamp}}` in real messages, plain ARN
/// strings in the documentation's schema.
fn children<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TriggeringChild>, D::Error> {
    let Value::Array(items) = Value::deserialize(d)? else {
        return Ok(Vec::new());
    };
    Ok(items
        .into_iter()
        .filter_map(|v| match v {
            Value::String(arn) => Some(TriggeringChild::new(arn, None, EventTime::Missing)),
            Value::Object(m) => {
                let arn = m.get("Arn").or_else(|| m.get("arn"))?.as_str()?.to_owned();
                let state = m
                    .get("State")
                    .or_else(|| m.get("state"))
                    .and_then(|s| serde_json::from_value::<RawChildState>(s.clone()).ok());
                let (v, ts) = match state {
                    Some(s) => (s.value, s.timestamp),
                    None => (None, EventTime::Missing),
                };
                Some(TriggeringChild::new(arn, v, ts))
            }
            _ => None,
        })
        .collect())
}
