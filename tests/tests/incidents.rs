//! Incidents end to end: the real functions, moto (Secrets Manager, DynamoDB, ECS, ELBv2, Auto
//! Scaling) and the local web sink speaking Slack's Web API, PagerDuty Events v2 and a Teams
//! Workflows webhook. One Slack message per incident updated in place with a thread, one PagerDuty
//! alert triggered then resolved, one Teams card per phase; duplicates and retries send nothing
//! twice; each destination fails on its own; secrets never logged.

use fleetguard_integration::incident_env::*;
use fleetguard_integration::{
    CapturedLogs, Setup, dedupe_table, invoke, lifecycle_token, lookup, sample,
};
use serde_json::{Value, json};

/// What every destination shows after one incident's phases: one Slack message updated once and
/// replied to once per later phase, one PagerDuty alert triggered then resolved, a Teams card and
/// a webhook post per phase.
async fn assert_one_incident(s: &Setup, phases: usize, title_prefix: &str) {
    let messages = s.aws.slack_messages().await;
    assert_eq!(messages.len(), 1, "one Slack message: {messages:#?}");
    let m = &messages[0];
    assert_eq!(m["channel_name"], CHANNEL);
    assert_eq!(m["updates"], phases as u64 - 1, "{m:#?}");
    assert_eq!(m["replies"].as_array().unwrap().len(), phases - 1);
    assert_eq!(
        m["attachments"][0]["color"], "#2EB67D",
        "the message shows the resolution: {m:#?}"
    );
    let shown = m["attachments"].to_string();
    assert!(shown.contains("Open for"), "{shown}");

    let posts = answered(s, "/api/chat.postMessage").await;
    let updates = answered(s, "/api/chat.update").await;
    assert_eq!(
        posts.len(),
        phases,
        "the message and a reply per later phase"
    );
    assert_eq!(updates.len(), phases - 1);
    for r in posts.iter().chain(&updates) {
        assert_eq!(
            r["headers"]["authorization"],
            format!("Bearer {BOT_TOKEN}"),
            "the bot token from its secret"
        );
    }
    let first = body(&posts[0]);
    assert_eq!(first["channel"], CHANNEL);
    assert!(first.get("thread_ts").is_none());
    for u in &updates {
        let u = body(u);
        assert_eq!(u["channel"], m["channel"], "updated by channel ID");
        assert_eq!(u["ts"], m["ts"], "the same message");
    }
    for p in &posts[1..] {
        assert_eq!(body(p)["thread_ts"], m["ts"], "replies in its thread");
    }

    let pd = answered(s, "/v2/enqueue").await;
    let pd: Vec<Value> = pd.iter().map(body).collect();
    let actions: Vec<&str> = pd
        .iter()
        .map(|e| e["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"trigger"), "{actions:?}");
    assert_eq!(actions.last(), Some(&"resolve"), "{actions:?}");
    assert!(pd.iter().all(|e| e["routing_key"] == ROUTING_KEY));
    assert!(pd.iter().all(|e| e["dedup_key"] == pd[0]["dedup_key"]));
    let alerts = s.aws.pagerduty_alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["status"], "resolved");
    assert!(
        pd[0]["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains(title_prefix),
        "{:#}",
        pd[0]
    );

    let teams = answered(s, "/workflows/").await;
    assert_eq!(teams.len(), phases, "one card per phase");
    for t in &teams {
        let card = body(t);
        assert_eq!(card["type"], "message");
        assert_eq!(
            card["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["attachments"][0]["content"]["type"], "AdaptiveCard");
    }
    assert_eq!(
        answered(s, "/services/").await.len(),
        phases,
        "webhooks post once per phase"
    );
}

#[tokio::test]
async fn an_alarm_is_one_slack_message_one_pagerduty_alert_and_a_card_per_phase() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;

    let out = invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    assert!(
        out.actions.iter().all(|a| a.starts_with("delivered")),
        "{out:?}"
    );
    let first = body(&answered(&s, "/api/chat.postMessage").await[0]);
    assert!(
        first["text"].as_str().unwrap().starts_with("<!here> "),
        "the route's mention for a high alarm: {first}"
    );
    invoke(&ctx, &alarm("alarms/metric-ok.json")).await.unwrap();
    assert_one_incident(&s, 2, "checkout-api-cpu-high").await;
    let reply = body(&answered(&s, "/api/chat.postMessage").await[1]);
    assert!(
        !reply["text"].as_str().unwrap().contains("<!here>"),
        "nobody is called to a resolution"
    );

    // Duplicates of both phases: nothing posted, updated, triggered or resolved again.
    let before = s.aws.slack_requests().await.len();
    for f in ["alarms/metric.json", "alarms/metric-ok.json"] {
        let out = invoke(&ctx, &alarm(f)).await.unwrap();
        assert!(
            out.actions
                .iter()
                .all(|a| a.starts_with("already delivered")),
            "{out:?}"
        );
    }
    assert_eq!(s.aws.slack_requests().await.len(), before);

    // The alarm fires again later: a new incident, a new message and a new alert.
    let mut again = alarm("alarms/metric.json");
    again["id"] = json!("7f3c2a10-0000-4000-8000-000000000001");
    again["time"] = json!("2026-11-20T11:00:00Z");
    again["detail"]["state"]["timestamp"] = json!("2026-11-20T11:00:00.000+0000");
    invoke(&ctx, &again).await.unwrap();
    assert_eq!(s.aws.slack_messages().await.len(), 2);
    let alerts = s.aws.pagerduty_alerts().await;
    assert_eq!(
        alerts[0]["status"], "triggered",
        "the same dedup_key opens anew"
    );

    let text = logs.text();
    for secret in [BOT_TOKEN, ROUTING_KEY, TEAMS_SIG, "demo-webhook-token"] {
        assert!(!text.contains(secret), "{secret} logged");
    }
    assert!(
        text.contains("slack-channel:#fleet-ops"),
        "destinations are named in logs"
    );
}

#[tokio::test]
async fn an_ok_delivered_before_its_alarm_never_reopens_anything() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    invoke(&ctx, &alarm("alarms/metric-ok.json")).await.unwrap();
    invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    let messages = s.aws.slack_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["updates"], 0, "the OK stays shown");
    let reply = messages[0]["replies"][0]["text"].as_str().unwrap();
    assert!(reply.contains("delivered late"), "{reply}");
    // PagerDuty: the OK resolves by the key derived from the alarm (no record needed; an
    // unknown key changes nothing there), and the late ALARM opens nothing.
    let pd: Vec<Value> = answered(&s, "/v2/enqueue").await.iter().map(body).collect();
    assert_eq!(pd.len(), 1, "{pd:#?}");
    assert_eq!(pd[0]["event_action"], "resolve");
    assert!(
        s.aws.pagerduty_alerts().await.is_empty(),
        "nothing triggered"
    );
}

#[tokio::test]
async fn concurrent_duplicates_post_and_trigger_once() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    let e = alarm("alarms/metric.json");
    let (a, b, c) = tokio::join!(invoke(&ctx, &e), invoke(&ctx, &e), invoke(&ctx, &e));
    for r in [a, b, c] {
        r.unwrap();
    }
    assert_eq!(answered(&s, "/api/chat.postMessage").await.len(), 1);
    assert_eq!(answered(&s, "/v2/enqueue").await.len(), 1);
    assert_eq!(answered(&s, "/workflows/").await.len(), 1);
}

