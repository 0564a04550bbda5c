//! `aws.health` events (`AWS Health Event`), and the payload of the one-time schedules that
//! `instance-maintenance` leaves with EventBridge Scheduler (`fleetguard` / `Scheduled
//! Maintenance`).
//!
//! Health writes `startTime`, `endTime` and `lastUpdatedTime` as RFC 2822 dates
//! (`Sat, 05 Jun 2027 15:10:09 GMT`). Of an EC2 scheduled change, the window is what the
//! function acts on: a missing, placeholder or malformed `startTime` is an error naming the
//! field. Other Health events (issues, account notifications, other services) are read
//! leniently and acknowledged.

use crate::ids::InstanceId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

crate::open_enum!(
    /// `eventTypeCategory`.
    HealthCategory {
        ScheduledChange = "scheduledChange",
        Issue = "issue",
        AccountNotification = "accountNotification",
        Investigation = "investigation",
    }
);

crate::open_enum!(
    /// `statusCode`: an update that closes the event (`closed`) ends or cancels the window.
    HealthStatus {
        Upcoming = "upcoming",
        Open = "open",
        Closed = "closed",
    }
);

/// What an EC2 scheduled change does to the instance, from `eventTypeCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MaintenanceKind {
    /// `AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED`, `AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED`:
    /// stopped (EBS-backed) or terminated (instance store) at the window.
    Retirement,
    /// `AWS_EC2_INSTANCE_STOP_SCHEDULED`: stopped at the window.
    Stop,
    /// `AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED` (and its flexible form): rebooted.
    Reboot,
    /// `AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED`: the host is rebooted, and the instance
    /// with it.
    SystemReboot,
    /// Network or power maintenance: the instance may be briefly affected, and stays.
    SystemMaintenance,
    /// Another EC2 scheduled change (told, not acted on).
    Other,
}

impl MaintenanceKind {
    pub fn from_code(code: &str) -> Self {
        match code {
            "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
            | "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED" => Self::Retirement,
            "AWS_EC2_INSTANCE_STOP_SCHEDULED" => Self::Stop,
            "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED"
            | "AWS_EC2_INSTANCE_REBOOT_FLEXIBLE_MAINTENANCE_SCHEDULED" => Self::Reboot,
            "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED" => Self::SystemReboot,
            c if c.starts_with("AWS_EC2_") && c.ends_with("_MAINTENANCE_SCHEDULED") => {
                Self::SystemMaintenance
            }
            _ => Self::Other,
        }
    }

    /// Whether the instance comes back after the window (so a drain is undone).
    pub fn comes_back(self) -> bool {
        matches!(self, Self::Reboot | Self::SystemReboot)
    }

    /// Whether the instance is taken out of service before the window.
    pub fn takes_instance_away(self) -> bool {
        matches!(
            self,
            Self::Retirement | Self::Stop | Self::Reboot | Self::SystemReboot
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Retirement => "instance retirement",
            Self::Stop => "instance stop",
            Self::Reboot => "instance reboot",
            Self::SystemReboot => "system reboot",
            Self::SystemMaintenance => "system maintenance",
            Self::Other => "scheduled change",
        }
    }
}

/// An `AWS Health Event`, as much of it as the suite uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthEvent {
    pub event_arn: String,
    pub service: String,
    pub event_type_code: String,
    pub category: HealthCategory,
    pub status: HealthStatus,
    /// The window, for an EC2 scheduled change (always present then).
    #[serde(serialize_with = "opt_rfc3339::serialize")]
    pub start: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_rfc3339::serialize")]
    pub end: Option<DateTime<Utc>>,
    /// `lastUpdatedTime`: orders the updates of one event (absent or unreadable: `None`).
    #[serde(serialize_with = "opt_rfc3339::serialize")]
    pub last_updated: Option<DateTime<Utc>>,
    /// The EC2 instances among the affected entities.
    pub instances: Vec<InstanceId>,
    /// `eventRegion`: the Region the event is about (the envelope's is where it was delivered).
    pub event_region: Option<String>,
    /// The English description, when there is one.
    pub description: Option<String>,
}

impl HealthEvent {
    /// An EC2 scheduled change: the only Health events acted on.
    pub fn is_ec2_scheduled_change(&self) -> bool {
        self.service == "EC2" && self.category == HealthCategory::ScheduledChange
    }

    pub fn kind(&self) -> MaintenanceKind {
        MaintenanceKind::from_code(&self.event_type_code)
    }
}

#[derive(Deserialize)]
struct RawHealth {
    #[serde(
        rename = "eventArn",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    event_arn: Option<String>,
    #[serde(default, deserialize_with = "super::lenient::opt_string")]
    service: Option<String>,
    #[serde(
        rename = "eventTypeCode",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    event_type_code: Option<String>,
    #[serde(
        rename = "eventTypeCategory",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    category: Option<String>,
    #[serde(
        rename = "statusCode",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    status: Option<String>,
    #[serde(rename = "startTime", default)]
    start: Option<Value>,
    #[serde(rename = "endTime", default)]
    end: Option<Value>,
    #[serde(rename = "lastUpdatedTime", default)]
    last_updated: Option<Value>,
    #[serde(rename = "affectedEntities", default)]
    affected_entities: Option<Value>,
    #[serde(
        rename = "eventRegion",
        default,
        deserialize_with = "super::lenient::opt_string"
    )]
    event_region: Option<String>,
    #[serde(rename = "eventDescription", default)]
    description: Option<Value>,
}

