//! One parse entry, from the raw bytes Lambda hands over to a typed [`Event`].
//!
//! Lenient where AWS is loose (unknown fields, missing optional fields, new names, documentation
//! placeholders), strict where a mistake would act on the wrong thing (instance ids, tokens,
//! ARNs). Errors name the JSON path of the field at fault. Nothing here panics on any input.

pub mod alarm;
pub mod autoscaling;
pub mod ec2;
pub mod ecs;
pub mod envelope;
pub mod health;
pub mod lenient;
mod open_enum;

pub use alarm::{AlarmKind, AlarmStateChange, AlarmStateValue};
pub use autoscaling::{
    InstanceRefresh, LaunchUnsuccessful, LifecycleAction, LifecycleTransition, TestNotification,
    WarmPoolLocation,
};
pub use ec2::{
    InstanceAction, InstanceState, InstanceStateChange, RebalanceRecommendation,
    SpotInterruptionWarning,
};
pub use ecs::{
    ContainerInstanceStateChange, DeploymentStateChange, ServiceAction, TaskStateChange,
};
pub use envelope::{Envelope, Ingress};
pub use health::{HealthEvent, MaintenanceDue, MaintenanceKind, MaintenanceStep, TargetRef};

use crate::ids::{Arn, EcsServiceRef, InstanceId};
use crate::text::excerpt;
use crate::time::EventTime;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;

pub const SPOT_INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";
pub const LAUNCH_LIFECYCLE_ACTION: &str = "EC2 Instance-launch Lifecycle Action";
pub const TERMINATE_LIFECYCLE_ACTION: &str = "EC2 Instance-terminate Lifecycle Action";
pub const DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";
pub const SERVICE_ACTION: &str = "ECS Service Action";
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
pub const CONTAINER_INSTANCE_STATE_CHANGE: &str = "ECS Container Instance State Change";
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
pub const ALARM_CONTRIBUTOR_STATE_CHANGE: &str = "CloudWatch Alarm Contributor State Change";
pub const ALARM_CONFIGURATION_CHANGE: &str = "CloudWatch Alarm Configuration Change";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
pub const HEALTH_EVENT: &str = "AWS Health Event";
pub const INSTANCE_STATE_CHANGE: &str = "EC2 Instance State-change Notification";
pub const LAUNCH_UNSUCCESSFUL: &str = "EC2 Instance Launch Unsuccessful";
pub const INSTANCE_REFRESH_PREFIX: &str = "EC2 Auto Scaling Instance Refresh ";
/// The detail-type of a one-time schedule's payload (`source` [`MAINTENANCE_SOURCE`]).
pub const SCHEDULED_MAINTENANCE: &str = "Scheduled Maintenance";
pub const MAINTENANCE_SOURCE: &str = "fleetguard";
const TEST_NOTIFICATION_EVENT: &str = "autoscaling:TEST_NOTIFICATION";

/// A parsed event: where it came from and what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub envelope: Envelope,
    pub ingress: Ingress,
    pub detail: Detail,
}

/// Every kind of event the suite consumes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail")]
pub enum Detail {
    SpotInterruptionWarning(SpotInterruptionWarning),
    RebalanceRecommendation(RebalanceRecommendation),
    LifecycleAction(LifecycleAction),
    /// Sent when a hook with an SNS/SQS target is created: acknowledged and ignored.
    AutoScalingTestNotification(TestNotification),
    DeploymentStateChange(DeploymentStateChange),
    ServiceAction(ServiceAction),
    TaskStateChange(Box<TaskStateChange>),
    ContainerInstanceStateChange(ContainerInstanceStateChange),
    AlarmStateChange(Box<AlarmStateChange>),
    AlarmContributorStateChange(Box<AlarmStateChange>),
    /// Alarm created/updated/deleted: acknowledged and ignored.
    AlarmConfigurationChange {
        alarm_name: Option<String>,
    },
    /// An EventBridge schedule (the lifecycle sweep). `rules` are the schedule rule ARNs.
    Scheduled {
        rules: Vec<String>,
    },
    /// `AWS Health Event` (an EC2 scheduled change is acted on; the rest acknowledged).
    HealthEvent(Box<HealthEvent>),
    /// `EC2 Instance State-change Notification`.
    InstanceStateChange(InstanceStateChange),
    /// `EC2 Instance Launch Unsuccessful`.
    LaunchUnsuccessful(LaunchUnsuccessful),
    /// `EC2 Auto Scaling Instance Refresh …`.
    InstanceRefresh(InstanceRefresh),
    /// A one-time schedule of `instance-maintenance` has come due.
    MaintenanceDue(Box<MaintenanceDue>),
    /// Anything else: acknowledged and logged, never retried.
    Unrecognised {
        source: String,
        detail_type: Option<String>,
    },
}

