//! A payload that starts with a UTF-8 byte-order mark (a sample saved by a Windows editor), sent
//! to each function's real binary through a fake Lambda Runtime API: the function answers it as
//! it answers the same payload without the mark, so the runtime and the project's parser agree.
//! No AWS is reachable: the payloads are ones each function only acknowledges, or refuses.

use fleetguard_integration::repo_root;
use fleetguard_integration::runtime_api::{Answer, run_binary};

/// Each function's binary, as Lambda runs it with a WARN application log level, and no AWS.
fn run(function: &str, payloads: Vec<Vec<u8>>) -> (Vec<Answer>, String) {
    run_binary(
        function,
        &[
            // As Lambda sets it for a function whose application log level is WARN.
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            // Nothing listens there: a call to AWS would fail, and none is expected.
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            (
                "SCHEDULER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/fleetguard-scheduler",
            ),
            (
                "SCHEDULE_TARGET_ARN",
                "arn:aws:lambda:us-east-1:123456789012:function:fleetguard-instance-maintenance",
            ),
        ],
        payloads,
    )
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn sample(path: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("events").join(path)).unwrap()
}

fn with_bom(body: &[u8]) -> Vec<u8> {
    [BOM, body].concat()
}

/// The answer without what differs between two invocations of one payload (request ids, times).
fn stable(a: &Answer) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
    let text = v
        .get("errorMessage")
        .or_else(|| v.get("outcome"))
        .map(|m| m.to_string())
        .unwrap_or_else(|| a.body.clone());
    (a.kind.clone(), text)
}

#[test]
fn a_byte_order_mark_is_read_as_the_parser_reads_it_by_every_function() {
    // A payload each function only acknowledges (another function's event), and one it refuses.
    let cases = [
        ("spot-interruption", "alarms/metric.json"),
        ("asg-lifecycle", "alarms/metric.json"),
        ("ecs-deployment", "alarms/metric.json"),
        ("alarm-fanout", "spot/interruption-terminate.json"),
        ("instance-maintenance", "alarms/metric.json"),
    ];
    let malformed = br#"{"detail-type": "EC2 Spot Instance Interruption Warning", "detail": "#;
    std::thread::scope(|s| {
        for (function, foreign) in cases {
            s.spawn(move || {
                let plain = sample(foreign);
                let (answers, stdout) = run(
                    function,
                    vec![
                        plain.clone(),
                        with_bom(&plain),
                        malformed.to_vec(),
                        with_bom(malformed),
                    ],
                );
                assert_eq!(answers.len(), 4, "{function}: {answers:?}");
                assert_eq!(
                    answers[0].kind, "response",
                    "{function} acknowledges {foreign}: {:?}",
                    answers[0]
                );
                assert_eq!(
                    stable(&answers[1]),
                    stable(&answers[0]),
                    "{function}: {foreign} with a byte-order mark is answered as without"
                );
                assert_eq!(answers[2].kind, "error", "{function}: {:?}", answers[2]);
                assert_eq!(
                    stable(&answers[3]),
                    stable(&answers[2]),
                    "{function}: malformed input with a mark is refused as without, by the parser"
                );
                // The parser's own words, not the runtime's generic deserializer error.
                assert!(
                    !answers[3].body.contains("failed to deserialize"),
                    "{function}: {}",
                    answers[3].body
                );
                // Every metric line carries the log level Lambda was given, so its WARN filter
                // keeps it (a line without one counts as INFO and is dropped).
                let metrics: Vec<&str> =
                    stdout.lines().filter(|l| l.contains("\"_aws\"")).collect();
                assert!(
                    !metrics.is_empty(),
                    "{function}: no metric line in {stdout:?}"
                );
                for line in metrics {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert_eq!(v["level"], "WARN", "{function}: {line}");
                }
            });
        }
    });
}