/// RFC 2822 as Health writes it; RFC 3339 accepted too (the Health API's own form). A weekday
/// that disagrees with the date (seen in aws-node-termination-handler's samples) is ignored, as
/// most RFC 2822 parsers do: the date decides.
pub fn parse_health_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let rfc2822 = |t: &str| {
        DateTime::parse_from_rfc2822(t)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    rfc2822(s)
        .or_else(|| {
            // "Www, DD Mmm YYYY …": parse again without the weekday.
            let (day, rest) = s.split_once(',')?;
            (day.len() == 3 && day.chars().all(|c| c.is_ascii_alphabetic()))
                .then(|| rfc2822(rest.trim()))
                .flatten()
        })
        .or_else(|| crate::time::parse_timestamp(s))
}

/// `detail` of an `AWS Health Event`; `resources` from the envelope (instance ids or ARNs).
/// Errors are (JSON path under `detail`, or from the root when it starts with `/`, message).
pub fn parse_health(detail: &Value, resources: &[String]) -> Result<HealthEvent, (String, String)> {
    let raw: RawHealth = serde_json::from_value(detail.clone())
        .map_err(|e| (String::new(), crate::text::excerpt(&e.to_string(), 200)))?;
    let text = |o: Option<String>, n: usize| crate::text::excerpt(o.as_deref().unwrap_or(""), n);
    let mut ev = HealthEvent {
        event_arn: text(raw.event_arn, 512),
        service: text(raw.service, 64),
        event_type_code: text(raw.event_type_code, 128),
        category: HealthCategory::from(text(raw.category, 64).as_str()),
        status: HealthStatus::from(text(raw.status, 32).as_str()),
        start: None,
        end: None,
        last_updated: raw
            .last_updated
            .as_ref()
            .and_then(Value::as_str)
            .and_then(parse_health_time),
        instances: Vec::new(),
        event_region: raw.event_region.map(|r| crate::text::excerpt(&r, 32)),
        description: raw.description.as_ref().and_then(english_description),
    };
    if !ev.is_ec2_scheduled_change() {
        return Ok(ev);
    }
    if ev.event_arn.is_empty() {
        return Err((
            "eventArn".into(),
            "missing: a scheduled change is known by its event ARN".into(),
        ));
    }
    let time = |v: Option<&Value>, field: &str, required: bool| match v {
        Some(Value::String(s)) => parse_health_time(s).map(Some).ok_or_else(|| {
            (
                field.to_owned(),
                format!(
                    "not an RFC 2822 date (as in \"Sat, 05 Jun 2027 15:10:09 GMT\"): {}",
                    crate::text::shown(s, 64)
                ),
            )
        }),
        None | Some(Value::Null) if !required => Ok(None),
        None => Err((field.to_owned(), "missing".to_owned())),
        Some(other) => Err((
            field.to_owned(),
            format!(
                "expected an RFC 2822 date string, found {}",
                crate::text::excerpt(&other.to_string(), 40)
            ),
        )),
    };
    ev.start = time(raw.start.as_ref(), "startTime", true)?;
    ev.end = time(raw.end.as_ref(), "endTime", false)?;
    let mut values: Vec<(String, String)> = Vec::new();
    match &raw.affected_entities {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(v) = item.get("entityValue").and_then(Value::as_str) {
                    values.push((format!("affectedEntities[{i}].entityValue"), v.to_owned()));
                }
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err((
                "affectedEntities".into(),
                "expected an array of entities".into(),
            ));
        }
    }
    if values.is_empty() {
        for (i, r) in resources.iter().enumerate() {
            let id = r.rsplit('/').next().unwrap_or(r);
            values.push((format!("/resources[{i}]"), id.to_owned()));
        }
    }
    for (path, v) in values {
        // Only instances are acted on: an account or a host entity is not one.
        if v.starts_with("i-") {
            let id = InstanceId::parse(&v).map_err(|e| (path, e))?;
            if !ev.instances.contains(&id) {
                ev.instances.push(id);
            }
        }
    }
    Ok(ev)
}

fn english_description(v: &Value) -> Option<String> {
    let items = v.as_array()?;
    let pick = items
        .iter()
        .find(|d| d.get("language").and_then(Value::as_str) == Some("en_US"))
        .or(items.first())?;
    pick.get("latestDescription")
        .and_then(Value::as_str)
        .map(|s| crate::text::excerpt(s, 1500))
}

/// Which step of a scheduled maintenance a schedule's payload asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaintenanceStep {
    /// The lead time before the window: take the instance out of service.
    OutOfService,
    /// After a reboot's window: put back what was taken out.
    Return,
}

/// A registration to put back after a reboot: target group and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRef {
    #[serde(rename = "targetGroupArn")]
    pub target_group_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// The payload of a one-time schedule: small, and everything the step needs (nothing is kept