/// The variant's name, for logs, metrics and the sample-event manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    SpotInterruptionWarning,
    RebalanceRecommendation,
    LaunchLifecycleAction,
    TerminateLifecycleAction,
    OtherLifecycleAction,
    AutoScalingTestNotification,
    DeploymentStateChange,
    ServiceAction,
    TaskStateChange,
    ContainerInstanceStateChange,
    AlarmStateChange,
    AlarmContributorStateChange,
    AlarmConfigurationChange,
    Scheduled,
    HealthEvent,
    InstanceStateChange,
    LaunchUnsuccessful,
    InstanceRefresh,
    MaintenanceDue,
    Unrecognised,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SpotInterruptionWarning => "SpotInterruptionWarning",
            EventKind::RebalanceRecommendation => "RebalanceRecommendation",
            EventKind::LaunchLifecycleAction => "LaunchLifecycleAction",
            EventKind::TerminateLifecycleAction => "TerminateLifecycleAction",
            EventKind::OtherLifecycleAction => "OtherLifecycleAction",
            EventKind::AutoScalingTestNotification => "AutoScalingTestNotification",
            EventKind::DeploymentStateChange => "DeploymentStateChange",
            EventKind::ServiceAction => "ServiceAction",
            EventKind::TaskStateChange => "TaskStateChange",
            EventKind::ContainerInstanceStateChange => "ContainerInstanceStateChange",
            EventKind::AlarmStateChange => "AlarmStateChange",
            EventKind::AlarmContributorStateChange => "AlarmContributorStateChange",
            EventKind::AlarmConfigurationChange => "AlarmConfigurationChange",
            EventKind::Scheduled => "Scheduled",
            EventKind::HealthEvent => "HealthEvent",
            EventKind::InstanceStateChange => "InstanceStateChange",
            EventKind::LaunchUnsuccessful => "LaunchUnsuccessful",
            EventKind::InstanceRefresh => "InstanceRefresh",
            EventKind::MaintenanceDue => "MaintenanceDue",
            EventKind::Unrecognised => "Unrecognised",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Detail {
    pub fn kind(&self) -> EventKind {
        match self {
            Detail::SpotInterruptionWarning(_) => EventKind::SpotInterruptionWarning,
            Detail::RebalanceRecommendation(_) => EventKind::RebalanceRecommendation,
            Detail::LifecycleAction(a) => match a.transition {
                LifecycleTransition::Launching => EventKind::LaunchLifecycleAction,
                LifecycleTransition::Terminating => EventKind::TerminateLifecycleAction,
                LifecycleTransition::Other(_) => EventKind::OtherLifecycleAction,
            },
            Detail::AutoScalingTestNotification(_) => EventKind::AutoScalingTestNotification,
            Detail::DeploymentStateChange(_) => EventKind::DeploymentStateChange,
            Detail::ServiceAction(_) => EventKind::ServiceAction,
            Detail::TaskStateChange(_) => EventKind::TaskStateChange,
            Detail::ContainerInstanceStateChange(_) => EventKind::ContainerInstanceStateChange,
            Detail::AlarmStateChange(_) => EventKind::AlarmStateChange,
            Detail::AlarmContributorStateChange(_) => EventKind::AlarmContributorStateChange,
            Detail::AlarmConfigurationChange { .. } => EventKind::AlarmConfigurationChange,
            Detail::Scheduled { .. } => EventKind::Scheduled,
            Detail::HealthEvent(_) => EventKind::HealthEvent,
            Detail::InstanceStateChange(_) => EventKind::InstanceStateChange,
            Detail::LaunchUnsuccessful(_) => EventKind::LaunchUnsuccessful,
            Detail::InstanceRefresh(_) => EventKind::InstanceRefresh,
            Detail::MaintenanceDue(_) => EventKind::MaintenanceDue,
            Detail::Unrecognised { .. } => EventKind::Unrecognised,
        }
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.detail.kind()
    }

    /// The AWS resource the event is about, in AWS's words: an instance id, `cluster/service`,
    /// a task or container instance ARN, an alarm name.
    pub fn subject(&self) -> String {
        match &self.detail {
            Detail::SpotInterruptionWarning(d) => d.instance_id.to_string(),
            Detail::RebalanceRecommendation(d) => d.instance_id.to_string(),
            Detail::LifecycleAction(a) => {
                format!("{} in {}", a.instance_id, a.auto_scaling_group_name)
            }
            Detail::AutoScalingTestNotification(t) => {
                t.auto_scaling_group_name.clone().unwrap_or_default()
            }
            Detail::DeploymentStateChange(d) => service_subject(&d.service),
            Detail::ServiceAction(s) => service_subject(&s.service),
            Detail::TaskStateChange(t) => t.task_arn.to_string(),
            Detail::ContainerInstanceStateChange(c) => match &c.ec2_instance_id {
                Some(i) => format!("{} ({i})", c.container_instance_arn),
                None => c.container_instance_arn.to_string(),
            },
            Detail::AlarmStateChange(a) | Detail::AlarmContributorStateChange(a) => {
                a.alarm_name.clone()
            }
            Detail::AlarmConfigurationChange { alarm_name } => {
                alarm_name.clone().unwrap_or_default()
            }
            Detail::Scheduled { rules } => rules.first().cloned().unwrap_or_default(),
            Detail::HealthEvent(h) => {
                let ids: Vec<&str> = h.instances.iter().map(InstanceId::as_str).collect();
                if ids.is_empty() {
                    h.event_type_code.clone()
                } else {
                    format!("{} ({})", h.event_type_code, excerpt(&ids.join(", "), 200))
                }
            }
            Detail::InstanceStateChange(c) => format!("{} ({})", c.instance_id, c.state),
            Detail::LaunchUnsuccessful(l) => l.auto_scaling_group_name.to_string(),
            Detail::InstanceRefresh(r) => r.auto_scaling_group_name.to_string(),
            Detail::MaintenanceDue(m) => m.instance_id.to_string(),
            Detail::Unrecognised {
                source,
                detail_type,
            } => {
                format!(
                    "{source} / {}",
                    detail_type.as_deref().unwrap_or("(no detail-type)")
                )
            }
        }
    }
}

