//! An alarm state change as a notification: the metric, threshold, datapoints, math, anomaly
//! band, composite rule and children, contributor, tags and a console link. Pure.

use fleetguard::events::alarm::{AlarmMetric, AlarmState};
use fleetguard::events::{AlarmKind, AlarmStateChange, AlarmStateValue};
use fleetguard::notify::{
    Notification, NotificationKind, Phase, Severity, console_host, url_encode,
};
use fleetguard::time::{EventTime, human_duration};

fn state_word(v: &AlarmStateValue) -> &str {
    v.as_str()
}

fn kind_word(k: AlarmKind) -> &'static str {
    match k {
        AlarmKind::Metric => "metric alarm",
        AlarmKind::MetricMath => "metric math alarm",
        AlarmKind::AnomalyDetection => "anomaly detection alarm",
        AlarmKind::MultiTimeSeries => "multi-time-series alarm",
        AlarmKind::Composite => "composite alarm",
    }
}

fn describe_metric(m: &AlarmMetric) -> Option<String> {
    let name = m.metric_name.as_deref()?;
    let mut s = match &m.namespace {
        Some(ns) => format!("{ns} {name}"),
        None => name.to_owned(),
    };
    let mut how = Vec::new();
    if let Some(stat) = &m.stat {
        how.push(stat.clone());
    }
    if let Some(p) = m.period {
        how.push(format!("{p} s"));
    }
    if !how.is_empty() {
        s.push_str(&format!(" ({})", how.join(", ")));
    }
    if !m.dimensions.is_empty() {
        let dims: Vec<String> = m
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!(" [{}]", dims.join(", ")));
    }
    Some(s)
}

fn comparison_symbol(op: &str) -> &str {
    match op {
        "GreaterThanThreshold" => ">",
        "GreaterThanOrEqualToThreshold" => "≥",
        "LessThanThreshold" => "<",
        "LessThanOrEqualToThreshold" => "≤",
        "LessThanLowerOrGreaterThanUpperThreshold" => "outside band",
        "GreaterThanUpperThreshold" => "> band",
        "LessThanLowerThreshold" => "< band",
        other => other,
    }
}

fn num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

fn severity_of(alarm: &AlarmStateChange) -> Severity {
    if let Some(s) = alarm.tags.get("severity").and_then(|s| Severity::parse(s)) {
        // A recovery is good news whatever the alarm's severity.
        return if alarm.state.value == AlarmStateValue::Ok {
            Severity::Info
        } else {
            s
        };
    }
    match alarm.state.value {
        AlarmStateValue::Alarm => Severity::High,
        AlarmStateValue::InsufficientData => Severity::Low,
        _ => Severity::Info,
    }
}

fn time_text(t: &EventTime) -> String {
    match t {
        EventTime::At(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        EventTime::Unparsed(s) => s.clone(),
        EventTime::Missing => String::new(),
    }
}

/// The console link for an alarm.
pub fn console_link(alarm: &AlarmStateChange) -> Option<String> {
    let region = alarm.region.as_deref().filter(|r| !r.is_empty())?;
    let partition = alarm
        .alarm_arn
        .as_ref()
        .map(|a| a.partition())
        .unwrap_or("aws");
    Some(format!(
        "https://{}/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
        console_host(partition, region),
        url_encode(&alarm.alarm_name)
    ))
}

/// The notification for an alarm state change.
pub fn render(alarm: &AlarmStateChange) -> Notification {
    let state = state_word(&alarm.state.value).to_owned();
    let recovered = alarm.state.value == AlarmStateValue::Ok
        && alarm
            .previous_state
            .as_ref()
            .is_some_and(|p| p.value == AlarmStateValue::Alarm);
    let mut title = format!("{state}: {}", alarm.alarm_name);
    if let Some(c) = &alarm.contributor {
        let attrs: Vec<String> = c
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !attrs.is_empty() {
            title.push_str(&format!(" ({})", attrs.join(", ")));
        }
    }
    if recovered {
        title.push_str(" recovered");
    }
    let mut summary = String::new();
    if let Some(d) = alarm
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        summary.push_str(d.trim());
        summary.push_str("\n\n");
    }
    if let Some(r) = &alarm.state.reason {
        summary.push_str(r);
    }

    // One incident per alarm (and contributor, for Contributor Insights alarms): ALARM opens it,
    // OK resolves it, INSUFFICIENT_DATA updates it. One message per state change of it.
    let incident = format!(
        "alarm|{}|{}",
        alarm
            .alarm_arn
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_else(|| alarm.alarm_name.clone()),
        alarm
            .contributor
            .as_ref()
            .and_then(|c| c.id.clone())
            .unwrap_or_default(),
    );
    let dedupe_key = format!("{incident}|{state}|{}", time_text(&alarm.state.timestamp));
    let phase = match state.as_str() {
        "ALARM" => Phase::Opened,
        "OK" => Phase::Resolved,
        _ => Phase::Updated,
    };
    let mut n = Notification::new(
        NotificationKind::Alarm,
        severity_of(alarm),
        title,
        dedupe_key,
    )
    .summary(summary)
    .incident(incident, phase);
    n.state = Some(state.clone());
    n.resource_name = Some(alarm.alarm_name.clone());
    n.tags = alarm.tags.clone();

    let previous = alarm
        .previous_state
        .as_ref()
        .map(|p| state_word(&p.value).to_owned());
    n = n.field(
        "State",
        match &previous {
            Some(p) => format!("{p} → {state}"),
            None => state.clone(),
        },
    );
    if recovered && let Some(secs) = seconds_between(alarm.previous_state.as_ref(), &alarm.state) {
        n = n.field("In alarm for", human_duration(secs));
    }
    n = n.field("Type", kind_word(alarm.kind));
    n = add_kind_fields(n, alarm);
    if let Some(c) = &alarm.contributor {
        let attrs: Vec<String> = c
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        n = n.field("Contributor", attrs.join(", "));
    }
    if !alarm.tags.is_empty() {
        let tags: Vec<String> = alarm.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        n = n.field("Tags", tags.join(", "));
    }
    n = n.field("Changed at", time_text(&alarm.state.timestamp));
    if let Some(link) = console_link(alarm) {
        n = n.link("Open in CloudWatch", link);
    }
    n
}