#[tokio::test]
async fn slack_ok_false_fails_only_slack_and_the_retry_sends_only_what_was_missing() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    s.aws
        .sink_fail(
            "/api/chat.postMessage",
            200,
            1,
            None,
            Some("channel_not_found"),
        )
        .await;
    let err = invoke(&ctx, &alarm("alarms/metric.json"))
        .await
        .unwrap_err();
    assert!(
        err.contains(
            "slack-channel:#fleet-ops (chat.postMessage: channel_not_found after 1 attempt)"
        ),
        "{err}"
    );
    for other in ["pagerduty:", "teams:", "slack:arn:"] {
        assert!(
            err.contains(&format!("delivered to {other}")) || err.contains(&format!(", {other}")),
            "{other} delivered: {err}"
        );
    }
    assert!(!err.contains(BOT_TOKEN) && !err.contains(ROUTING_KEY));
    // Lambda's retry: Slack gets its message; nobody else hears twice.
    invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    assert_eq!(s.aws.slack_messages().await.len(), 1);
    assert_eq!(answered(&s, "/v2/enqueue").await.len(), 1);
    assert_eq!(answered(&s, "/workflows/").await.len(), 1);
    assert_eq!(answered(&s, "/services/").await.len(), 1);
    assert!(!logs.text().contains(BOT_TOKEN));
}