fn service_subject(s: &EcsServiceRef) -> String {
    match &s.cluster {
        Some(c) => format!("{c}/{}", s.service),
        None => s.service.clone(),
    }
}

/// Why an input could not be turned into an [`Event`]. One clear line, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    NotJson {
        line: usize,
        column: usize,
        message: String,
    },
    /// A JSON value, but not a shape any AWS source sends us.
    UnknownShape(String),
    /// A field is missing or invalid. `path` is a JSON path such as `detail.EC2InstanceId`.
    Field { path: String, message: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotJson {
                line,
                column,
                message,
            } => {
                write!(
                    f,
                    "input is not valid JSON (line {line}, column {column}): {message}"
                )
            }
            ParseError::UnknownShape(what) => write!(f, "unrecognised payload: {what}"),
            ParseError::Field { path, message } => write!(f, "invalid event: {path}: {message}"),
        }
    }
}

impl std::error::Error for ParseError {}

fn field_err(path: impl Into<String>, message: impl Into<String>) -> ParseError {
    ParseError::Field {
        path: path.into(),
        message: excerpt(&message.into(), 300),
    }
}

/// Parse raw bytes (what the Lambda runtime receives).
pub fn parse_event(bytes: &[u8]) -> Result<Event, ParseError> {
    // A UTF-8 byte-order mark (some editors and tools write one) is not part of the JSON.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ParseError::NotJson {
        line: e.line(),
        column: e.column(),
        message: excerpt(&e.to_string(), 200),
    })?;
    parse_value(&value)
}