fn seconds_between(previous: Option<&AlarmState>, now: &AlarmState) -> Option<i64> {
    let from = previous?.timestamp.at()?;
    let to = now.timestamp.at()?;
    Some((to - from).num_seconds())
}

fn add_kind_fields(mut n: Notification, alarm: &AlarmStateChange) -> Notification {
    let rd = alarm.state.reason_data.as_ref();
    match alarm.kind {
        AlarmKind::Composite => {
            if let Some(rule) = &alarm.alarm_rule {
                n = n.field("Rule", rule.clone());
            }
            if !alarm.triggering_children.is_empty() {
                let children: Vec<String> = alarm
                    .triggering_children
                    .iter()
                    .map(|c| match &c.state {
                        Some(s) => format!("{} ({s})", c.name),
                        None => c.name.clone(),
                    })
                    .collect();
                n = n.field("Triggered by", children.join(", "));
            }
            if let Some(s) = &alarm.actions_suppressor {
                n = n.field("Suppressor", s.clone());
            }
        }
        AlarmKind::Metric
        | AlarmKind::MetricMath
        | AlarmKind::AnomalyDetection
        | AlarmKind::MultiTimeSeries => {
            let mut metrics = Vec::new();
            for m in &alarm.metrics {
                let returns = m.return_data == Some(true);
                if let Some(e) = &m.expression {
                    let id = m.id.as_deref().unwrap_or("expr");
                    let label = m
                        .label
                        .as_deref()
                        .map(|l| format!(" \"{l}\""))
                        .unwrap_or_default();
                    let field = match alarm.kind {
                        AlarmKind::AnomalyDetection
                            if e.to_ascii_uppercase().starts_with("ANOMALY_DETECTION_BAND") =>
                        {
                            "Band"
                        }
                        AlarmKind::MultiTimeSeries => "Query",
                        _ => "Expression",
                    };
                    let returns = if returns && alarm.kind == AlarmKind::MetricMath {
                        " (alarms on this)"
                    } else {
                        ""
                    };
                    n = n.field(field, format!("{id} = {e}{label}{returns}"));
                } else if let Some(d) = describe_metric(m) {
                    metrics.push(match (&m.id, alarm.metrics.len() > 1) {
                        (Some(id), true) => format!("{id} = {d}"),
                        _ => d,
                    });
                }
            }
            if !metrics.is_empty() {
                n = n.field(
                    if metrics.len() > 1 {
                        "Metrics"
                    } else {
                        "Metric"
                    },
                    metrics.join("\n"),
                );
            }
            let threshold = alarm.threshold.as_ref();
            let op = threshold.and_then(|t| t.comparison_operator.as_deref());
            let value = threshold
                .and_then(|t| t.threshold)
                .or(rd.and_then(|r| r.threshold));
            match (op, value) {
                (Some(op), Some(v)) => {
                    n = n.field("Threshold", format!("{} {}", comparison_symbol(op), num(v)))
                }
                (None, Some(v)) => n = n.field("Threshold", num(v)),
                (Some(op), None) => n = n.field("Threshold", comparison_symbol(op).to_owned()),
                (None, None) => {}
            }
            if let Some(t) = threshold
                && let (Some(dp), Some(ep)) = (
                    t.datapoints_to_alarm.or(t.evaluation_periods),
                    t.evaluation_periods,
                )
            {
                n = n.field("Evaluation", format!("{dp} of {ep} datapoints"));
            }
            if let Some(r) = rd
                && !r.recent_datapoints.is_empty()
            {
                let points: Vec<String> = r.recent_datapoints.iter().map(|p| num(*p)).collect();
                n = n.field("Datapoints", points.join(", "));
            }
        }
    }
    n
}
