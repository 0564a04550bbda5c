//! Slack rendering: an incoming-webhook body (`application/json`) with Block Kit blocks inside a
//! coloured attachment, always within Slack's limits: 50 blocks, 150 characters in a header,
//! 3,000 in a section, 2,000 in a field, 10 fields a section. Text is cut at character
//! boundaries (never inside a UTF-8 sequence or an escape), with `…`.

use super::{Notification, Phase, Severity};
use crate::text::cut;
use serde_json::{Value, json};

pub const MAX_BLOCKS: usize = 50;
pub const MAX_HEADER: usize = 150;
pub const MAX_SECTION: usize = 3000;
pub const MAX_FIELD: usize = 2000;
pub const MAX_FIELDS_PER_SECTION: usize = 10;
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Fallback text shown in notifications and by clients that cannot show blocks.
pub const MAX_FALLBACK: usize = 500;

/// Slack's Web API (`SLACK_API_URL`).
pub const DEFAULT_API_URL: &str = "https://slack.com/api/";

/// A bot token from its secret: the bare token, or JSON with `token` or `bot_token`. Never shown.
pub fn bot_token_from_secret(value: &str, label: &str) -> Result<String, String> {
    let token = super::secret_field(value, label, &["bot_token", "token"])?;
    if !token.starts_with("xox") || token.len() < 10 || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!("{label}: not a Slack token (xoxb-… expected)"));
    }
    Ok(token)
}

/// Slack's Web API answers errors as HTTP 200 with `"ok": false` and an `error` code, sorted
/// as Slack documents them: `ratelimited` and `service_unavailable` did nothing and pass;
/// `internal_error` and `fatal_error` may have done part of the work ("it's possible some aspect
/// of the operation succeeded"), so their outcome is unknown; every other code is a refusal.
pub fn check_ok(body: &str) -> Result<Value, super::services::Failure> {
    use super::services::Failure;
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    if v["ok"].as_bool() == Some(true) {
        return Ok(v);
    }
    let error = v["error"].as_str().map_or_else(
        || "not a Slack Web API answer".to_owned(),
        |e| crate::text::shown(e, 80),
    );
    Err(match error.as_str() {
        "ratelimited" => Failure::Throttled {
            retry_after: None,
            detail: error,
        },
        "service_unavailable" | "request_timeout" => Failure::Transient(error),
        "internal_error" | "fatal_error" => Failure::Unknown(error),
        _ => Failure::refused(error),
    })
}

/// Escape Slack's control characters for mrkdwn.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escaped mrkdwn of `raw`, at most `max` characters; the cut is made before escaping so an
/// entity is never split.
pub fn fit(raw: &str, max: usize) -> String {
    let mut n = raw.chars().count().min(max);
    loop {
        let text = escape(&cut(raw, n));
        if text.chars().count() <= max || n == 0 {
            return text;
        }
        n = n.saturating_sub((text.chars().count() - max).max(1));
    }
}

/// The colour bar: by alarm state when there is one, else by severity.
pub fn colour(n: &Notification) -> &'static str {
    match n.state.as_deref() {
        Some("ALARM") => "#E01E5A",
        Some("OK") => "#2EB67D",
        Some("INSUFFICIENT_DATA") => "#9E9E9E",
        _ if n.phase() == Phase::Resolved => "#2EB67D",
        _ => match n.severity {
            Severity::Critical => "#E01E5A",
            Severity::High => "#E8912D",
            Severity::Medium => "#ECB22E",
            Severity::Low => "#36C5F0",
            Severity::Info => "#9E9E9E",
        },
    }
}

fn emoji(n: &Notification) -> &'static str {
    match n.state.as_deref() {
        Some("ALARM") => ":red_circle:",
        Some("OK") => ":large_green_circle:",
        Some("INSUFFICIENT_DATA") => ":white_circle:",
        _ if n.phase() == Phase::Resolved => ":white_check_mark:",
        _ => match n.severity {
            Severity::Critical | Severity::High => ":rotating_light:",
            Severity::Medium => ":warning:",
            Severity::Low | Severity::Info => ":information_source:",
        },
    }
}