/// Parse an already-decoded JSON value.
pub fn parse_value(value: &Value) -> Result<Event, ParseError> {
    parse_inner(value, "", 0)
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_inner(value: &Value, prefix: &str, depth: u8) -> Result<Event, ParseError> {
    let Value::Object(obj) = value else {
        return Err(ParseError::UnknownShape(format!(
            "{}expected a JSON object, found {}",
            if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}: ")
            },
            describe(value)
        )));
    };
    if obj.contains_key("detail-type") {
        return parse_eventbridge(obj, prefix);
    }
    if let Some(records) = obj.get("Records") {
        return parse_records(records, prefix, depth);
    }
    if obj.contains_key("alarmData") {
        return parse_alarm_action(obj, prefix);
    }
    if obj.contains_key("LifecycleTransition") || obj.contains_key("LifecycleActionToken") {
        return parse_lifecycle_body(value, prefix, EventTime::Missing, "");
    }
    if obj.get("Event").and_then(Value::as_str) == Some(TEST_NOTIFICATION_EVENT) {
        return parse_test_notification(value, prefix);
    }
    if obj.contains_key("AlarmName") && obj.contains_key("NewStateValue") {
        return parse_sns_alarm(value, prefix, EventTime::Missing, "");
    }
    if let Some(source) = obj.get("source").and_then(Value::as_str) {
        // Has a source but no detail-type: something else's event format.
        return Ok(Event {
            envelope: Envelope {
                id: str_field(obj, "id"),
                source: source.to_owned(),
                ..Envelope::default()
            },
            ingress: Ingress::EventBridge,
            detail: Detail::Unrecognised {
                source: excerpt(source, 128),
                detail_type: None,
            },
        });
    }
    let keys: Vec<String> = obj.keys().take(5).map(|k| excerpt(k, 40)).collect();
    Err(ParseError::UnknownShape(format!(
        "{}not an EventBridge event, SNS event, alarm action or Auto Scaling notification (keys: {})",
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}: ")
        },
        if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        }
    )))
}

fn str_field(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key)
        .and_then(Value::as_str)
        .map(|s| excerpt(s, 256))
        .unwrap_or_default()
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty() || path == ".") {
        (true, true) => "(root)".to_owned(),
        (true, false) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// Deserialise with the failing field's JSON path in the error.
fn typed<T: DeserializeOwned>(v: &Value, path: &str) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        field_err(join(path, &inner), e.inner().to_string())
    })
}

