//! An alarm storm through the real `alarm-fanout` binary: 300 alarms into one route from ten
//! concurrent execution environments (each the binary behind a fake Runtime API), against moto
//! (DynamoDB, SNS, SQS, Secrets Manager) and the local sink answering as Slack and PagerDuty
//! do, with their documented rates enforced (a request over them gets a 429). The route has a Slack
//! channel (the Web API), PagerDuty and SNS.

use fleetguard_integration::incident_env::{self, CHANNEL};
use fleetguard_integration::incident_sim::alarm_event;
use fleetguard_integration::runtime_api::run_pool;
use fleetguard_integration::{Setup, dedupe_table, drain_queue, sample, topic_with_queue};
use serde_json::{Value, json};

const ALARMS: usize = 300;
fn alarms() -> usize {
    std::env::var("STORM_ALARMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ALARMS)
}
const THRESHOLD: usize = 10;
const ENVIRONMENTS: usize = 10;

/// Serve `events` to `ENVIRONMENTS` copies of the binary at once (each takes the next event when
/// it is free, as Lambda's asynchronous invocations do), and a failed one again as Lambda's
/// retry does (twice at most); every event must succeed in the end. How many were retried.
async fn serve(env: &[(String, String)], events: Vec<Value>) -> usize {
    let mut pending = events;
    let mut retried = 0;
    for attempt in 0..3 {
        let batch = std::mem::take(&mut pending);
        let env = env.to_vec();
        let served = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let payloads = batch.iter().map(|e| e.to_string().into_bytes()).collect();
            let answers = run_pool("alarm-fanout", &env, ENVIRONMENTS, payloads).0;
            assert_eq!(answers.len(), batch.len(), "every event answered");
            batch.into_iter().zip(answers).collect::<Vec<_>>()
        })
        .await
        .unwrap();
        for (event, answer) in served {
            if answer.kind != "response" {
                assert!(
                    attempt < 2,
                    "failed after Lambda's retries: {}",
                    answer.body
                );
                pending.push(event);
            }
        }
        if pending.is_empty() {
            break;
        }
        retried += pending.len();
    }
    retried
}

/// Slack's paces at the sink, by arrival time: chat.postMessage to the channel and chat.update
/// (Tier 3) each at most one a second over any two seconds (Slack allows short bursts; arrival
/// times here also carry this machine's scheduling on two busy cores). The number of calls.
fn assert_paced(requests: &[Value]) -> usize {
    let mut calls = 0;
    for method in ["/api/chat.postMessage", "/api/chat.update"] {
        let mut times: Vec<f64> = requests
            .iter()
            .filter(|r| r["path"] == method)
            .map(|r| r["time"].as_f64().unwrap())
            .collect();
        times.sort_by(f64::total_cmp);
        for three in times.windows(3) {
            assert!(
                three[2] - three[0] >= 2.0,
                "three {method} calls within {:.3} s",
                three[2] - three[0]
            );
        }
        calls += times.len();
    }
    calls
}

