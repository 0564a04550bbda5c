//! Routing rules (`NOTIFY_ROUTES`): which destinations a notification goes to.
//!
//! ```json
//! [
//!   {"name": "payments-critical",
//!    "match": {"kinds": ["alarm"], "severities": ["critical", "high"], "alarm_names": ["checkout-*"],
//!              "states": ["ALARM", "OK"], "tags": {"team": "payments"},
//!              "accounts": ["111122223333"]},
//!    "sns_topic_arns": ["arn:aws:sns:eu-west-1:111122223333:payments-pager"],
//!    "slack_webhook_secret_arns": ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:slack-payments"],
//!    "slack_channels": ["#payments-oncall"],
//!    "pagerduty_routing_key_secret_arns": ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pd-payments"],
//!    "teams_webhook_secret_arns": ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:teams-payments"],
//!    "mention": "<!subteam^S0123ABCD>", "mention_severities": ["critical"],
//!    "severity": "critical"},
//!   {"name": "quiet", "match": {"states": ["INSUFFICIENT_DATA"]}, "drop": true}
//! ]
//! ```
//! Rules are tried in order; the first that matches decides, unless it says `"continue": true`,
//! in which case later matching rules add their destinations. `"default_destinations": true` adds
//! the defaults (`SNS_TOPIC_ARN`, the default Slack webhook). A notification no rule matches goes
//! to the defaults. All conditions of a `match` must hold; a list matches any of its values;
//! `alarm_names` and tag values are globs (`*`, `?`, `[…]`). `mention` (Slack mention syntax:
//! `<!here>`, `<!channel>`, `<!subteam^ID>`, `<@U…>`) is added to the Slack messages that open or
//! update an incident of the severities in `mention_severities` (every severity when empty).

use super::{Notification, NotificationKind, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Where a notification can go. Slack webhooks are named by where their URL comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    Sns {
        topic_arn: String,
    },
    /// A webhook read from a Secrets Manager secret (by ARN or name).
    SlackSecret {
        secret_id: String,
    },
    /// `SLACK_WEBHOOK_URL` (local use): the one default webhook given as a plain URL.
    SlackUrl,
    /// A channel posted to through Slack's Web API with the bot token: one message per incident.
    SlackChannel {
        channel: String,
    },
    /// A PagerDuty Events API v2 integration, its routing key read from a secret.
    PagerDuty {
        secret_id: String,
    },
    /// A Microsoft Teams Workflows webhook, its URL read from a secret.
    Teams {
        secret_id: String,
    },
}

impl Destination {
    /// Stable identifier, for dedupe records, logs and errors; never contains a webhook URL.
    pub fn id(&self) -> String {
        match self {
            Destination::Sns { topic_arn } => format!("sns:{topic_arn}"),
            Destination::SlackSecret { secret_id } => format!("slack:{secret_id}"),
            Destination::SlackUrl => "slack:SLACK_WEBHOOK_URL".to_owned(),
            Destination::SlackChannel { channel } => format!("slack-channel:{channel}"),
            Destination::PagerDuty { secret_id } => format!("pagerduty:{secret_id}"),
            Destination::Teams { secret_id } => format!("teams:{secret_id}"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub severities: Vec<String>,
    #[serde(default)]
    pub alarm_names: Vec<String>,
    #[serde(default)]
    pub states: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Account ids the event is about (a hub's members, or its own).
    #[serde(default)]
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "match")]
    pub when: Match,
    #[serde(default)]
    pub sns_topic_arns: Vec<String>,
    #[serde(default)]
    pub slack_webhook_secret_arns: Vec<String>,
    /// Channels for the Web API (needs `SLACK_BOT_TOKEN_SECRET_ARN`).
    #[serde(default)]
    pub slack_channels: Vec<String>,
    #[serde(default)]
    pub pagerduty_routing_key_secret_arns: Vec<String>,
    #[serde(default)]
    pub teams_webhook_secret_arns: Vec<String>,
    /// Slack mention added for `mention_severities` (all when empty).
    #[serde(default)]
    pub mention: Option<String>,
    #[serde(default)]
    pub mention_severities: Vec<String>,
    #[serde(default)]
    pub default_destinations: bool,
    /// Override the notification's severity.
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub drop: bool,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// What an alarm's `INSUFFICIENT_DATA` does to its incident here (default `update`).
    #[serde(default)]
    pub insufficient_data: Option<InsufficientData>,
    /// Storm detection and digests on this route (defaults apply when absent).
    #[serde(default)]
    pub storm: Option<super::storm::StormSettings>,
}

/// A route's policy for an alarm's `INSUFFICIENT_DATA`: data is missing, which is not a recovery
/// and rarely a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsufficientData {
    /// Shown on an open incident (its Slack message updated), pages nobody, never opens or
    /// reopens one; message-per-phase destinations (SNS, webhooks, Teams) still get it.
    #[default]
    Update,
    /// Treated as an opening: a new incident, paged where the route pages.
    Open,
    /// Not sent to this route's destinations at all.
    Ignore,
}

/// A rule with its globs compiled and its severity parsed.
type CompiledRule = (
    Rule,
    Vec<glob::Pattern>,
    BTreeMap<String, glob::Pattern>,
    Option<Severity>,
);

/// Parsed and validated rules, with the compiled globs.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<CompiledRule>,
}