fn parse_eventbridge(obj: &Map<String, Value>, prefix: &str) -> Result<Event, ParseError> {
    let envelope: Envelope = typed(&Value::Object(obj.clone()), prefix)?;
    let detail_type = match obj.get("detail-type") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(field_err(
                join(prefix, "detail-type"),
                format!("expected a string, found {}", describe(other)),
            ));
        }
        None => "",
    };
    let dpath = join(prefix, "detail");
    let detail_value = obj.get("detail");
    let need_detail = || -> Result<&Value, ParseError> {
        match detail_value {
            Some(v @ Value::Object(_)) => Ok(v),
            Some(other) => Err(field_err(
                &dpath,
                format!("expected an object, found {}", describe(other)),
            )),
            None => Err(field_err(&dpath, "missing")),
        }
    };
    let service_ref = || -> Result<EcsServiceRef, ParseError> {
        let rpath = join(prefix, "resources[0]");
        let first = envelope
            .resources
            .first()
            .ok_or_else(|| field_err(&rpath, "missing: ECS names the service in resources[0]"))?;
        Arn::parse(first)
            .and_then(EcsServiceRef::from_arn)
            .map_err(|e| field_err(&rpath, e))
    };
    let detail = match detail_type {
        SPOT_INTERRUPTION_WARNING => {
            Detail::SpotInterruptionWarning(typed(need_detail()?, &dpath)?)
        }
        REBALANCE_RECOMMENDATION => Detail::RebalanceRecommendation(typed(need_detail()?, &dpath)?),
        LAUNCH_LIFECYCLE_ACTION | TERMINATE_LIFECYCLE_ACTION => {
            Detail::LifecycleAction(typed(need_detail()?, &dpath)?)
        }
        DEPLOYMENT_STATE_CHANGE => {
            let detail = typed(need_detail()?, &dpath)?;
            Detail::DeploymentStateChange(DeploymentStateChange {
                service: service_ref()?,
                detail,
            })
        }
        SERVICE_ACTION => {
            let detail = typed(need_detail()?, &dpath)?;
            Detail::ServiceAction(ServiceAction {
                service: service_ref()?,
                detail,
            })
        }
        TASK_STATE_CHANGE => Detail::TaskStateChange(Box::new(typed(need_detail()?, &dpath)?)),
        CONTAINER_INSTANCE_STATE_CHANGE => {
            Detail::ContainerInstanceStateChange(typed(need_detail()?, &dpath)?)
        }
        ALARM_STATE_CHANGE | ALARM_CONTRIBUTOR_STATE_CHANGE => {
            let camel: alarm::CamelAlarm = typed(need_detail()?, &dpath)?;
            let arn = envelope.resources.first().and_then(|r| Arn::parse(r).ok());
            let alarm = Box::new(camel.normalise(
                arn,
                Some(envelope.account.clone()).filter(|a| !a.is_empty()),
                Some(envelope.region.clone()).filter(|r| !r.is_empty()),
            ));
            if detail_type == ALARM_STATE_CHANGE {
                Detail::AlarmStateChange(alarm)
            } else {
                Detail::AlarmContributorStateChange(alarm)
            }
        }
        ALARM_CONFIGURATION_CHANGE => Detail::AlarmConfigurationChange {
            alarm_name: detail_value
                .and_then(|d| d.get("alarmName"))
                .and_then(Value::as_str)
                .map(|s| excerpt(s, 256)),
        },
        SCHEDULED_EVENT => Detail::Scheduled {
            rules: envelope.resources.clone(),
        },
        HEALTH_EVENT => {
            let d = need_detail()?;
            let h = health::parse_health(d, &envelope.resources).map_err(|(p, m)| {
                match p.strip_prefix('/') {
                    Some(root) => field_err(join(prefix, root), m),
                    None => field_err(join(&dpath, &p), m),
                }
            })?;
            Detail::HealthEvent(Box::new(h))
        }
        INSTANCE_STATE_CHANGE => Detail::InstanceStateChange(typed(need_detail()?, &dpath)?),
        LAUNCH_UNSUCCESSFUL => Detail::LaunchUnsuccessful(typed(need_detail()?, &dpath)?),
        t if t.starts_with(INSTANCE_REFRESH_PREFIX) => {
            let mut r: InstanceRefresh = typed(need_detail()?, &dpath)?;
            r.status = excerpt(&t[INSTANCE_REFRESH_PREFIX.len()..], 64);
            Detail::InstanceRefresh(r)
        }
        SCHEDULED_MAINTENANCE if envelope.source == MAINTENANCE_SOURCE => {
            Detail::MaintenanceDue(Box::new(typed(need_detail()?, &dpath)?))
        }
        other => Detail::Unrecognised {
            source: excerpt(&envelope.source, 128),
            detail_type: Some(excerpt(other, 128)),
        },
    };
    Ok(Event {
        envelope,
        ingress: Ingress::EventBridge,
        detail,
    })
}