#[tokio::test]
async fn a_deleted_slack_message_is_posted_again_on_the_next_phase() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    s.aws
        .sink_fail("/api/chat.update", 200, 1, None, Some("message_not_found"))
        .await;
    invoke(&ctx, &alarm("alarms/metric-ok.json")).await.unwrap();
    let messages = s.aws.slack_messages().await;
    assert_eq!(messages.len(), 2, "a new message for the resolution");
    assert_eq!(messages[1]["attachments"][0]["color"], "#2EB67D");
}

#[tokio::test]
async fn rate_limits_are_honoured_for_every_service() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    for path in ["/api/chat.postMessage", "/v2/enqueue", "/workflows/"] {
        s.aws.sink_fail(path, 429, 1, Some(1), None).await;
    }
    s.aws.sink_fail("/v2/enqueue", 503, 1, None, None).await;
    invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    for path in ["/api/chat.postMessage", "/v2/enqueue", "/workflows/"] {
        let reqs = s.aws.requests_to(path).await;
        let limited = reqs.iter().position(|r| r["status"] == 429).unwrap();
        let next = &reqs[limited + 1];
        let waited = next["time"].as_f64().unwrap() - reqs[limited]["time"].as_f64().unwrap();
        assert!(
            waited >= 0.95,
            "{path}: Retry-After: 1 honoured, waited {waited}s"
        );
        assert_eq!(reqs.last().unwrap()["status"], 200, "{path}");
    }
    assert_eq!(
        answered(&s, "/v2/enqueue").await.len(),
        1,
        "the 503 retried once"
    );
    assert_eq!(s.aws.pagerduty_alerts().await.len(), 1);
}

#[tokio::test]
async fn without_a_table_one_execution_environment_still_keeps_one_message() {
    let s = Setup::new().await;
    let ctx = alarm_context(&s, &env(&s, None, &[])).await;
    invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    invoke(&ctx, &alarm("alarms/metric-ok.json")).await.unwrap();
    let messages = s.aws.slack_messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["updates"], 1);
}

// ---- a drain: asg-lifecycle's "draining" opens, "drained" resolves

const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn a_drain_is_one_incident_from_draining_to_drained() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let (instance, ci) = s.ecs_instance(1);
    let tasks = s.tasks_on(&ci).await;
    assert!(!tasks.is_empty());
    s.aws
        .start_lifecycle_action(&instance, "demo-ecs-asg", "fleetguard-drain", TERMINATING)
        .await;
    let env = env(
        &s,
        Some(&table),
        &[("MANAGED_ASG_TAG", "fleetguard:managed=true")],
    );
    let autoscaling =
        fleetguard::adapters::autoscaling::AutoScaling::new(s.aws.autoscaling_client(&s.sdk));
    let ctx = asg_lifecycle::build_with(lookup(&env), &s.sdk, autoscaling)
        .await
        .unwrap();

    let mut terminate = sample("asg/terminate-lifecycle-action.json");
    terminate["time"] = json!(now());
    terminate["region"] = json!("us-east-1");
    terminate["detail"]["EC2InstanceId"] = json!(instance);
    terminate["detail"]["AutoScalingGroupName"] = json!("demo-ecs-asg");
    terminate["detail"]["LifecycleHookName"] = json!("fleetguard-drain");
    terminate["detail"]["LifecycleActionToken"] =
        json!(lifecycle_token(&instance, "fleetguard-drain"));
    terminate["detail"]["NotificationMetadata"] = json!(r#"{"ecs_cluster": "demo-ecs"}"#);
    let out = invoke(&ctx, &terminate).await.unwrap();
    assert!(out.outcome.starts_with("draining"), "{out:?}");

    s.stop_tasks(&tasks).await;
    let mut drained = sample("ecs/container-instance-draining.json");
    drained["time"] = json!(now());
    drained["region"] = json!("us-east-1");
    drained["detail"]["clusterArn"] = s.fleet["cluster_arn"].clone();
    drained["detail"]["containerInstanceArn"] = json!(ci);
    drained["detail"]["ec2InstanceId"] = json!(instance);
    drained["detail"]["runningTasksCount"] = json!(0);
    drained["resources"] = json!([ci]);
    let out = invoke(&ctx, &drained).await.unwrap();
    assert_eq!(out.outcome, "completed: drained", "{out:?}");
    assert_one_incident(&s, 2, "Draining").await;
    let pd = body(&answered(&s, "/v2/enqueue").await[0]);
    assert_eq!(pd["dedup_key"], format!("fleetguard|drain|{instance}"));

    // Duplicates after the completion send nothing anywhere.
    let before = s.aws.slack_requests().await.len();
    invoke(&ctx, &drained).await.unwrap();
    invoke(&ctx, &terminate).await.unwrap();
    assert_eq!(s.aws.slack_requests().await.len(), before);
}