/// The outcome of routing one notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    pub destinations: Vec<Destination>,
    /// Names of the rules that applied (`default` when none did).
    pub rules: Vec<String>,
    pub severity: Option<Severity>,
    pub dropped: bool,
    /// Slack mentions for this notification (already filtered by severity and phase).
    pub mentions: Vec<String>,
    /// The first matching rule's `insufficient_data`, or the default.
    pub insufficient_data: InsufficientData,
    /// The first matching rule's `storm` settings, or the defaults.
    pub storm: super::storm::StormSettings,
}

impl Rules {
    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: Vec<Rule> =
            serde_json::from_str(json).map_err(|e| format!("not a JSON list of rules: {e}"))?;
        let mut rules = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let name = r.name.clone().unwrap_or_else(|| format!("rule {i}"));
            for k in &r.when.kinds {
                if NotificationKind::parse(k).is_none() {
                    return Err(format!("{name}: unknown kind {k:?}"));
                }
            }
            if let Some(a) = r
                .when
                .accounts
                .iter()
                .find(|a| !crate::accounts::is_account_id(a))
            {
                return Err(format!("{name}: not a 12-digit account id: {a:?}"));
            }
            for s in &r.when.severities {
                if Severity::parse(s).is_none() {
                    return Err(format!("{name}: unknown severity {s:?}"));
                }
            }
            let severity = match &r.severity {
                Some(s) => Some(
                    Severity::parse(s).ok_or_else(|| format!("{name}: unknown severity {s:?}"))?,
                ),
                None => None,
            };
            for arn in &r.sns_topic_arns {
                if !arn.starts_with("arn:") || !arn.contains(":sns:") {
                    return Err(format!("{name}: not an SNS topic ARN: {arn:?}"));
                }
            }
            let sends = !r.sns_topic_arns.is_empty()
                || !r.slack_webhook_secret_arns.is_empty()
                || !r.slack_channels.is_empty()
                || !r.pagerduty_routing_key_secret_arns.is_empty()
                || !r.teams_webhook_secret_arns.is_empty();
            if r.drop && sends {
                return Err(format!("{name}: a rule that drops cannot also send"));
            }
            for c in &r.slack_channels {
                check_channel(c).map_err(|e| format!("{name}: {e}"))?;
            }
            for id in r
                .slack_webhook_secret_arns
                .iter()
                .chain(&r.pagerduty_routing_key_secret_arns)
                .chain(&r.teams_webhook_secret_arns)
            {
                if id.trim().is_empty() || id.contains(char::is_whitespace) {
                    return Err(format!("{name}: not a secret ARN or name: {id:?}"));
                }
            }
            if let Some(m) = &r.mention {
                check_mention(m).map_err(|e| format!("{name}: {e}"))?;
            }
            if let Some(s) = &r.storm {
                s.check().map_err(|e| format!("{name}: {e}"))?;
            }
            for s in &r.mention_severities {
                if Severity::parse(s).is_none() {
                    return Err(format!(
                        "{name}: unknown severity {s:?} in mention_severities"
                    ));
                }
            }
            if !r.mention_severities.is_empty() && r.mention.is_none() {
                return Err(format!("{name}: mention_severities without a mention"));
            }
            let names = r
                .when
                .alarm_names
                .iter()
                .map(|g| glob::Pattern::new(g).map_err(|e| format!("{name}: bad glob {g:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let tags = r
                .when
                .tags
                .iter()
                .map(|(k, g)| {
                    glob::Pattern::new(g)
                        .map(|p| (k.clone(), p))
                        .map_err(|e| format!("{name}: bad glob {g:?} for tag {k}: {e}"))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            rules.push((r, names, tags, severity));
        }
        Ok(Self { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every secret any rule names (Slack and Teams webhooks, PagerDuty routing keys).
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|(r, ..)| {
            r.slack_webhook_secret_arns
                .iter()
                .chain(&r.pagerduty_routing_key_secret_arns)
                .chain(&r.teams_webhook_secret_arns)
                .map(String::as_str)
        })
    }

    /// Every Slack channel any rule names (these need the bot token).
    pub fn slack_channels(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .flat_map(|(r, ..)| r.slack_channels.iter().map(String::as_str))
    }

    /// Whether any rule sends to SNS.
    pub fn any_sns(&self) -> bool {
        self.rules
            .iter()
            .any(|(r, ..)| !r.sns_topic_arns.is_empty())
    }

    /// Pick destinations for `n`; `defaults` are used when no rule matches (or a rule asks for them).
    pub fn route(&self, n: &Notification, defaults: &[Destination]) -> Route {
        let mut route = Route::default();
        let mut mentions: Vec<(&str, &[String])> = Vec::new();
        let mut insufficient = None;
        let mut storm = None;
        for (i, (rule, names, tags, severity)) in self.rules.iter().enumerate() {
            if !matches(rule, names, tags, n) {
                continue;
            }
            route
                .rules
                .push(rule.name.clone().unwrap_or_else(|| format!("rule {i}")));
            if route.severity.is_none() {
                route.severity = *severity;
            }
            insufficient = insufficient.or(rule.insufficient_data);
            storm = storm.or(rule.storm);
            if rule.drop {
                route.dropped = route.destinations.is_empty();
                if route.dropped {
                    return route;
                }
                break;
            }
            if let Some(m) = &rule.mention {
                mentions.push((m, &rule.mention_severities));
            }
            route
                .destinations
                .extend(rule.sns_topic_arns.iter().map(|t| Destination::Sns {
                    topic_arn: t.clone(),
                }));
            route
                .destinations
                .extend(
                    rule.slack_webhook_secret_arns
                        .iter()
                        .map(|s| Destination::SlackSecret {
                            secret_id: s.clone(),
                        }),
                );
            route.destinations.extend(
                rule.slack_channels
                    .iter()
                    .map(|c| Destination::SlackChannel { channel: c.clone() }),
            );
            route
                .destinations
                .extend(rule.pagerduty_routing_key_secret_arns.iter().map(|s| {
                    Destination::PagerDuty {
                        secret_id: s.clone(),
                    }
                }));
            route
                .destinations
                .extend(
                    rule.teams_webhook_secret_arns
                        .iter()
                        .map(|s| Destination::Teams {
                            secret_id: s.clone(),
                        }),
                );
            if rule.default_destinations {
                route.destinations.extend(defaults.iter().cloned());
            }
            if !rule.continue_matching {
                break;
            }
        }
        if route.rules.is_empty() {
            route.rules.push("default".to_owned());
            route.destinations.extend(defaults.iter().cloned());
        }
        route.insufficient_data = insufficient.unwrap_or_default();
        route.storm = storm.unwrap_or_default();
        route.destinations.sort();
        route.destinations.dedup();
        // Mentions call people to something that needs them: never on a resolution.
        let severity = route.severity.unwrap_or(n.severity);
        if n.phase() != super::Phase::Resolved {
            for (m, severities) in mentions {
                let wanted = severities.is_empty()
                    || severities
                        .iter()
                        .any(|s| Severity::parse(s) == Some(severity));
                if wanted && !route.mentions.iter().any(|x| x == m) {
                    route.mentions.push(m.to_owned());
                }
            }
        }
        route
    }
}

/// A channel as `chat.postMessage` takes it: an ID (`C0123ABCD`) or a name (`#ops`, `ops`).
pub fn check_channel(c: &str) -> Result<(), String> {
    let bare = c.strip_prefix('#').unwrap_or(c);
    if bare.is_empty()
        || bare.len() > 80
        || bare.contains(|ch: char| ch.is_whitespace() || ch == ',')
    {
        return Err(format!("not a Slack channel: {c:?}"));
    }
    Ok(())
}

/// Slack mention syntax only: `@here` written as text would notify nobody.
fn check_mention(m: &str) -> Result<(), String> {
    let tokens: Vec<&str> = m.split_whitespace().collect();
    let ok = !tokens.is_empty()
        && m.len() <= 200
        && tokens.iter().all(|t| {
            (t.starts_with("<!") || t.starts_with("<@") || t.starts_with("<#"))
                && t.ends_with('>')
                && t.len() > 3
                && !t[1..t.len() - 1].contains(['<', '>'])
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "mention {m:?} is not Slack mention syntax (<!here>, <!channel>, <!subteam^S0123>, <@U0123>)"
        ))
    }
}

fn matches(
    rule: &Rule,
    names: &[glob::Pattern],
    tags: &BTreeMap<String, glob::Pattern>,
    n: &Notification,
) -> bool {
    let w = &rule.when;
    let any = |list: &[String], value: &str| {
        list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(value))
    };
    if !any(&w.kinds, n.kind.as_str()) {
        return false;
    }
    if !w.severities.is_empty()
        && !w
            .severities
            .iter()
            .any(|s| Severity::parse(s) == Some(n.severity))
    {
        return false;
    }
    if !w.states.is_empty() && !n.state.as_deref().is_some_and(|s| any(&w.states, s)) {
        return false;
    }
    if !w.accounts.is_empty() && !w.accounts.contains(&n.source.account) {
        return false;
    }
    if !names.is_empty()
        && !n
            .resource_name
            .as_deref()
            .is_some_and(|r| names.iter().any(|p| p.matches(r)))
    {
        return false;
    }
    tags.iter()
        .all(|(k, p)| n.tags.get(k).is_some_and(|v| p.matches(v)))
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
