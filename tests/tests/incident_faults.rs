//! The incident breakages of issue 24, each with the real `alarm-fanout` against moto
//! (Secrets Manager, DynamoDB) and the local sink (Slack's Web API, PagerDuty, Teams, webhooks).
//! Each failed before its fix.

use fleetguard_integration::incident_env::*;
use fleetguard_integration::{Setup, dedupe_table, invoke};
use serde_json::{Value, json};

/// The metric alarm in `state` at `hh:mm` on the sample's day (a new state change: a new event).
fn alarm_at(state: &str, hhmm: &str) -> Value {
    let mut e = alarm(if state == "OK" {
        "alarms/metric-ok.json"
    } else {
        "alarms/metric.json"
    });
    e["id"] = json!(format!(
        "7f3c2a10-0000-4000-8000-{:0>12}",
        hhmm.replace(':', "")
    ));
    e["time"] = json!(format!("2026-11-20T{hhmm}:00Z"));
    e["detail"]["state"]["value"] = json!(state);
    e["detail"]["state"]["timestamp"] = json!(format!("2026-11-20T{hhmm}:00.000+0000"));
    e
}

async fn pagerduty_actions(s: &Setup) -> Vec<String> {
    answered(s, "/v2/enqueue")
        .await
        .iter()
        .map(|r| body(r)["event_action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn insufficient_data_after_ok_pages_nobody_and_the_next_alarm_is_a_new_message() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    for (state, at) in [
        ("ALARM", "10:00"),
        ("OK", "10:05"),
        ("INSUFFICIENT_DATA", "10:10"),
    ] {
        invoke(&ctx, &alarm_at(state, at)).await.unwrap();
    }
    assert_eq!(
        pagerduty_actions(&s).await,
        ["trigger", "resolve"],
        "no second trigger"
    );
    let alerts = s.aws.pagerduty_alerts().await;
    assert_eq!(alerts[0]["status"], "resolved");
    let messages = s.aws.slack_messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["attachments"][0]["color"], "#2EB67D",
        "stays resolved"
    );

    // Fired again: a new message that calls the route's people, and a new alert.
    invoke(&ctx, &alarm_at("ALARM", "11:00")).await.unwrap();
    let messages = s.aws.slack_messages().await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[1]["text"].as_str().unwrap().starts_with("<!here>"));
    assert_eq!(s.aws.pagerduty_alerts().await[0]["status"], "triggered");
}

#[tokio::test]
async fn ok_resolves_pagerduty_without_the_incident_record() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    invoke(&ctx, &alarm_at("ALARM", "10:00")).await.unwrap();
    // The records are gone (expired, or a save failed after the trigger).
    let ddb = aws_sdk_dynamodb::Client::new(&s.sdk);
    let items = ddb.scan().table_name(&table).send().await.unwrap();
    let mut removed = 0;
    for item in items.items() {
        let pk = item["pk"].as_s().unwrap();
        if pk.starts_with("incident|") {
            ddb.delete_item()
                .table_name(&table)
                .key("pk", item["pk"].clone())
                .send()
                .await
                .unwrap();
            removed += 1;
        }
    }
    assert!(removed >= 2, "Slack's and PagerDuty's records");
    invoke(&ctx, &alarm_at("OK", "10:05")).await.unwrap();
    assert_eq!(s.aws.pagerduty_alerts().await[0]["status"], "resolved");
}

#[tokio::test]
async fn a_message_past_the_edit_window_is_replaced_by_a_linked_one() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    invoke(&ctx, &alarm_at("ALARM", "10:00")).await.unwrap();
    s.aws
        .sink_fail("/api/chat.update", 200, 1, None, Some("edit_window_closed"))
        .await;
    invoke(&ctx, &alarm_at("OK", "10:05")).await.unwrap();
    let messages = s.aws.slack_messages().await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!(messages[1]["attachments"][0]["color"], "#2EB67D");
    assert!(
        messages[1]["attachments"]
            .to_string()
            .contains("Earlier message")
    );
    let old_replies = messages[0]["replies"].to_string();
    assert!(
        old_replies.contains("continues in a new message"),
        "{old_replies}"
    );
    // Not wedged: the next phase goes on from the new message.
    invoke(&ctx, &alarm_at("ALARM", "11:00")).await.unwrap();
    assert_eq!(s.aws.slack_messages().await.len(), 3);
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_sent_at_most_once_more() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    // The message lands, the answer never comes: not posted again in this invocation.
    s.aws.sink_drop("/api/chat.postMessage", 1).await;
    let err = invoke(&ctx, &alarm_at("ALARM", "10:00")).await.unwrap_err();
    assert!(
        err.contains("slack-channel:#fleet-ops (chat.postMessage: outcome unknown"),
        "{err}"
    );
    assert_eq!(s.aws.requests_to("/api/chat.postMessage").await.len(), 1);
    // Lambda's retry may send one more copy; a third delivery of the event sends nothing.
    invoke(&ctx, &alarm_at("ALARM", "10:00")).await.unwrap();
    invoke(&ctx, &alarm_at("ALARM", "10:00")).await.unwrap();
    assert_eq!(
        s.aws.slack_messages().await.len(),
        2,
        "the bound: one extra copy"
    );
    // Teams and the webhook were delivered once, in the first invocation.
    assert_eq!(answered(&s, "/workflows/").await.len(), 1);
    // PagerDuty's enqueue is idempotent by dedup_key: a lost answer is retried at once.
    s.aws.sink_drop("/v2/enqueue", 1).await;
    invoke(&ctx, &alarm_at("OK", "10:05")).await.unwrap();
    assert_eq!(s.aws.pagerduty_alerts().await[0]["status"], "resolved");
}

