//! `alarm-fanout` end to end: the real handler, the real SNS/Secrets Manager/DynamoDB clients
//! against moto, and the real HTTP client against the local Slack sink.

use fleetguard_integration::{
    CapturedLogs, Env, Setup, dedupe_table, drain_queue, invoke, lookup, repo_root, sample,
    topic_with_queue,
};
use serde_json::Value;

const WEBHOOK_TOKEN: &str = "demo-webhook-token";

/// The seeded topic and the default Slack webhook, plus `extra`.
fn env(s: &Setup, extra: &[(&str, &str)]) -> Env {
    let mut env = s.env(&[("SNS_TOPIC_ARN", &s.seeded("topic_arn"))]);
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

async fn context(s: &Setup, env: &Env) -> alarm_fanout::Lambda {
    alarm_fanout::build(lookup(env), &s.sdk).await.unwrap()
}

fn alarm_samples() -> Vec<String> {
    let manifest: serde_json::Map<String, Value> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/manifest.json")).unwrap(),
    )
    .unwrap();
    manifest
        .iter()
        .filter(|(_, v)| {
            matches!(
                v["kind"].as_str(),
                Some("AlarmStateChange" | "AlarmContributorStateChange")
            )
        })
        .map(|(k, _)| k.clone())
        .collect()
}

#[tokio::test]
async fn every_alarm_sample_sends_one_slack_and_one_sns_message() {
    let s = Setup::new().await;
    // Deliver muted and suppressed ones too, so every sample is exercised end to end.
    let env = env(
        &s,
        &[("MUTED_ALARMS", "notify"), ("SUPPRESSED_ALARMS", "notify")],
    );
    let samples = alarm_samples();
    assert!(samples.len() >= 25, "{} alarm samples", samples.len());
    let mut slack_seen = 0;
    for name in &samples {
        // A context per sample: some samples are the same alarm state (the same dedupe key),
        // which one environment's ledger would rightly send once.
        let ctx = context(&s, &env).await;
        let event = sample(name);
        let summary = invoke(&ctx, &event)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary.outcome, "notified", "{name}");
        assert_eq!(summary.actions.len(), 2, "{name}: {:?}", summary.actions);

        let slack = s.aws.slack_requests().await;
        assert_eq!(slack.len(), slack_seen + 1, "{name}: one Slack message");
        slack_seen = slack.len();
        let post = slack.last().unwrap();
        assert_eq!(
            post["headers"]["content-type"], "application/json",
            "{name}"
        );
        assert!(post["path"].as_str().unwrap().ends_with(WEBHOOK_TOKEN));
        let body: Value = serde_json::from_str(post["body"].as_str().unwrap()).unwrap();
        fleetguard::notify::slack::check_limits(&body).unwrap_or_else(|e| panic!("{name}: {e}"));

        let sns = s.sns_messages().await;
        assert_eq!(sns.len(), 1, "{name}: one SNS message");
        let message: Value = serde_json::from_str(sns[0]["Message"].as_str().unwrap()).unwrap();
        assert_eq!(message["schema"], "fleetguard.notification/1");
        assert_eq!(message["kind"], "alarm");
        assert_eq!(
            sns[0]["MessageAttributes"]["kind"]["Value"], "alarm",
            "{name}"
        );
        assert_eq!(
            sns[0]["MessageAttributes"]["state"]["Value"], message["state"],
            "{name}"
        );
        assert!(sns[0]["Subject"].as_str().unwrap().is_ascii());
    }
}