/// The webhook body for `n`, with `mentions` (Slack mention syntax, never escaped) leading the
/// message text, where Slack notifies them.
pub fn render_with(n: &Notification, mentions: &[String]) -> Value {
    let mut body = render(n);
    if !mentions.is_empty() {
        let text = body["text"].as_str().unwrap_or_default().to_owned();
        body["text"] = Value::String(format!("{} {text}", mentions.join(" ")));
    }
    body
}

/// `chat.postMessage`: the incident's message in `channel`.
pub fn post_message(n: &Notification, channel: &str, mentions: &[String]) -> Value {
    let mut body = render_with(n, mentions);
    body["channel"] = json!(channel);
    body["unfurl_links"] = json!(false);
    body["unfurl_media"] = json!(false);
    body
}

/// `chat.update`: the incident's message showing its latest phase.
pub fn update_message(n: &Notification, channel: &str, ts: &str) -> Value {
    let mut body = render(n);
    body["channel"] = json!(channel);
    body["ts"] = json!(ts);
    body
}

/// `chat.postMessage` in the incident message's thread: one short line per later phase.
pub fn thread_reply(n: &Notification, channel: &str, ts: &str, late: bool) -> Value {
    let mut text = format!("{} {}", emoji(n), fit(&n.title, 300));
    if !n.summary.is_empty() {
        text.push_str(": ");
        text.push_str(&fit(&n.summary, 600));
    }
    if let Some(t) = &n.source.event_time {
        text.push_str(&format!(" ({})", fit(t, 40)));
    }
    if late {
        text.push_str(" _(delivered late: the message above shows a later state)_");
    }
    json!({"channel": channel, "thread_ts": ts, "text": text, "unfurl_links": false})
}

/// `chat.postMessage` in an old message's thread, pointing to the incident's new message (the
/// old one can no longer be edited).
pub fn continued(channel: &str, ts: &str) -> Value {
    json!({"channel": channel, "thread_ts": ts, "unfurl_links": false,
           "text": "This incident continues in a new message: this one can no longer be edited."})
}