// ---- a failed deployment: failed opens, rollback started updates, rollback completed resolves

const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/demo-ecs/checkout-api";

fn deployment_event(file: &str, deployment_id: &str, reason: Option<&str>, time: &str) -> Value {
    let mut e = sample(file);
    e["region"] = json!("us-east-1");
    e["account"] = json!("123456789012");
    e["time"] = json!(time);
    e["resources"] = json!([SERVICE_ARN]);
    e["detail"]["deploymentId"] = json!(deployment_id);
    if let Some(r) = reason {
        e["detail"]["reason"] = json!(r);
    }
    e
}

#[tokio::test]
async fn a_failed_deployment_is_one_incident_until_the_rollback_completes() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = ecs_deployment::build(lookup(&env(&s, Some(&table), &[])), &s.sdk)
        .await
        .unwrap();
    let primary = s.fleet["deployment_id"].as_str().unwrap();
    let failed = deployment_event(
        "ecs/deployment-failed.json",
        "ecs-svc/7301958264019283746",
        None,
        "2026-11-20T10:14:52Z",
    );
    let started = deployment_event(
        "ecs/deployment-rollback-started.json",
        primary,
        Some(&format!(
            "ECS deployment circuit breaker: rolling back to deploymentId {primary}."
        )),
        "2026-11-20T10:14:53Z",
    );
    let completed = deployment_event(
        "ecs/deployment-rollback-completed.json",
        primary,
        None,
        "2026-11-20T10:19:30Z",
    );
    for e in [&failed, &started, &completed] {
        invoke(&ctx, e).await.unwrap();
    }
    assert_one_incident(&s, 3, "Deployment failed").await;
    let pd: Vec<String> = answered(&s, "/v2/enqueue")
        .await
        .iter()
        .map(|r| body(r)["event_action"].as_str().unwrap().to_owned())
        .collect();
    // The rollback's start is shown in Slack; PagerDuty's alert is already open: paged once.
    assert_eq!(pd, vec!["trigger", "resolve"]);
    let m = &s.aws.slack_messages().await[0];
    assert!(
        m["attachments"]
            .to_string()
            .contains("Open for*\\n4 min 38 s"),
        "from the failure to the rollback's completion: {m:#}"
    );
    // Lambda retries and EventBridge duplicates: nothing more anywhere.
    let before = s.aws.slack_requests().await.len();
    for e in [&failed, &started, &completed] {
        invoke(&ctx, e).await.unwrap();
    }
    assert_eq!(s.aws.slack_requests().await.len(), before);
}

#[tokio::test]
async fn an_alarm_and_its_ok_at_once_still_make_one_message() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    let (open, ok) = (alarm("alarms/metric.json"), alarm("alarms/metric-ok.json"));
    let (a, b) = tokio::join!(invoke(&ctx, &open), invoke(&ctx, &ok));
    // Whichever found the incident locked failed that destination only, and Lambda retries it.
    for (result, event) in [(a, &open), (b, &ok)] {
        if let Err(e) = result {
            assert!(
                e.contains("another invocation is delivering a phase of this incident"),
                "{e}"
            );
            assert!(!e.contains("teams:") || e.contains("delivered to"), "{e}");
            invoke(&ctx, event).await.unwrap();
        }
    }
    let messages = s.aws.slack_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[0]["attachments"][0]["color"], "#2EB67D",
        "shows the OK"
    );
    // PagerDuty: triggered then resolved, or (the OK seen first) never triggered: never left open.
    let alerts = s.aws.pagerduty_alerts().await;
    assert!(alerts.len() <= 1, "{alerts:#?}");
    assert!(
        alerts.iter().all(|a| a["status"] == "resolved"),
        "{alerts:#?}"
    );
}