#[tokio::test]
async fn without_a_claim_nothing_is_sent() {
    let s = Setup::new().await;
    // The table the functions were given does not exist (or cannot be reached).
    let ctx = alarm_context(&s, &env(&s, Some("no-such-table"), &[])).await;
    let err = invoke(&ctx, &alarm_at("ALARM", "10:00")).await.unwrap_err();
    assert!(err.contains("cannot claim the message"), "{err}");
    assert!(
        s.aws.slack_requests().await.is_empty(),
        "nothing sent unclaimed"
    );
}

#[tokio::test]
async fn an_alarm_and_its_ok_at_once_both_succeed() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let ctx = alarm_context(&s, &env(&s, Some(&table), &[])).await;
    for round in 0..3 {
        let (open, ok) = (
            alarm_at("ALARM", &format!("1{round}:00")),
            alarm_at("OK", &format!("1{round}:05")),
        );
        let (a, b) = tokio::join!(invoke(&ctx, &open), invoke(&ctx, &ok));
        // The second waits for the first's lock: no failure, no retry, no on-failure message.
        a.unwrap();
        b.unwrap();
    }
    let alerts = s.aws.pagerduty_alerts().await;
    assert!(
        alerts.iter().all(|a| a["status"] == "resolved"),
        "{alerts:#?}"
    );
}

/// The sample Health retirement of `instance`, `start_in` seconds ahead, with `status`.
fn retirement(instance: &str, start_in: i64, status: &str) -> Value {
    let start = chrono::Utc::now() + chrono::Duration::seconds(start_in);
    let mut e = fleetguard_integration::sample("maintenance/health-retirement.json");
    e["region"] = json!("us-east-1");
    e["detail"]["eventRegion"] = json!("us-east-1");
    e["detail"]["startTime"] = json!(start.to_rfc2822().replace("+0000", "GMT"));
    e["detail"]["statusCode"] = json!(status);
    e["detail"]["affectedEntities"][0]["entityValue"] = json!(instance);
    e["resources"] = json!([instance]);
    e
}

#[tokio::test]
async fn a_health_close_after_the_instance_was_taken_out_resolves_its_page() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe").await;
    let env = env(
        &s,
        Some(&table),
        &[
            (
                "SCHEDULER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/fleetguard-scheduler",
            ),
            (
                "SCHEDULE_TARGET_ARN",
                "arn:aws:lambda:us-east-1:123456789012:function:fleetguard-instance-maintenance",
            ),
            ("MANAGED_ASG_TAG", "fleetguard:managed=true"),
            ("MAINTENANCE_ACTION", "drain"),
        ],
    );
    let ctx = instance_maintenance::build(fleetguard_integration::lookup(&env), &s.sdk)
        .await
        .unwrap();
    let web = s.fleet["web_instances"][0].as_str().unwrap().to_owned();
    // Ten minutes ahead: taken out of service at once, nothing left pending.
    let out = invoke(&ctx, &retirement(&web, 600, "upcoming"))
        .await
        .unwrap();
    assert_eq!(out.outcome, format!("{web}: out of service"), "{out:?}");
    assert_eq!(s.aws.pagerduty_alerts().await[0]["status"], "triggered");
    // AWS Health closes the event: the incident resolves everywhere it was opened.
    let out = invoke(&ctx, &retirement(&web, 600, "closed"))
        .await
        .unwrap();
    assert_eq!(out.outcome, format!("{web}: closed"), "{out:?}");
    assert_eq!(s.aws.pagerduty_alerts().await[0]["status"], "resolved");
    let m = &s.aws.slack_messages().await[0];
    assert_eq!(m["attachments"][0]["color"], "#2EB67D", "{m:#?}");
}

/// The order of AWS Health updates is kept in the dedupe table (`version|…` items): a version
/// is recorded only over an older one, as DynamoDB evaluates the condition (moto here).
#[tokio::test]
async fn versions_in_the_dynamodb_table_only_move_forward() {
    use fleetguard::notify::book::Book;
    use fleetguard::notify::ledger_dynamodb::DynamoLedger;
    use std::time::Duration;
    let aws = fleetguard_integration::LocalAws::start();
    let sdk = aws.sdk_config().await;
    let table = dedupe_table(&sdk, "fleetguard-versions").await;
    let book = Book::new(DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    ));
    let ttl = Duration::from_secs(3600);
    let key = "health|arn:aws:health:us-east-1::event/EC2/X/Y";
    assert_eq!(book.version(key).await.unwrap(), None);
    assert!(book.keep_version(key, 20, "open", ttl).await.unwrap());
    assert!(
        !book.keep_version(key, 10, "open", ttl).await.unwrap(),
        "older"
    );
    assert!(
        book.keep_version(key, 20, "open", ttl).await.unwrap(),
        "the same again"
    );
    assert!(book.keep_version(key, 30, "closed", ttl).await.unwrap());
    assert_eq!(
        book.version(key).await.unwrap(),
        Some((30, "closed".to_owned()))
    );
}
