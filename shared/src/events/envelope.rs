//! The EventBridge envelope, and the same facts for payloads that arrive without one.

use crate::time::EventTime;
use serde::{Deserialize, Serialize};

/// How the payload reached the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ingress {
    /// An EventBridge event (rule target).
    EventBridge,
    /// A Lambda SNS event whose record's `Message` is the payload.
    Sns,
    /// A bare SNS or SQS message body (an Auto Scaling notification, or an alarm message).
    NotificationBody,
    /// CloudWatch's direct Lambda alarm action (`alarmData`).
    AlarmAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Envelope {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub time: EventTime,
    #[serde(default, deserialize_with = "crate::events::lenient::strings")]
    pub resources: Vec<String>,
}
