//! A payload that starts with a UTF-8 byte-order mark (a sample saved by a Windows editor), sent
//! to each function's real binary through a fake Lambda Runtime API: the function answers it as
//! it answers the same payload without the mark, so the runtime and the project's parser agree.
//! No AWS is reachable: the payloads are ones each function only acknowledges, or refuses.

use fleetguard_integration::repo_root;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the function posted back for one payload: `response` or `error`, and the body.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    kind: String,
    body: String,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((path, body))
}

fn respond(w: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(body);
}

/// Serves `payloads` one at a time to the function's binary, and returns its answers in order
/// and what it wrote to stdout (its metric lines).
fn run(function: &str, payloads: Vec<Vec<u8>>) -> (Vec<Answer>, String) {
    let bin: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join(function);
    assert!(
        bin.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (make test)",
        bin.display()
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let queue = Arc::new(Mutex::new(payloads.clone()));
    let (tx, rx) = mpsc::channel::<Answer>();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let (queue, tx) = (queue.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                let mut served = 0;
                while let Some((path, body)) = read_request(&mut r) {
                    if path.ends_with("/invocation/next") {
                        let next = {
                            let mut q = queue.lock().unwrap();
                            (!q.is_empty()).then(|| q.remove(0))
                        };
                        // Nothing left: the function waits here until it is killed.
                        let Some(payload) = next else {
                            std::thread::sleep(Duration::from_secs(600));
                            return;
                        };
                        served += 1;
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 30_000;
                        respond(
                            &mut w,
                            "200 OK",
                            &[
                                ("content-type", "application/json".into()),
                                ("lambda-runtime-aws-request-id", format!("req-{n}-{served}")),
                                ("lambda-runtime-deadline-ms", deadline.to_string()),
                                (
                                    "lambda-runtime-invoked-function-arn",
                                    "arn:aws:lambda:us-east-1:123456789012:function:bom".into(),
                                ),
                            ],
                            &payload,
                        );
                    } else {
                        let kind = if path.ends_with("/response") {
                            "response"
                        } else if path.ends_with("/init/error") {
                            "init-error"
                        } else {
                            "error"
                        };
                        respond(&mut w, "202 Accepted", &[], b"{}");
                        let _ = tx.send(Answer {
                            kind: kind.into(),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                    }
                }
            });
        }
    });
    let mut child = Command::new(&bin)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        // As Lambda sets it for a function whose application log level is WARN.
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        // Nothing listens there: a call to AWS would fail, and none is expected.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env(
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/fleetguard-scheduler",
        )
        .env(
            "SCHEDULE_TARGET_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:fleetguard-instance-maintenance",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut answers = Vec::new();
    for _ in 0..payloads.len() {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => {
                let init_failed = a.kind == "init-error";
                answers.push(a);
                if init_failed {
                    break;
                }
            }
            Err(e) => {
                let _ = child.kill();
                panic!("{function}: no answer ({e}); so far {answers:?}");
            }
        }
    }
    let _ = child.kill();
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    let _ = child.wait();
    (answers, stdout)
}

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
