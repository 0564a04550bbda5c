//! SNS rendering: a JSON body with a stable schema, message attributes for subscription filter
//! policies, and a Subject within SNS's rules.
//!
//! Body schema `fleetguard.notification/1`:
//! `{schema, kind, severity, title, summary, state?, resource_name?, fields: [{name, value}],
//!   links: [{label, url}], tags: {…}, dedupe_key, incident: {key, phase}, source: {function,
//!   account, region, event_id, detail_type, event_time?}, truncated}`
//!
//! Attributes (String): `kind`, `severity`, `state`, `phase`, `account`, `account_name` (`ACCOUNT_NAMES`), `region`, `source` (the function),
//! and the tags as `tag.<key>`, at most 10 attributes in all (SNS's limit).

use super::Notification;
use crate::text::cut;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const SCHEMA: &str = "fleetguard.notification/1";
/// SNS's limit is 256 KiB for the message and its attributes together; leave room for attributes.
pub const MAX_BODY_BYTES: usize = 240 * 1024;
pub const MAX_SUBJECT: usize = 99;
pub const MAX_ATTRIBUTES: usize = 10;

/// The `Publish` call's body for the destination port: subject, message and attributes.
pub fn call_body(n: &Notification) -> Value {
    let attributes: serde_json::Map<String, Value> = attributes(n)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({"subject": subject(n), "message": body(n), "attributes": attributes})
}

/// Subject: ASCII only, no control characters, starting with a letter, digit or punctuation,
/// under 100 characters.
pub fn subject(n: &Notification) -> String {
    let mut s: String = n
        .title
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim()
        .to_owned();
    if s.is_empty() {
        s = format!("fleetguard {}", n.kind.as_str());
    }
    cut(&s, MAX_SUBJECT).replace('…', "~")
}

/// The body as JSON text, within [`MAX_BODY_BYTES`]: long values are shortened, then fields
/// dropped, and `truncated` says so.
pub fn body(n: &Notification) -> String {
    let full = body_value(n, usize::MAX, usize::MAX);
    let text = full.to_string();
    if text.len() <= MAX_BODY_BYTES {
        return text;
    }
    for (value_max, fields_max) in [
        (4000, usize::MAX),
        (1000, 200),
        (300, 50),
        (100, 10),
        (50, 0),
    ] {
        let text = body_value(n, value_max, fields_max).to_string();
        if text.len() <= MAX_BODY_BYTES {
            return text;
        }
    }
    // Only a title or tags of absurd size get here.
    json!({"schema": SCHEMA, "kind": n.kind.as_str(), "severity": n.severity.as_str(),
           "title": cut(&n.title, 1000), "dedupe_key": cut(&n.dedupe_key, 1000), "truncated": true})
    .to_string()
}

fn body_value(n: &Notification, value_max: usize, fields_max: usize) -> Value {
    let truncated = value_max != usize::MAX;
    let fields: Vec<Value> = n
        .fields
        .iter()
        .take(fields_max)
        .map(|f| json!({"name": cut(&f.name, 200.min(value_max)), "value": cut(&f.value, value_max)}))
        .collect();
    let links: Vec<Value> = n
        .links
        .iter()
        .take(fields_max.max(5))
        .map(|l| json!({"label": l.label, "url": l.url}))
        .collect();
    let tags: BTreeMap<String, String> = n
        .tags
        .iter()
        .map(|(k, v)| (cut(k, 128), cut(v, 256)))
        .collect();
    json!({
        "schema": SCHEMA,
        "kind": n.kind.as_str(),
        "severity": n.severity.as_str(),
        "title": cut(&n.title, value_max.max(200)),
        "summary": cut(&n.summary, value_max),
        "state": n.state,
        "resource_name": n.resource_name,
        "fields": fields,
        "links": links,
        "tags": tags,
        "dedupe_key": n.dedupe_key,
        "incident": {"key": cut(n.incident_key(), 1000), "phase": n.phase().as_str()},
        "source": n.source,
        "truncated": truncated,
    })
}