#[tokio::test]
async fn a_failure_fixed_by_a_later_deployment_is_resolved_without_report_success() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = ecs_deployment::build(lookup(&env(&s, Some(&table), &[])), &s.sdk)
        .await
        .unwrap();
    // The circuit breaker without rollback: the deployment fails and nothing rolls back.
    let failed = deployment_event(
        "ecs/deployment-failed.json",
        "ecs-svc/7301958264019283746",
        None,
        "2026-11-20T10:14:52Z",
    );
    invoke(&ctx, &failed).await.unwrap();
    // The team ships a fix; it completes. REPORT_SUCCESS is off, but the incident is open.
    let fixed = deployment_event(
        "ecs/deployment-completed.json",
        "ecs-svc/1111111111",
        None,
        "2026-11-20T10:40:00Z",
    );
    let out = invoke(&ctx, &fixed).await.unwrap();
    assert_eq!(out.outcome, "notified: deployment-completed", "{out:?}");
    assert_eq!(s.aws.pagerduty_alerts().await[0]["status"], "resolved");
    let m = &s.aws.slack_messages().await[0];
    assert_eq!(m["updates"], 1);
    // The next plain success is not reported: nothing is open any more.
    let next = deployment_event(
        "ecs/deployment-completed.json",
        "ecs-svc/2222222222",
        None,
        "2026-11-20T12:00:00Z",
    );
    let out = invoke(&ctx, &next).await.unwrap();
    assert!(out.outcome.starts_with("ignored"), "{out:?}");
}

#[tokio::test]
async fn a_secret_fixed_after_a_failure_is_read_again_by_the_retry() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let sm = aws_sdk_secretsmanager::Client::new(&s.sdk);
    let pd = s.seeded("pagerduty_secret_arn");
    // Someone pasted the integration's URL instead of its key.
    sm.put_secret_value()
        .secret_id(&pd)
        .secret_string(
            "https://events.pagerduty.com/integration/R0DEMO0ROUTING0KEY0000000000000A/enqueue",
        )
        .send()
        .await
        .unwrap();
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    let err = invoke(&ctx, &alarm("alarms/metric.json"))
        .await
        .unwrap_err();
    assert!(
        err.contains(&format!(
            "pagerduty:{pd} ({pd}: not a PagerDuty routing key"
        )),
        "{err}"
    );
    assert!(
        !err.contains(ROUTING_KEY),
        "the secret's value is never shown: {err}"
    );
    // Fixed in Secrets Manager; the same execution environment's retry reads it again.
    sm.put_secret_value()
        .secret_id(&pd)
        .secret_string(ROUTING_KEY)
        .send()
        .await
        .unwrap();
    invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    assert_eq!(s.aws.pagerduty_alerts().await.len(), 1);
    assert_eq!(
        answered(&s, "/workflows/").await.len(),
        1,
        "Teams got it once"
    );
}

#[tokio::test]
async fn one_services_retry_after_never_holds_the_others_back() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    // The Slack webhook asks for 3 s; every other destination is delivered meanwhile.
    s.aws.sink_fail("/services/", 429, 1, Some(3), None).await;
    invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    let at = |reqs: &[Value], i: usize| reqs[i]["time"].as_f64().unwrap();
    let hook = s.aws.requests_to("/services/").await;
    assert_eq!(hook.len(), 2, "limited, then delivered");
    for path in ["/api/chat.postMessage", "/v2/enqueue", "/workflows/"] {
        let reqs = answered(&s, path).await;
        assert!(
            at(&reqs, 0) < at(&hook, 1),
            "{path} was delivered while the webhook waited"
        );
    }
}

#[tokio::test]
async fn a_pagerduty_400_fails_at_once_and_names_pagerdutys_answer() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    s.aws.sink_fail("/v2/enqueue", 400, 1, None, None).await;
    let err = invoke(&ctx, &alarm("alarms/metric.json"))
        .await
        .unwrap_err();
    let pd = s.seeded("pagerduty_secret_arn");
    assert!(
        err.contains(&format!(
            "pagerduty:{pd} (HTTP 400 invalid_payload after 1 attempt)"
        )),
        "a 400 is not retried: {err}"
    );
    assert!(!err.contains(ROUTING_KEY));
    assert_eq!(s.aws.requests_to("/v2/enqueue").await.len(), 1);
    // The retry triggers it; the others are not sent again.
    invoke(&ctx, &alarm("alarms/metric.json")).await.unwrap();
    assert_eq!(s.aws.pagerduty_alerts().await[0]["status"], "triggered");
    assert_eq!(answered(&s, "/workflows/").await.len(), 1);
}
