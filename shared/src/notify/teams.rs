//! Microsoft Teams through a Workflows webhook (Office 365 connectors are retired): a message
//! envelope with one Adaptive Card attachment holding the same facts as the Slack message. Teams
//! cannot update a posted card, so each phase is its own card. Kept under Teams' 28 KB message
//! limit with room to spare.

use super::{Notification, Severity};
use crate::text::cut;
use serde_json::{Value, json};

pub const CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
pub const MAX_BYTES: usize = 24 * 1024;
const MAX_FACTS: usize = 30;
const MAX_ACTIONS: usize = 6;

/// Adaptive Card text is Markdown: keep what people wrote from turning into links or emphasis.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '_' | '[' | ']' | '`' | '#' | '<' | '>' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn colour(n: &Notification) -> &'static str {
    match n.state.as_deref() {
        Some("ALARM") => "Attention",
        Some("OK") => "Good",
        Some("INSUFFICIENT_DATA") => "Default",
        _ if n.phase() == super::Phase::Resolved => "Good",
        _ => match n.severity {
            Severity::Critical | Severity::High => "Attention",
            Severity::Medium => "Warning",
            Severity::Low | Severity::Info => "Accent",
        },
    }
}

fn card(n: &Notification, facts: usize, summary_chars: usize) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "text": plain(&cut(&n.title, 200)), "weight": "Bolder",
        "size": "Medium", "wrap": true, "color": colour(n),
    })];
    if !n.summary.is_empty() {
        body.push(json!({"type": "TextBlock", "text": plain(&cut(&n.summary, summary_chars)), "wrap": true}));
    }
    let shown = n.fields.len().min(facts);
    if shown > 0 {
        let facts: Vec<Value> = n.fields[..shown]
            .iter()
            .map(
                |f| json!({"title": plain(&cut(&f.name, 80)), "value": plain(&cut(&f.value, 500))}),
            )
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    if shown < n.fields.len() {
        body.push(json!({"type": "TextBlock", "isSubtle": true, "wrap": true,
            "text": format!("… {} more fields not shown", n.fields.len() - shown)}));
    }
    let mut context = vec![
        n.severity.as_str().to_owned(),
        n.kind.as_str().to_owned(),
        n.phase().as_str().to_owned(),
    ];
    for part in [&n.source.account_label(), &n.source.region] {
        if !part.is_empty() {
            context.push(cut(part, 100));
        }
    }
    if !n.source.function.is_empty() {
        context.push(format!("fleetguard/{}", cut(&n.source.function, 64)));
    }
    if let Some(t) = &n.source.event_time {
        context.push(cut(t, 40));
    }
    body.push(
        json!({"type": "TextBlock", "text": plain(&context.join(" · ")),
        "isSubtle": true, "size": "Small", "wrap": true}),
    );
    let actions: Vec<Value> = n
        .links
        .iter()
        .filter(|l| l.url.starts_with("https://") && l.url.len() <= 2000)
        .take(MAX_ACTIONS)
        .map(|l| json!({"type": "Action.OpenUrl", "title": cut(&l.label, 60), "url": l.url}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": CONTENT_TYPE,
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
                "actions": actions,
            }
        }]
    })
}

/// The webhook body for `n`, within [`MAX_BYTES`]: facts and summary shrink until it fits.
pub fn render(n: &Notification) -> Value {
    let (mut facts, mut summary) = (MAX_FACTS, 3000);
    loop {
        let c = card(n, facts, summary);
        if c.to_string().len() <= MAX_BYTES || (facts == 0 && summary <= 200) {
            return c;
        }
        if facts > 0 {
            facts /= 2;
        } else {
            summary /= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotificationKind;

    #[test]
    fn a_card_with_the_facts_and_within_limits() {
        let mut n = Notification::new(
            NotificationKind::DrainStarted,
            Severity::Medium,
            "Draining i-0abc",
            "k",
        )
        .summary("2 tasks *moving*")
        .field("Cluster", "prod")
        .link("Instance", "https://console.aws.amazon.com/ec2");
        let c = render(&n);
        assert_eq!(c["type"], "message");
        let a = &c["attachments"][0];
        assert_eq!(a["contentType"], CONTENT_TYPE);
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        let s = c.to_string();
        for needle in [
            "Draining i-0abc",
            "\\\\*moving\\\\*",
            "\"title\":\"Cluster\"",
            "Action.OpenUrl",
        ] {
            assert!(s.contains(needle), "{needle} in {s}");
        }
        for i in 0..400 {
            n = n.field(format!("f{i}"), "ü".repeat(2000));
        }
        n.summary = "x".repeat(100_000);
        let big = render(&n);
        assert!(big.to_string().len() <= MAX_BYTES);
        assert!(big.to_string().contains("more fields not shown"));
    }
}
