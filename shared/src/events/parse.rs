//! The one parse entry: raw bytes or a JSON value → [`Event`], through whichever wrapper it came
//! in (EventBridge, SNS, an SQS or SNS record, a direct alarm action), with errors that name the
//! JSON path.

use super::*;

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