fn parse_records(records: &Value, prefix: &str, depth: u8) -> Result<Event, ParseError> {
    let rpath = join(prefix, "Records");
    let Value::Array(list) = records else {
        return Err(field_err(
            &rpath,
            format!("expected an array, found {}", describe(records)),
        ));
    };
    // Lambda delivers SNS notifications one record per invocation.
    let [record] = list.as_slice() else {
        return Err(field_err(
            &rpath,
            format!("expected exactly one record, found {}", list.len()),
        ));
    };
    let source = record
        .get("EventSource")
        .or_else(|| record.get("eventSource"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if source != "aws:sns" {
        return Ok(Event {
            envelope: Envelope {
                source: excerpt(source, 128),
                ..Envelope::default()
            },
            ingress: Ingress::Sns,
            detail: Detail::Unrecognised {
                source: excerpt(source, 128),
                detail_type: None,
            },
        });
    }
    let spath = format!("{rpath}[0].Sns");
    let sns = record
        .get("Sns")
        .ok_or_else(|| field_err(&spath, "missing"))?;
    let mpath = format!("{spath}.Message");
    let message = match sns.get("Message") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(field_err(
                &mpath,
                format!("expected a string, found {}", describe(other)),
            ));
        }
        None => return Err(field_err(&mpath, "missing")),
    };
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    let inner: Value = serde_json::from_str(message).map_err(|e| {
        field_err(
            &mpath,
            format!("not JSON: {}", excerpt(&e.to_string(), 120)),
        )
    })?;
    let time = sns
        .get("Timestamp")
        .and_then(Value::as_str)
        .map(EventTime::parse)
        .unwrap_or_default();
    let message_id = sns.get("MessageId").and_then(Value::as_str).unwrap_or("");
    let mut event = match &inner {
        Value::Object(o) if o.contains_key("AlarmName") && o.contains_key("NewStateValue") => {
            parse_sns_alarm(&inner, &mpath, time, message_id)?
        }
        Value::Object(o)
            if o.contains_key("LifecycleTransition") || o.contains_key("LifecycleActionToken") =>
        {
            parse_lifecycle_body(&inner, &mpath, time, message_id)?
        }
        Value::Object(o)
            if o.get("Event").and_then(Value::as_str) == Some(TEST_NOTIFICATION_EVENT) =>
        {
            parse_test_notification(&inner, &mpath)?
        }
        // An EventBridge event forwarded through SNS: parse it once more, no deeper.
        Value::Object(o) if o.contains_key("detail-type") && depth == 0 => {
            parse_inner(&inner, &mpath, depth + 1)?
        }
        // Another service's notification on a topic we are subscribed to (valid JSON, not ours):
        // acknowledged and logged, never retried into the on-failure destination.
        Value::Object(_) => Event {
            envelope: Envelope {
                id: excerpt(message_id, 128),
                source: "aws:sns".to_owned(),
                time,
                ..Envelope::default()
            },
            ingress: Ingress::Sns,
            detail: Detail::Unrecognised {
                source: "aws:sns".to_owned(),
                detail_type: None,
            },
        },
        _ => {
            return Err(ParseError::UnknownShape(format!(
                "{mpath}: not a CloudWatch alarm, Auto Scaling notification or EventBridge event"
            )));
        }
    };
    if let Some(topic) = sns
        .get("TopicArn")
        .and_then(Value::as_str)
        .and_then(|t| Arn::parse(t).ok())
    {
        if event.envelope.region.is_empty() {
            event.envelope.region = topic.region().to_owned();
        }
        if event.envelope.account.is_empty() {
            event.envelope.account = topic.account().to_owned();
        }
    }
    event.ingress = Ingress::Sns;
    Ok(event)
}

