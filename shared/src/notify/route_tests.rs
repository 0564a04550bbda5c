//! Tests of `route.rs`.

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
fn new_destinations_and_mentions_by_severity() {
    let rules = Rules::parse(
        r##"[{"name": "pay", "match": {"tags": {"team": "payments"}},
             "slack_channels": ["#pay-oncall"],
             "pagerduty_routing_key_secret_arns": ["arn:aws:secretsmanager:eu-west-1:1:secret:pd"],
             "teams_webhook_secret_arns": ["teams-pay"],
             "mention": "<!subteam^S0123>", "mention_severities": ["critical"], "continue": true},
            {"name": "all", "mention": "<!here>", "slack_channels": ["C0ALL"]}]"##,
    )
    .unwrap();
    let crit = alarm("a", "ALARM", Severity::Critical, &[("team", "payments")]);
    let r = rules.route(&crit, &defaults());
    assert_eq!(
        r.destinations,
        vec![
            Destination::SlackChannel {
                channel: "#pay-oncall".into()
            },
            Destination::SlackChannel {
                channel: "C0ALL".into()
            },
            Destination::PagerDuty {
                secret_id: "arn:aws:secretsmanager:eu-west-1:1:secret:pd".into()
            },
            Destination::Teams {
                secret_id: "teams-pay".into()
            },
        ]
    );
    assert_eq!(r.mentions, vec!["<!subteam^S0123>", "<!here>"]);
    let high = alarm("a", "ALARM", Severity::High, &[("team", "payments")]);
    assert_eq!(rules.route(&high, &defaults()).mentions, vec!["<!here>"]);
    // Nobody is called to a resolution.
    let ok = crit.clone().incident("a", crate::notify::Phase::Resolved);
    assert!(rules.route(&ok, &defaults()).mentions.is_empty());
    assert_eq!(rules.secrets().count(), 2);
    assert_eq!(rules.slack_channels().count(), 2);
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
        (
            r#"[{"name": "x", "mention": "@here"}]"#,
            "not Slack mention syntax",
        ),
        (
            r#"[{"name": "x", "mention_severities": ["critical"]}]"#,
            "without a mention",
        ),
        (
            r#"[{"name": "x", "slack_channels": ["two words"]}]"#,
            "not a Slack channel",
        ),
        (
            r#"[{"name": "x", "drop": true, "teams_webhook_secret_arns": ["t"]}]"#,
            "cannot also send",
        ),
    ] {
        let e = Rules::parse(json).unwrap_err();
        assert!(e.contains(needle), "{json}: {e}");
    }
}

#[test]
fn a_rule_can_match_the_account_an_event_is_about() {
    let rules = Rules::parse(
        r#"[{"name": "payments", "match": {"accounts": ["111111111111"]},
             "sns_topic_arns": ["arn:aws:sns:eu-west-1:1:payments"]}]"#,
    )
    .unwrap();
    let in_account = |account: &str| {
        let mut n = alarm("HighCPU", "ALARM", Severity::High, &[]);
        n.source.account = account.to_owned();
        rules.route(&n, &defaults())
    };
    assert_eq!(in_account("111111111111").rules, ["payments"]);
    assert_eq!(in_account("222222222222").rules, ["default"]);
    assert_eq!(in_account("").rules, ["default"]);
    let e = Rules::parse(r#"[{"match": {"accounts": ["prod"]}, "drop": true}]"#).unwrap_err();
    assert!(e.contains("not a 12-digit account id"), "{e}");
}