#[tokio::test]
async fn alarms_render_what_people_need() {
    let s = Setup::new().await;
    let ctx = context(&s, &env(&s, &[])).await;
    let text_of = |body: &Value| body["attachments"][0].to_string();

    invoke(&ctx, &sample("alarms/metric.json")).await.unwrap();
    let alarm: Value =
        serde_json::from_str(s.aws.slack_requests().await[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(alarm["attachments"][0]["color"], "#E01E5A");
    let t = text_of(&alarm);
    for needle in [
        "ALARM: checkout-api-cpu-high",
        "OK → ALARM",
        "AWS/ECS CPUUtilization (Average, 60 s) [ClusterName=prod-ecs, ServiceName=checkout-api]",
        "*Threshold*\\n80",
        "88.7, 91.2, 93.4",
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/checkout-api-cpu-high",
    ] {
        assert!(t.contains(needle), "{needle} in {t}");
    }

    invoke(&ctx, &sample("alarms/metric-ok.json"))
        .await
        .unwrap();
    let ok: Value =
        serde_json::from_str(s.aws.slack_requests().await[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(ok["attachments"][0]["color"], "#2EB67D");
    let t = text_of(&ok);
    assert!(
        t.contains("recovered") && t.contains("*In alarm for*\\n23 min 0 s"),
        "{t}"
    );

    invoke(&ctx, &sample("alarms/insufficient-data.json"))
        .await
        .unwrap();
    let grey: Value =
        serde_json::from_str(s.aws.slack_requests().await[2]["body"].as_str().unwrap()).unwrap();
    assert_eq!(grey["attachments"][0]["color"], "#9E9E9E");

    invoke(&ctx, &sample("alarms/sns-metric-math.json"))
        .await
        .unwrap();
    let math = text_of(
        &serde_json::from_str(s.aws.slack_requests().await[3]["body"].as_str().unwrap()).unwrap(),
    );
    assert!(
        math.contains("e1 = 100 * m2 / m1") && math.contains("(alarms on this)"),
        "{math}"
    );
    assert!(
        math.contains("&gt; 5"),
        "SNS threshold with its comparison: {math}"
    );

    invoke(&ctx, &sample("alarms/composite.json"))
        .await
        .unwrap();
    let comp = text_of(
        &serde_json::from_str(s.aws.slack_requests().await[4]["body"].as_str().unwrap()).unwrap(),
    );
    assert!(
        comp.contains("ALARM(checkout-api-cpu-high) OR ALARM(checkout-api-5xx-rate)"),
        "{comp}"
    );
    assert!(
        comp.contains("*Triggered by*\\ncheckout-api-cpu-high (ALARM)"),
        "{comp}"
    );
    // Severity from the alarm's `severity` tag; tags as filterable SNS attributes.
    let sns = s.sns_messages().await;
    let last = sns.last().unwrap();
    assert_eq!(last["MessageAttributes"]["severity"]["Value"], "critical");
    assert_eq!(last["MessageAttributes"]["tag.team"]["Value"], "payments");

    invoke(&ctx, &sample("alarms/anomaly-detection.json"))
        .await
        .unwrap();
    let band = text_of(
        &serde_json::from_str(s.aws.slack_requests().await[5]["body"].as_str().unwrap()).unwrap(),
    );
    assert!(
        band.contains("*Band*\\nad1 = ANOMALY_DETECTION_BAND(m1, 2)"),
        "{band}"
    );

    invoke(&ctx, &sample("alarms/contributor.json"))
        .await
        .unwrap();
    let contributor = text_of(
        &serde_json::from_str(s.aws.slack_requests().await[6]["body"].as_str().unwrap()).unwrap(),
    );
    assert!(contributor.contains("TableName=orders"), "{contributor}");
}

#[tokio::test]
async fn muted_suppressed_and_configuration_changes_are_not_sent() {
    let s = Setup::new().await;
    let ctx = context(&s, &env(&s, &[])).await;
    for (name, outcome) in [
        (
            "alarms/muted.json",
            "skipped: muted by arn:aws:cloudwatch:eu-west-1:482917350264:alarm-mute-rule:weekend-maintenance",
        ),
        (
            "alarms/composite-suppressed.json",
            "skipped: actions suppressed by WaitPeriod",
        ),
        (
            "alarms/configuration-change.json",
            "ignored: alarm configuration change",
        ),
    ] {
        let summary = invoke(&ctx, &sample(name)).await.unwrap();
        assert_eq!(summary.outcome, outcome, "{name}");
    }
    assert!(s.aws.slack_requests().await.is_empty());
    assert!(s.sns_messages().await.is_empty());
}

#[tokio::test]
async fn routing_rules_pick_topics_and_webhooks() {
    let s = Setup::new().await;
    let (pager_topic, pager_queue) = topic_with_queue(&s.sdk, "payments-pager").await;
    let sm = aws_sdk_secretsmanager::Client::new(&s.sdk);
    let payments_secret = sm
        .create_secret()
        .name("slack/payments")
        .secret_string(format!("{}/services/T0/B0/payments-channel", s.aws.slack))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let routes = serde_json::json!([
        {"name": "payments", "match": {"kinds": ["alarm"], "tags": {"team": "pay*"}, "alarm_names": ["checkout-*"]},
         "sns_topic_arns": [pager_topic], "slack_webhook_secret_arns": [payments_secret]},
        {"name": "quiet", "match": {"states": ["INSUFFICIENT_DATA"]}, "drop": true}
    ])
    .to_string();
    let ctx = context(&s, &env(&s, &[("NOTIFY_ROUTES", &routes)])).await;
    let sqs = &aws_sdk_sqs::Client::new(&s.sdk);

    // Tagged team=payments: the pager topic and the payments channel only.
    let summary = invoke(&ctx, &sample("alarms/composite.json"))
        .await
        .unwrap();
    assert_eq!(summary.actions.len(), 2, "{:?}", summary.actions);
    assert_eq!(drain_queue(sqs, &pager_queue).await.len(), 1);
    assert!(s.sns_messages().await.is_empty(), "default topic untouched");
    let slack = s.aws.slack_requests().await;
    assert_eq!(slack.len(), 1);
    assert_eq!(slack[0]["path"], "/services/T0/B0/payments-channel");

    // Dropped by rule.
    let summary = invoke(&ctx, &sample("alarms/insufficient-data.json"))
        .await
        .unwrap();
    assert_eq!(summary.outcome, "dropped by rule quiet");
    assert_eq!(s.aws.slack_requests().await.len(), 1);

    // No rule matches: the defaults.
    invoke(&ctx, &sample("alarms/metric.json")).await.unwrap();
    assert_eq!(s.sns_messages().await.len(), 1);
    assert!(drain_queue(sqs, &pager_queue).await.is_empty());
    let slack = s.aws.slack_requests().await;
    assert_eq!(slack.len(), 2);
    assert!(slack[1]["path"].as_str().unwrap().ends_with(WEBHOOK_TOKEN));
}

#[tokio::test]
async fn slack_429_retry_after_is_honoured_and_nothing_is_lost() {
    let s = Setup::new().await;
    let ctx = context(&s, &env(&s, &[])).await;
    s.aws.slack_fail_next(429, 2, Some(1)).await;
    let summary = invoke(&ctx, &sample("alarms/metric.json")).await.unwrap();
    assert_eq!(summary.outcome, "notified");
    let slack = s.aws.slack_requests().await;
    let statuses: Vec<u64> = slack
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![429, 429, 200]);
    // The retries waited for Retry-After (a lower bound, never an upper one).
    for pair in slack.windows(2) {
        let gap = pair[1]["time"].as_f64().unwrap() - pair[0]["time"].as_f64().unwrap();
        assert!(
            gap >= 0.95,
            "retried after {gap:.2} s, Retry-After said 1 s"
        );
    }
    assert_eq!(
        slack[0]["body"], slack[2]["body"],
        "the same message was retried"
    );
    assert_eq!(s.sns_messages().await.len(), 1);
}

#[tokio::test]
async fn slack_500_then_success_is_retried() {
    let s = Setup::new().await;
    let ctx = context(&s, &env(&s, &[])).await;
    s.aws.slack_fail_next(500, 2, None).await;
    invoke(&ctx, &sample("alarms/sns-composite.json"))
        .await
        .unwrap();
    let statuses: Vec<u64> = s
        .aws
        .slack_requests()
        .await
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 500, 200]);
}

#[tokio::test]
async fn permanent_slack_error_fails_loudly_without_retrying() {
    let s = Setup::new().await;
    let ctx = context(&s, &env(&s, &[])).await;
    s.aws.slack_fail_next(404, 1, None).await;
    let err = invoke(&ctx, &sample("alarms/metric.json"))
        .await
        .unwrap_err();
    assert!(
        err.contains("not delivered to slack:arn:aws:secretsmanager"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 404") && err.contains("after 1 attempt"),
        "{err}"
    );
    assert!(err.contains("delivered to sns:"), "{err}");
    assert_eq!(s.aws.slack_requests().await.len(), 1);
}

#[tokio::test]
async fn slack_down_then_retry_with_dedupe_sends_only_what_was_missing() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe").await;
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let ctx = context(
        &s,
        &env(&s, &[("DEDUPE_TABLE", &table), ("SLACK_MAX_ATTEMPTS", "2")]),
    )
    .await;
    let event = sample("alarms/metric.json");

    // Slack is down: SNS still gets the message, and the invocation fails naming Slack.
    s.aws.slack_fail_next(503, 10, None).await;
    let err = invoke(&ctx, &event).await.unwrap_err();
    assert!(
        err.contains("not delivered to slack:")
            && err.contains("HTTP 503")
            && err.contains("after 2 attempts"),
        "{err}"
    );
    assert_eq!(s.sns_messages().await.len(), 1);

    // Lambda's retry: Slack is back; only Slack is sent to.
    s.aws.slack_reset().await;
    let summary = invoke(&ctx, &event).await.unwrap();
    assert!(
        summary
            .actions
            .iter()
            .any(|a| a.starts_with("delivered to slack:")),
        "{:?}",
        summary.actions
    );
    assert!(
        summary
            .actions
            .iter()
            .any(|a| a.starts_with("already delivered to sns:")),
        "{:?}",
        summary.actions
    );
    assert_eq!(s.aws.slack_requests().await.len(), 1);
    assert!(s.sns_messages().await.is_empty(), "no second SNS message");

    // A duplicate delivery of the same event: nothing at all.
    let summary = invoke(&ctx, &event).await.unwrap();
    assert!(
        summary
            .actions
            .iter()
            .all(|a| a.starts_with("already delivered")),
        "{:?}",
        summary.actions
    );
    assert_eq!(s.aws.slack_requests().await.len(), 1);
    assert!(s.sns_messages().await.is_empty());

    // The same alarm arriving through SNS is the same alarm state: the same dedupe key.
    // (Its SNS form carries the same ARN, state and state-change time.)
    let via_sns = invoke(&ctx, &sample("alarms/sns-metric.json"))
        .await
        .unwrap();
    assert!(
        via_sns
            .actions
            .iter()
            .all(|a| a.starts_with("already delivered")),
        "{:?}",
        via_sns.actions
    );

    // And the webhook URL, the credential, was never logged, nor put in an error.
    let text = logs.text();
    assert!(text.contains("call failed, retrying"), "logs were captured");
    assert!(!text.contains(WEBHOOK_TOKEN) && !err.contains(WEBHOOK_TOKEN));
    assert!(!format!("{ctx:?}").contains(WEBHOOK_TOKEN));
}

#[tokio::test]
async fn huge_alarm_description_stays_within_slack_and_sns_limits() {
    let s = Setup::new().await;
    let ctx = context(&s, &env(&s, &[])).await;
    let mut event = sample("alarms/metric.json");
    event["detail"]["configuration"]["description"] =
        Value::String("Ünïcödé <b>&</b> ".repeat(6_000)); // ~100 KB
    invoke(&ctx, &event).await.unwrap();
    let body: Value =
        serde_json::from_str(s.aws.slack_requests().await[0]["body"].as_str().unwrap()).unwrap();
    fleetguard::notify::slack::check_limits(&body).unwrap();
    let sns = s.sns_messages().await;
    assert_eq!(sns.len(), 1);
    assert!(sns[0]["Message"].as_str().unwrap().len() <= 240 * 1024);

    // And the 1 MiB sample event too (the same alarm state: a new environment sends it).
    let ctx = context(&s, &env(&s, &[])).await;
    invoke(&ctx, &sample("invalid/huge-alarm-description.json"))
        .await
        .unwrap();
    let body: Value =
        serde_json::from_str(s.aws.slack_requests().await[1]["body"].as_str().unwrap()).unwrap();
    fleetguard::notify::slack::check_limits(&body).unwrap();
    let sns = s.sns_messages().await;
    let message: Value = serde_json::from_str(sns[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["truncated"], true);
}

#[tokio::test]
async fn unreadable_webhook_secret_fails_only_slack_naming_the_secret() {
    // The defect: the secret was read at init and a failure was an init error, so nothing ran at
    // all (spot-interruption could not drain). Now it is read on first use.
    let s = Setup::new().await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:does-not-exist";
    let ctx = context(&s, &env(&s, &[("SLACK_WEBHOOK_SECRET_ARN", missing)])).await;
    let err = invoke(&ctx, &sample("alarms/metric.json"))
        .await
        .unwrap_err();
    assert!(err.starts_with("DeliveryFailed"), "{err}");
    assert!(err.contains(&format!("slack:{missing}")), "{err}");
    assert!(err.contains("cannot read secret"), "{err}");
    // SNS got it; Slack got nothing.
    assert_eq!(s.sns_messages().await.len(), 1);
    assert!(s.aws.slack_requests().await.is_empty());

    // A plain-http webhook that is not loopback is refused.
    let env = Env::from([(
        "SLACK_WEBHOOK_URL".to_owned(),
        "http://hooks.slack.com/services/T/B/x".to_owned(),
    )]);
    let err = alarm_fanout::build(lookup(&env), &s.sdk)
        .await
        .expect_err("init fails");
    assert_eq!(err.variable, "SLACK_WEBHOOK_URL");
    assert!(!err.to_string().contains("/services/T/B/x"), "{err}");
}

#[tokio::test]
async fn concurrent_duplicates_are_sent_once_with_the_dedupe_table() {
    // The defect: dedupe checked, then sent, then recorded, so two invocations of the same alarm
    // at once both posted. Now each claims the (message, destination) before sending.
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe-concurrent").await;
    let ctx = context(&s, &env(&s, &[("DEDUPE_TABLE", &table)])).await;
    let e = sample("alarms/metric.json");
    let (a, b, c) = tokio::join!(invoke(&ctx, &e), invoke(&ctx, &e), invoke(&ctx, &e));
    for r in [a, b, c] {
        r.unwrap();
    }
    assert_eq!(s.aws.slack_requests().await.len(), 1);
    assert_eq!(s.sns_messages().await.len(), 1);
}

#[tokio::test]
async fn a_failed_delivery_gives_its_claim_back_for_the_retry() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "fleetguard-dedupe-release").await;
    let ctx = context(
        &s,
        &env(&s, &[("DEDUPE_TABLE", &table), ("SLACK_MAX_ATTEMPTS", "1")]),
    )
    .await;
    let e = sample("alarms/metric.json");
    s.aws.slack_fail_next(500, 1, None).await;
    assert!(invoke(&ctx, &e).await.is_err());
    // The retry sends to Slack only: SNS already has it.
    invoke(&ctx, &e).await.unwrap();
    let ok: Vec<_> = s
        .aws
        .slack_requests()
        .await
        .into_iter()
        .filter(|r| r["status"].as_u64().is_none_or(|st| st < 300))
        .collect();
    assert_eq!(ok.len(), 1, "one successful Slack post");
    assert_eq!(s.sns_messages().await.len(), 1);
}