#[tokio::test]
async fn three_hundred_alarms_are_one_digest_within_slacks_rate_one_page_and_every_sns_message() {
    let s = Setup::new().await;
    let table = dedupe_table(&s.sdk, "dedupe-storm").await;
    let (topic, queue) = topic_with_queue(&s.sdk, "storm-alarms").await;
    s.aws.sink_rates(1, 120).await;
    let routes = json!([{
        "name": "az-failure",
        "default_destinations": true,
        "pagerduty_routing_key_secret_arns": [s.seeded("pagerduty_secret_arn")],
        "storm": {"sources": THRESHOLD, "window_seconds": 120, "update_seconds": 5},
    }])
    .to_string();
    let env: Vec<(String, String)> = incident_env::env(
        &s,
        Some(&table),
        &[
            ("NOTIFY_ROUTES", &routes),
            ("SNS_TOPIC_ARN", &topic),
            ("AWS_ENDPOINT_URL", &s.aws.moto),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
    .into_iter()
    // The Slack channel, PagerDuty and SNS (Teams and webhooks: the pipeline tests and the storm
    // simulator).
    .filter(|(k, _)| k != "SLACK_WEBHOOK_SECRET_ARN")
    .collect();
    let base = sample("alarms/metric.json");
    let now = chrono::Utc::now().timestamp();
    let event = |i: usize, state: &str, at: i64, prev: (&str, i64)| {
        alarm_event(
            &base,
            &format!("checkout-az1-{i:03}"),
            state,
            prev,
            at,
            (i + 1) as u64,
        )
    };

    // The storm: 300 alarms within seconds.
    let opened: Vec<Value> = (0..alarms())
        .map(|i| event(i, "ALARM", now, ("OK", now - 3600)))
        .collect();
    let t = std::time::Instant::now();
    let retried = serve(&env, opened).await;
    eprintln!(
        "storm: {} alarms served in {:?}, {retried} retried",
        alarms(),
        t.elapsed()
    );
    let messages = s.aws.slack_messages().await;
    let (digests, own): (Vec<&Value>, Vec<&Value>) = messages
        .iter()
        .partition(|m| m["text"].as_str().unwrap_or("").contains("Storm on"));
    assert_eq!(digests.len(), 1, "one digest: {digests:#?}");
    assert_eq!(own.len(), THRESHOLD, "the first ten before the storm");
    let digest = digests[0];
    assert_eq!(digest["channel_name"], CHANNEL);
    let text = digest["attachments"].to_string();
    assert!(
        text.contains(&format!("{} open", alarms() - THRESHOLD)),
        "every member counted: {text}"
    );
    let alerts = s.aws.pagerduty_alerts().await;
    let storm_alerts: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["dedup_key"].as_str().unwrap().contains("|storm|"))
        .collect();
    assert_eq!(storm_alerts.len(), 1, "one PagerDuty alert for the storm");
    assert_eq!(alerts.len(), THRESHOLD + 1);
    let requests = s.aws.slack_requests().await;
    let chat_calls = assert_paced(&requests);
    assert!(
        chat_calls < 2 * THRESHOLD + 60,
        "{chat_calls} calls to the channel for {} alarms",
        alarms()
    );

    // Everything recovers: every SNS message, the digest resolved in place, every alert resolved.
    let recovered: Vec<Value> = (0..alarms())
        .map(|i| event(i, "OK", now + 60, ("ALARM", now)))
        .collect();
    let t = std::time::Instant::now();
    let retried = serve(&env, recovered).await;
    eprintln!(
        "storm: {} recoveries served in {:?}, {retried} retried",
        alarms(),
        t.elapsed()
    );
    let sqs = aws_sdk_sqs::Client::new(&s.sdk);
    let published = drain_queue(&sqs, &queue).await;
    assert_eq!(published.len(), 2 * alarms(), "SNS gets every transition");
    let messages = s.aws.slack_messages().await;
    assert_eq!(
        messages.len(),
        THRESHOLD + 1,
        "no new message for the recoveries"
    );
    let digest = messages.iter().find(|m| m["ts"] == digest["ts"]).unwrap();
    let text = digest["attachments"].to_string();
    assert!(
        text.contains(&format!("all {} sources recovered", alarms() - THRESHOLD)),
        "{text}"
    );
    assert_eq!(digest["attachments"][0]["color"], "#2EB67D");
    let alerts = s.aws.pagerduty_alerts().await;
    assert!(
        alerts.iter().all(|a| a["status"] == "resolved"),
        "{alerts:#?}"
    );
    let requests = s.aws.slack_requests().await;
    assert_paced(&requests);
    let throttled: Vec<&str> = requests
        .iter()
        .filter(|r| r["status"] == 429)
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(throttled.is_empty(), "over a service's rate: {throttled:?}");
}
