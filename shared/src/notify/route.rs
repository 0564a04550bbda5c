//! Routing rules (`NOTIFY_ROUTES`): which destinations a notification goes to.
//!
//! ```json
//! [
//!   {"name": "payments-critical",
//!    "match": {"kinds": ["alarm"], "severities": ["critical", "high"], "alarm_names": ["checkout-*"],
//!              "states": ["ALARM", "OK"], "tags": {"team": "payments"}},
//!    "sns_topic_arns": ["arn:aws:sns:eu-west-1:111122223333:payments-pager"],
//!    "slack_webhook_secret_arns": ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:slack-payments"],
//!    "severity": "critical"},
//!   {"name": "quiet", "match": {"states": ["INSUFFICIENT_DATA"]}, "drop": true}
//! ]
//! ```
//! Rules are tried in order; the first that matches decides, unless it says `"continue": true`,
//! in which case later matching rules add their destinations. `"default_destinations": true` adds
//! the defaults (`SNS_TOPIC_ARN`, the default Slack webhook). A notification no rule matches goes
//! to the defaults. All conditions of a `match` must hold; a list matches any of its values;
//! `alarm_names` and tag values are globs (`*`, `?`, `[…]`).

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
}

impl Destination {
    /// Stable identifier, for dedupe records, logs and errors; never contains a webhook URL.
    pub fn id(&self) -> String {
        match self {
            Destination::Sns { topic_arn } => format!("sns:{topic_arn}"),
            Destination::SlackSecret { secret_id } => format!("slack:{secret_id}"),
            Destination::SlackUrl => "slack:SLACK_WEBHOOK_URL".to_owned(),
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
    #[serde(default)]
    pub default_destinations: bool,
    /// Override the notification's severity.
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub drop: bool,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
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
            if r.drop && (!r.sns_topic_arns.is_empty() || !r.slack_webhook_secret_arns.is_empty()) {
                return Err(format!("{name}: a rule that drops cannot also send"));
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

    /// Every Slack secret any rule names (read once at init).
    pub fn slack_secrets(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .flat_map(|(r, ..)| r.slack_webhook_secret_arns.iter().map(String::as_str))
    }

    /// Pick destinations for `n`; `defaults` are used when no rule matches (or a rule asks for them).
    pub fn route(&self, n: &Notification, defaults: &[Destination]) -> Route {
        let mut route = Route::default();
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
            if rule.drop {
                route.dropped = route.destinations.is_empty();
                return route;
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
        route.destinations.sort();
        route.destinations.dedup();
        route
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
mod tests {
    use super::*;

    fn alarm(name: &str, state: &str, severity: Severity, tags: &[(&str, &str)]) -> Notification {
        let mut n = Notification::new(NotificationKind::Alarm, severity, name, name);
        n.state = Some(state.to_owned());
        n.resource_name = Some(name.to_owned());
        n.tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        n
    }

    fn defaults() -> Vec<Destination> {
        vec![
            Destination::Sns {
                topic_arn: "arn:aws:sns:eu-west-1:1:default".into(),
            },
            Destination::SlackUrl,
        ]
    }

    #[test]
    fn no_rules_means_defaults() {
        let r = Rules::default().route(&alarm("a", "ALARM", Severity::High, &[]), &defaults());
        assert_eq!(r.destinations.len(), 2);
        assert_eq!(r.rules, vec!["default"]);
    }

    #[test]
    fn first_match_wins_unless_continue() {
        let rules = Rules::parse(
            r#"[
              {"name": "pay", "match": {"tags": {"team": "pay*"}, "alarm_names": ["checkout-*"]},
               "sns_topic_arns": ["arn:aws:sns:eu-west-1:1:pager"], "severity": "critical", "continue": true},
              {"name": "pay-slack", "match": {"tags": {"team": "payments"}},
               "slack_webhook_secret_arns": ["arn:aws:secretsmanager:eu-west-1:1:secret:pay"]},
              {"name": "never", "match": {"kinds": ["alarm"]}, "sns_topic_arns": ["arn:aws:sns:eu-west-1:1:never"]}
            ]"#,
        )
        .unwrap();
        let r = rules.route(
            &alarm(
                "checkout-cpu",
                "ALARM",
                Severity::High,
                &[("team", "payments")],
            ),
            &defaults(),
        );
        assert_eq!(r.rules, vec!["pay", "pay-slack"]);
        assert_eq!(r.severity, Some(Severity::Critical));
        assert_eq!(
            r.destinations,
            vec![
                Destination::Sns {
                    topic_arn: "arn:aws:sns:eu-west-1:1:pager".into()
                },
                Destination::SlackSecret {
                    secret_id: "arn:aws:secretsmanager:eu-west-1:1:secret:pay".into()
                },
            ]
        );
        // Not payments: falls to the catch-all rule, not the defaults.
        let r = rules.route(
            &alarm("orders", "ALARM", Severity::High, &[("team", "orders")]),
            &defaults(),
        );
        assert_eq!(r.rules, vec!["never"]);
    }

    #[test]
    fn drop_and_defaults() {
        let rules = Rules::parse(
            r#"[{"name": "quiet", "match": {"states": ["INSUFFICIENT_DATA"]}, "drop": true},
                {"name": "crit", "match": {"severities": ["critical"]}, "default_destinations": true,
                 "sns_topic_arns": ["arn:aws:sns:eu-west-1:1:pager"]}]"#,
        )
        .unwrap();
        let r = rules.route(
            &alarm("a", "INSUFFICIENT_DATA", Severity::Low, &[]),
            &defaults(),
        );
        assert!(r.dropped && r.destinations.is_empty());
        let r = rules.route(&alarm("a", "ALARM", Severity::Critical, &[]), &defaults());
        assert_eq!(r.destinations.len(), 3);
        let r = rules.route(&alarm("a", "ALARM", Severity::Low, &[]), &defaults());
        assert_eq!(r.rules, vec!["default"]);
    }

    #[test]
    fn bad_rules_are_rejected_with_their_name() {
        for (json, needle) in [
            (r#"{"not": "a list"}"#, "JSON list"),
            (
                r#"[{"name": "x", "match": {"kinds": ["alrm"]}}]"#,
                "x: unknown kind",
            ),
            (
                r#"[{"name": "x", "severity": "purple"}]"#,
                "unknown severity",
            ),
            (
                r#"[{"name": "x", "match": {"alarm_names": ["[a"]}}]"#,
                "bad glob",
            ),
            (
                r#"[{"name": "x", "drop": true, "sns_topic_arns": ["arn:aws:sns:r:1:t"]}]"#,
                "cannot also send",
            ),
            (
                r#"[{"name": "x", "sns_topic_arns": ["https://example"]}]"#,
                "not an SNS topic ARN",
            ),
            (r#"[{"name": "x", "mtach": {}}]"#, "unknown field"),
        ] {
            let e = Rules::parse(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