fn parse_sns_alarm(
    v: &Value,
    path: &str,
    time: EventTime,
    message_id: &str,
) -> Result<Event, ParseError> {
    let sns: alarm::SnsAlarm = typed(v, path)?;
    let alarm = sns.normalise(time.clone());
    let envelope = Envelope {
        id: excerpt(message_id, 128),
        detail_type: ALARM_STATE_CHANGE.to_owned(),
        source: "aws.cloudwatch".to_owned(),
        account: alarm.account.clone().unwrap_or_default(),
        region: alarm.region.clone().unwrap_or_default(),
        time: match time {
            EventTime::Missing => alarm.state.timestamp.clone(),
            t => t,
        },
        resources: alarm.alarm_arn.iter().map(|a| a.to_string()).collect(),
    };
    Ok(Event {
        envelope,
        ingress: Ingress::NotificationBody,
        detail: Detail::AlarmStateChange(Box::new(alarm)),
    })
}

fn parse_lifecycle_body(
    v: &Value,
    path: &str,
    time: EventTime,
    message_id: &str,
) -> Result<Event, ParseError> {
    let action: LifecycleAction = typed(v, path)?;
    let detail_type = match action.transition {
        LifecycleTransition::Launching => LAUNCH_LIFECYCLE_ACTION,
        _ => TERMINATE_LIFECYCLE_ACTION,
    };
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(|s| excerpt(s, 128))
            .unwrap_or_default()
    };
    let time = match time {
        EventTime::Missing => v
            .get("Time")
            .and_then(Value::as_str)
            .map(EventTime::parse)
            .unwrap_or_default(),
        t => t,
    };
    let id = if message_id.is_empty() {
        field("RequestId")
    } else {
        excerpt(message_id, 128)
    };
    Ok(Event {
        envelope: Envelope {
            id,
            detail_type: detail_type.to_owned(),
            source: "aws.autoscaling".to_owned(),
            account: field("AccountId"),
            region: String::new(),
            time,
            resources: Vec::new(),
        },
        ingress: Ingress::NotificationBody,
        detail: Detail::LifecycleAction(action),
    })
}

fn parse_test_notification(v: &Value, path: &str) -> Result<Event, ParseError> {
    let t: TestNotification = typed(v, path)?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(|s| excerpt(s, 128))
            .unwrap_or_default()
    };
    Ok(Event {
        envelope: Envelope {
            id: field("RequestId"),
            detail_type: TEST_NOTIFICATION_EVENT.to_owned(),
            source: "aws.autoscaling".to_owned(),
            account: field("AccountId"),
            time: v
                .get("Time")
                .and_then(Value::as_str)
                .map(EventTime::parse)
                .unwrap_or_default(),
            ..Envelope::default()
        },
        ingress: Ingress::NotificationBody,
        detail: Detail::AutoScalingTestNotification(t),
    })
}

fn parse_alarm_action(obj: &Map<String, Value>, prefix: &str) -> Result<Event, ParseError> {
    let dpath = join(prefix, "alarmData");
    let camel: alarm::CamelAlarm = typed(&obj["alarmData"], &dpath)?;
    let arn_text = str_field(obj, "alarmArn");
    let arn = Arn::parse(&arn_text).ok();
    let account = Some(str_field(obj, "accountId")).filter(|s| !s.is_empty());
    let region = Some(str_field(obj, "region")).filter(|s| !s.is_empty());
    let alarm = camel.normalise(arn, account, region);
    let time = obj
        .get("time")
        .and_then(Value::as_str)
        .map(EventTime::parse)
        .unwrap_or_default();
    Ok(Event {
        envelope: Envelope {
            id: String::new(),
            detail_type: ALARM_STATE_CHANGE.to_owned(),
            source: str_field(obj, "source"),
            account: alarm.account.clone().unwrap_or_default(),
            region: alarm.region.clone().unwrap_or_default(),
            time,
            resources: alarm.alarm_arn.iter().map(|a| a.to_string()).collect(),
        },
        ingress: Ingress::AlarmAction,
        detail: Detail::AlarmStateChange(Box::new(alarm)),
    })
}
