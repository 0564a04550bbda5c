//! What the incident tests share: every destination configured against the local sink.

use crate::{Env, Setup, lookup, sample};
use serde_json::{Value, json};

pub const BOT_TOKEN: &str = "xoxb-000000000000-0000000000000-demoBotTokenValue00";
pub const ROUTING_KEY: &str = "R0DEMO0ROUTING0KEY0000000000000A";
pub const TEAMS_SIG: &str = "demo-teams-sig";
pub const CHANNEL: &str = "#fleet-ops";

/// Every destination: the default webhook and `#fleet-ops` through the Web API, PagerDuty and
/// Teams by a route that keeps the defaults, `<!here>` for high and critical.
pub fn env(s: &Setup, table: Option<&str>, extra: &[(&str, &str)]) -> Env {
    let routes = json!([{
        "name": "everything",
        "default_destinations": true,
        "pagerduty_routing_key_secret_arns": [s.seeded("pagerduty_secret_arn")],
        "teams_webhook_secret_arns": [s.seeded("teams_secret_arn")],
        "mention": "<!here>",
        "mention_severities": ["critical", "high"],
    }])
    .to_string();
    let sink = s.aws.slack.clone();
    let mut e = s.env(&[
        (
            "SLACK_BOT_TOKEN_SECRET_ARN",
            &s.seeded("slack_bot_token_secret_arn"),
        ),
        ("SLACK_CHANNEL", CHANNEL),
        ("SLACK_API_URL", &format!("{sink}/api/")),
        ("PAGERDUTY_EVENTS_URL", &format!("{sink}/v2/enqueue")),
        ("NOTIFY_ROUTES", &routes),
    ]);
    if let Some(t) = table {
        e.insert("DEDUPE_TABLE".into(), t.to_owned());
    }
    for (k, v) in extra {
        e.insert((*k).to_owned(), (*v).to_owned());
    }
    e
}

pub fn body(r: &Value) -> Value {
    serde_json::from_str(r["body"].as_str().unwrap()).unwrap()
}

/// Requests that reached the service (not the ones the sink failed on purpose).
pub async fn answered(s: &Setup, prefix: &str) -> Vec<Value> {
    s.aws
        .requests_to(prefix)
        .await
        .into_iter()
        .filter(|r| r["status"] == 200)
        .collect()
}

pub fn alarm(file: &str) -> Value {
    sample(file)
}

pub async fn alarm_context(s: &Setup, env: &Env) -> alarm_fanout::Lambda {
    alarm_fanout::build(lookup(env), &s.sdk).await.unwrap()
}