/// Message attributes as (name, value) pairs.
pub fn attributes(n: &Notification) -> Vec<(String, String)> {
    let mut out = vec![
        ("kind".to_owned(), n.kind.as_str().to_owned()),
        ("severity".to_owned(), n.severity.as_str().to_owned()),
    ];
    let mut push = |k: &str, v: &str| {
        if !v.trim().is_empty() {
            out.push((k.to_owned(), cut(v, 256)));
        }
    };
    push("state", n.state.as_deref().unwrap_or(""));
    push("phase", n.phase().as_str());
    push("account", &n.source.account);
    push(
        "account_name",
        n.source.account_name.as_deref().unwrap_or(""),
    );
    push("region", &n.source.region);
    push("source", &n.source.function);
    // Tags fill what is left; `team` and `severity` first since routing uses them most.
    let mut tags: Vec<(&String, &String)> = n.tags.iter().collect();
    tags.sort_by_key(|(k, _)| {
        (
            !matches!(k.as_str(), "team" | "severity" | "env" | "environment"),
            (*k).clone(),
        )
    });
    for (k, v) in tags {
        if out.len() >= MAX_ATTRIBUTES {
            break;
        }
        let name = attribute_name(k);
        if v.trim().is_empty() || name.is_empty() || out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        out.push((name, cut(v, 256)));
    }
    out
}

/// `tag.<key>` with characters SNS does not allow in attribute names replaced by `_`.
fn attribute_name(key: &str) -> String {
    let clean: String = key
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>();
    // SNS rejects successive periods and a trailing one: collapse runs, trim the ends.
    let mut collapsed = String::with_capacity(clean.len());
    for c in clean.chars() {
        if !(c == '.' && collapsed.ends_with('.')) {
            collapsed.push(c);
        }
    }
    let clean = collapsed.trim_matches('.');
    if clean.is_empty() {
        String::new()
    } else {
        format!("tag.{clean}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{NotificationKind, Severity};

    #[test]
    fn tag_keys_become_attribute_names_sns_accepts() {
        // The defect: `a...b` became `tag.a_..b`, which Publish rejects on every retry.
        for (key, name) in [
            ("a...b", "tag.a.b"),
            ("a..b", "tag.a.b"),
            ("..x..", "tag.x"),
            ("cost center", "tag.cost_center"),
            ("...", ""),
        ] {
            assert_eq!(attribute_name(key), name, "{key}");
        }
        for key in ["a....b.", "x.y..z", ". .", "é..."] {
            let n = attribute_name(key);
            assert!(!n.contains("..") && !n.ends_with('.'), "{key} → {n}");
        }
    }

    #[test]
    fn subject_is_ascii_and_short() {
        let n = Notification::new(
            NotificationKind::Alarm,
            Severity::High,
            format!("ALARM: \"日本\" {}\n", "x".repeat(200)),
            "k",
        );
        let s = subject(&n);
        assert!(s.len() <= MAX_SUBJECT, "{}", s.len());
        assert!(s.is_ascii() && !s.chars().any(|c| c.is_control()), "{s}");
        assert!(s.starts_with("ALARM: \"??\""));
    }

    #[test]
    fn attributes_carry_filters_and_tags_within_the_limit() {
        let mut n = Notification::new(NotificationKind::Alarm, Severity::Critical, "t", "k");
        n.state = Some("ALARM".into());
        n.source.account = "123456789012".into();
        n.source.region = "eu-west-1".into();
        n.source.function = "alarm-fanout".into();
        for i in 0..20 {
            n.tags.insert(format!("k{i:02}"), "v".into());
        }
        n.tags.insert("team".into(), "payments".into());
        n.tags.insert("cost center".into(), "42".into());
        n.tags.insert("empty".into(), "".into());
        let a = attributes(&n);
        assert_eq!(a.len(), MAX_ATTRIBUTES);
        assert_eq!(a[0], ("kind".into(), "alarm".into()));
        assert!(a.contains(&("state".into(), "ALARM".into())));
        assert!(a.contains(&("tag.team".into(), "payments".into())), "{a:?}");
        assert_eq!(attribute_name("cost center"), "tag.cost_center");
        assert_eq!(
            attribute_name("aws:cloudformation"),
            "tag.aws_cloudformation"
        );
    }

    #[test]
    fn body_fits_sns_and_says_when_cut() {
        let mut n = Notification::new(NotificationKind::Alarm, Severity::High, "big", "k")
            .summary("d".repeat(300_000));
        for i in 0..100 {
            n = n.field(format!("f{i}"), "v".repeat(10_000));
        }
        let b = body(&n);
        assert!(b.len() <= MAX_BODY_BYTES);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["truncated"], true);
        let small = body(
            &Notification::new(NotificationKind::Alarm, Severity::High, "small", "k").summary("s"),
        );
        let v: Value = serde_json::from_str(&small).unwrap();
        assert_eq!(v["truncated"], false);
        assert_eq!(v["summary"], "s");
    }
}