/// The webhook body for `n`.
pub fn render(n: &Notification) -> Value {
    let mut blocks = Vec::new();
    let header = cut(&format!("{} {}", emoji(n), n.title), MAX_HEADER);
    blocks.push(
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
    );
    if !n.summary.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": fit(&n.summary, MAX_SECTION)}}));
    }
    // header + summary + links + context + an overflow note leave the rest for field sections.
    let max_field_sections = MAX_BLOCKS - 5;
    let max_fields = max_field_sections * MAX_FIELDS_PER_SECTION;
    let shown = n.fields.len().min(max_fields);
    for chunk in n.fields[..shown].chunks(MAX_FIELDS_PER_SECTION) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|f| {
                let name = fit(&f.name, 100);
                let room = MAX_FIELD - name.chars().count() - 3;
                json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", fit(&f.value, room))})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if shown < n.fields.len() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": format!("… {} more fields not shown", n.fields.len() - shown)}]}));
    }
    let links: Vec<String> = n
        .links
        .iter()
        .filter(|l| !l.url.contains(['|', '>', '<', ' ']))
        .map(|l| format!("<{}|{}>", l.url, fit(&l.label, 80)))
        .collect();
    if !links.is_empty() {
        let mut text = String::new();
        for l in links {
            if text.chars().count() + l.chars().count() + 3 > MAX_SECTION {
                break;
            }
            if !text.is_empty() {
                text.push_str(" · ");
            }
            text.push_str(&l);
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    let mut context: Vec<String> = vec![
        format!("*{}*", n.severity.as_str()),
        n.kind.as_str().to_owned(),
    ];
    for part in [&n.source.account_label(), &n.source.region] {
        if !part.is_empty() {
            context.push(fit(part, 100));
        }
    }
    if !n.source.function.is_empty() {
        context.push(format!("fleetguard/{}", fit(&n.source.function, 64)));
    }
    if let Some(t) = &n.source.event_time {
        context.push(fit(t, 40));
    }
    let elements: Vec<Value> = context
        .into_iter()
        .take(MAX_CONTEXT_ELEMENTS)
        .map(|t| json!({"type": "mrkdwn", "text": t}))
        .collect();
    blocks.push(json!({"type": "context", "elements": elements}));
    debug_assert!(blocks.len() <= MAX_BLOCKS);

    let fallback = if n.summary.is_empty() {
        n.title.clone()
    } else {
        format!("{}: {}", n.title, n.summary)
    };
    json!({
        "text": fit(&fallback, MAX_FALLBACK),
        "attachments": [{"color": colour(n), "blocks": blocks}],
    })
}

/// Check a rendered body against Slack's limits (used by tests, and handy when changing the renderer).
pub fn check_limits(body: &Value) -> Result<(), String> {
    let count = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
    let blocks = body["attachments"][0]["blocks"]
        .as_array()
        .ok_or("no blocks")?;
    if blocks.len() > MAX_BLOCKS {
        return Err(format!("{} blocks", blocks.len()));
    }
    for b in blocks {
        match b["type"].as_str() {
            Some("header") if count(&b["text"]["text"]) > MAX_HEADER => {
                return Err("header too long".into());
            }
            Some("section") => {
                if count(&b["text"]["text"]) > MAX_SECTION {
                    return Err(format!(
                        "section of {} characters",
                        count(&b["text"]["text"])
                    ));
                }
                let fields = b["fields"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                if fields.len() > MAX_FIELDS_PER_SECTION {
                    return Err(format!("{} fields in a section", fields.len()));
                }
                if let Some(f) = fields.iter().find(|f| count(&f["text"]) > MAX_FIELD) {
                    return Err(format!("field of {} characters", count(&f["text"])));
                }
            }
            Some("context")
                if b["elements"].as_array().map_or(0, Vec::len) > MAX_CONTEXT_ELEMENTS =>
            {
                return Err("too many context elements".into());
            }
            Some("header" | "context") => {}
            other => return Err(format!("unexpected block type {other:?}")),
        }
    }
    if count(&body["text"]) > MAX_FALLBACK {
        return Err("fallback text too long".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{NotificationKind, Severity};

    fn assert_within_limits(body: &Value) {
        check_limits(body).unwrap();
    }

    #[test]
    fn cut_and_fit_respect_characters_and_entities() {
        assert_eq!(cut("héllo wörld", 5), "héll…");
        assert_eq!(cut("short", 10), "short");
        let f = fit(&"<&>".repeat(100), 10);
        assert!(f.chars().count() <= 10, "{f}");
        assert!(!f.contains("&a…") && !f.ends_with("&l…"), "{f}");
        assert_eq!(fit("a < b", 20), "a &lt; b");
    }

    #[test]
    fn huge_notifications_stay_within_limits() {
        let mut n = Notification::new(
            NotificationKind::Alarm,
            Severity::High,
            "T".repeat(500),
            "k",
        )
        .summary("Ü<".repeat(60_000));
        for i in 0..700 {
            n = n.field(format!("field {i} {}", "n".repeat(300)), "v&".repeat(5000));
        }
        for i in 0..300 {
            n = n.link(format!("link {i}"), format!("https://example.com/{i}"));
        }
        n.state = Some("ALARM".into());
        let body = render(&n);
        assert_within_limits(&body);
        assert_eq!(body["attachments"][0]["color"], "#E01E5A");
        let text = body.to_string();
        assert!(text.contains("more fields not shown"));
    }

    #[test]
    fn small_notification_renders_everything() {
        let mut n = Notification::new(
            NotificationKind::DrainStarted,
            Severity::Medium,
            "Draining i-0abc",
            "k",
        )
        .summary("2 tasks of checkout-api are moving")
        .field("Cluster", "prod")
        .link("Console", "https://console.aws.amazon.com/ecs");
        n.source.account = "123".into();
        n.source.function = "spot-interruption".into();
        let body = render(&n);
        assert_within_limits(&body);
        let s = body.to_string();
        for needle in [
            "Draining i-0abc",
            "*Cluster*\\nprod",
            "<https://console.aws.amazon.com/ecs|Console>",
            "fleetguard/spot-interruption",
            "#ECB22E",
        ] {
            assert!(s.contains(needle), "{needle} in {s}");
        }
    }
}