/// anywhere else).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceDue {
    pub step: MaintenanceStep,
    #[serde(rename = "instanceId")]
    pub instance_id: InstanceId,
    #[serde(rename = "eventArn")]
    pub event_arn: String,
    #[serde(rename = "eventTypeCode")]
    pub event_type_code: String,
    /// The window's start and end, RFC 3339.
    #[serde(rename = "windowStart", with = "rfc3339")]
    pub window_start: DateTime<Utc>,
    #[serde(
        rename = "windowEnd",
        default,
        with = "opt_rfc3339",
        skip_serializing_if = "Option::is_none"
    )]
    pub window_end: Option<DateTime<Utc>>,
    /// For [`MaintenanceStep::Return`]: the registrations taken out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetRef>,
}

impl MaintenanceDue {
    pub fn kind(&self) -> MaintenanceKind {
        MaintenanceKind::from_code(&self.event_type_code)
    }
}

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        crate::time::parse_timestamp(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "not an RFC 3339 time: {}",
                crate::text::shown(&s, 40)
            ))
        })
    }
}

mod opt_rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => crate::time::parse_timestamp(&s).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "not an RFC 3339 time: {}",
                    crate::text::shown(&s, 40)
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(start: Value) -> Value {
        json!({
            "eventArn": "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_1",
            "service": "EC2",
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": "scheduledChange",
            "statusCode": "upcoming",
            "startTime": start,
            "affectedEntities": [{"entityValue": "i-0a1b2c3d4e5f60718"}, {"entityValue": "AWS_ACCOUNT"}]
        })
    }

    #[test]
    fn rfc_2822_window_and_instances() {
        let ev = parse_health(&detail(json!("Sat, 05 Jun 2027 15:10:09 GMT")), &[]).unwrap();
        assert_eq!(
            ev.start.unwrap(),
            "2027-06-05T15:10:09Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(ev.instances.len(), 1);
        assert_eq!(ev.kind(), MaintenanceKind::Retirement);
        assert!(ev.is_ec2_scheduled_change());
    }

    #[test]
    fn a_weekday_that_disagrees_with_the_date_is_ignored() {
        // 1 December 2026 is a Tuesday: the date wins, as in most RFC 2822 parsers.
        let ev = parse_health(&detail(json!("Wed, 01 Dec 2026 10:00:00 GMT")), &[]).unwrap();
        assert_eq!(
            ev.start.unwrap(),
            "2026-12-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(parse_health_time("Xyzzy, 01 Dec 2026 10:00:00 GMT"), None);
    }

    #[test]
    fn bad_windows_name_the_field() {
        for bad in [
            json!("Www, DD Mmm YYYY HH:MM:SS GMT"),
            json!(42),
            json!("tomorrow"),
        ] {
            let (path, msg) = parse_health(&detail(bad), &[]).unwrap_err();
            assert_eq!(path, "startTime", "{msg}");
        }
        let mut d = detail(json!("Sat, 05 Jun 2027 15:10:09 GMT"));
        d.as_object_mut().unwrap().remove("startTime");
        assert_eq!(parse_health(&d, &[]).unwrap_err().0, "startTime");
        let mut d = detail(json!("Sat, 05 Jun 2027 15:10:09 GMT"));
        d["affectedEntities"] = json!([{"entityValue": "i-XYZ"}]);
        assert_eq!(
            parse_health(&d, &[]).unwrap_err().0,
            "affectedEntities[0].entityValue"
        );
    }

    #[test]
    fn other_health_events_are_read_leniently() {
        let ev = parse_health(
            &json!({"service": "RDS", "eventTypeCategory": "issue", "startTime": "?"}),
            &[],
        )
        .unwrap();
        assert!(!ev.is_ec2_scheduled_change());
    }

    #[test]
    fn kinds_from_codes() {
        use MaintenanceKind::*;
        for (code, kind) in [
            (
                "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
                Retirement,
            ),
            ("AWS_EC2_INSTANCE_STOP_SCHEDULED", Stop),
            ("AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED", Reboot),
            ("AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED", SystemReboot),
            (
                "AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED",
                SystemMaintenance,
            ),
            ("AWS_EC2_DEDICATED_HOST_RETIREMENT_SCHEDULED", Other),
        ] {
            assert_eq!(MaintenanceKind::from_code(code), kind, "{code}");
        }
    }

    #[test]
    fn payload_round_trips() {
        let p = MaintenanceDue {
            step: MaintenanceStep::Return,
            instance_id: InstanceId::parse("i-0a1b2c3d4e5f60718").unwrap(),
            event_arn: "arn:aws:health:eu-west-1::event/EC2/X/Y".into(),
            event_type_code: "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED".into(),
            window_start: "2027-06-05T15:10:09Z".parse().unwrap(),
            window_end: None,
            targets: vec![TargetRef {
                target_group_arn: "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/1"
                    .into(),
                port: Some(80),
            }],
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["step"], "return");
        assert_eq!(serde_json::from_value::<MaintenanceDue>(v).unwrap(), p);
    }
}
