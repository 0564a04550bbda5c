//! PagerDuty Events API v2 (`POST /v2/enqueue`): an incident's opening and updates `trigger`, its
//! resolution `resolve`, all with the same `dedup_key`. Within PagerDuty's limits: `dedup_key` at
//! most 255 characters, `summary` at most 1,024, the whole event well under 512 KB.

use super::incident::PagerDutyAction;
use super::{Notification, Severity};
use crate::text::cut;
use serde_json::{Map, Value, json};

pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
pub const MAX_DEDUP_KEY: usize = 255;
pub const MAX_SUMMARY: usize = 1024;
/// PagerDuty takes up to 512 KB; custom details are cut well before.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
const MAX_LINKS: usize = 10;

/// A routing (integration) key from its secret: the bare key, or JSON with `routing_key` or
/// `integration_key`. Never shown: errors name the secret only.
pub fn routing_key_from_secret(value: &str, label: &str) -> Result<String, String> {
    let key = super::secret_field(value, label, &["routing_key", "integration_key"])?;
    // Integration keys are 32 characters of [0-9a-zA-Z]; anything else is a pasting mistake.
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "{label}: not a PagerDuty routing key (32 letters and digits expected)"
        ));
    }
    Ok(key)
}

/// The incident key as PagerDuty's `dedup_key`: itself when short, else a prefix and a digest.
pub fn dedup_key(incident_key: &str) -> String {
    let full = format!("fleetguard|{incident_key}");
    if full.len() <= MAX_DEDUP_KEY {
        return full;
    }
    format!(
        "{}|{}",
        cut(&full, 200).trim_end_matches('…'),
        super::digest(&full)
    )
}

pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "info",
    }
}

/// The event body for `n` (the routing key added by the caller).
pub fn render(n: &Notification, action: PagerDutyAction, routing_key: &str) -> Value {
    let key = dedup_key(n.incident_key());
    if action == PagerDutyAction::Resolve {
        return json!({"routing_key": routing_key, "event_action": action.as_str(), "dedup_key": key});
    }
    let summary = if n.summary.is_empty() {
        n.title.clone()
    } else {
        format!("{}: {}", n.title, n.summary)
    };
    let source = [
        n.resource_name.as_deref(),
        Some(n.source.account.as_str()).filter(|a| !a.is_empty()),
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or("fleetguard");
    let mut details = Map::new();
    let mut size = 0usize;
    for f in &n.fields {
        let value = cut(&f.value, 2000);
        size += f.name.len() + value.len();
        if size > MAX_EVENT_BYTES / 2 {
            details.insert("…".into(), json!("more fields not shown"));
            break;
        }
        details.insert(cut(&f.name, 100), Value::String(value));
    }
    if let Some(s) = &n.state {
        details.insert("state".into(), json!(s));
    }
    details.insert("incident".into(), json!(n.incident_key()));
    if !n.source.account.is_empty() {
        details.insert("account".into(), json!(cut(&n.source.account_label(), 300)));
    }
    let mut payload = json!({
        "summary": cut(&summary, MAX_SUMMARY),
        "source": cut(source, 255),
        "severity": severity(n.severity),
        "component": cut(n.resource_name.as_deref().unwrap_or(n.kind.as_str()), 255),
        "group": cut(if n.source.function.is_empty() { "fleetguard" } else { &n.source.function }, 255),
        "class": n.kind.as_str(),
        "custom_details": details,
    });
    if let Some(t) = &n.source.event_time {
        payload["timestamp"] = json!(t);
    }
    let links: Vec<Value> = n
        .links
        .iter()
        .take(MAX_LINKS)
        .map(|l| json!({"href": l.url, "text": cut(&l.label, 100)}))
        .collect();
    json!({
        "routing_key": routing_key,
        "event_action": action.as_str(),
        "dedup_key": key,
        "client": "fleetguard",
        "payload": payload,
        "links": links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{NotificationKind, Phase};

    const KEY: &str = "R0123456789abcdefghijklmnopqrstu";

    #[test]
    fn routing_keys_from_secrets() {
        assert_eq!(routing_key_from_secret(KEY, "s").unwrap(), KEY);
        assert_eq!(
            routing_key_from_secret(&format!("{{\"routing_key\": \"{KEY}\"}}"), "s").unwrap(),
            KEY
        );
        let e = routing_key_from_secret("https://events.pagerduty.com/x", "arn:s").unwrap_err();
        assert!(e.starts_with("arn:s:") && !e.contains("events."), "{e}");
        assert!(routing_key_from_secret("{\"key\": 1}", "s").is_err());
    }

    #[test]
    fn trigger_and_resolve_share_the_key_and_stay_in_limits() {
        let mut n = Notification::new(NotificationKind::Alarm, Severity::High, "cpu", "d1")
            .summary("x".repeat(5000))
            .incident("arn:aws:cloudwatch:eu-west-1:1:alarm:cpu", Phase::Opened);
        for i in 0..500 {
            n = n.field(format!("f{i}"), "v".repeat(3000));
        }
        n = n.link("CloudWatch", "https://console.aws.amazon.com/cloudwatch");
        let t = render(&n, PagerDutyAction::Trigger, KEY);
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["payload"]["severity"], "error");
        assert_eq!(
            t["payload"]["summary"].as_str().unwrap().chars().count(),
            MAX_SUMMARY
        );
        assert!(t.to_string().len() < MAX_EVENT_BYTES);
        assert_eq!(t["links"][0]["text"], "CloudWatch");
        let r = render(&n, PagerDutyAction::Resolve, KEY);
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], t["dedup_key"]);
        assert_eq!(
            t["dedup_key"],
            "fleetguard|arn:aws:cloudwatch:eu-west-1:1:alarm:cpu"
        );
        let long = dedup_key(&"k".repeat(1000));
        assert!(long.len() <= MAX_DEDUP_KEY);
        assert_ne!(long, dedup_key(&"k".repeat(1001)));
    }
}
