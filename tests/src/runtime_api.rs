//! A fake Lambda Runtime API: a function's real binary, served payloads one at a time, as
//! Lambda serves them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the function posted back for one payload: `response` or `error`, and the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub kind: String,
    pub body: String,
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

/// Serves `payloads` one at a time to the function's binary, with the environment Lambda gives
/// it plus `env`, and returns its answers in order and what it wrote to stdout (its metric
/// lines).
pub fn run_binary(
    function: &str,
    env: &[(&str, &str)],
    payloads: Vec<Vec<u8>>,
) -> (Vec<Answer>, String) {
    let (answers, stdout) = run_pool(function, env, 1, payloads);
    (answers, stdout.concat())
}

/// Serves `payloads` to `environments` copies of the function's binary at once, each taking the
/// next payload as soon as it is free (as Lambda hands an asynchronous invocation to whichever
/// execution environment is idle: a slow invocation holds up only its own environment).
/// Returns the answers in payload order (cut short at an init error) and each copy's stdout.
pub fn run_pool(
    function: &str,
    env: &[(&str, &str)],
    environments: usize,
    payloads: Vec<Vec<u8>>,
) -> (Vec<Answer>, Vec<String>) {
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
    let total = payloads.len();
    let queue: Queue = Arc::new(Mutex::new(payloads.into_iter().enumerate().collect()));
    let (tx, rx) = mpsc::channel::<(Option<usize>, Answer)>();
    let mut children = Vec::new();
    for _ in 0..environments.max(1) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (queue, tx) = (queue.clone(), tx.clone());
        std::thread::spawn(move || serve_runtime_api(listener, queue, tx));
        let mut child = Command::new(&bin)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", "us-east-1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Read stdout as it comes: a full pipe (64 KB of log lines) would block the function.
        let reader = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut stdout = String::new();
                let _ = out.read_to_string(&mut stdout);
                stdout
            })
        });
        children.push((child, reader));
    }
    let mut slots: Vec<Option<Answer>> = vec![None; total];
    let mut received = 0;
    while received < total {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok((index, a)) => {
                let init_failed = a.kind == "init-error";
                let at = index.or_else(|| slots.iter().position(Option::is_none));
                if let Some(i) = at.filter(|i| *i < total) {
                    slots[i] = Some(a);
                }
                received += 1;
                if init_failed {
                    break;
                }
            }
            Err(e) => {
                for (child, _) in &mut children {
                    let _ = child.kill();
                }
                panic!(
                    "{function}: no answer ({e}) after {received} of {total} payloads; so far {slots:?}"
                );
            }
        }
    }
    let mut stdouts = Vec::new();
    for (mut child, reader) in children {
        let _ = child.kill();
        let _ = child.wait();
        stdouts.push(reader.and_then(|r| r.join().ok()).unwrap_or_default());
    }
    let answers = slots.into_iter().map_while(|a| a).collect();
    (answers, stdouts)
}

/// The payloads not yet served, with their index.
type Queue = Arc<Mutex<std::collections::VecDeque<(usize, Vec<u8>)>>>;

/// One environment's Runtime API: the next payload from the shared queue on `…/invocation/next`
/// (its index in the request id), and each answer back to `tx` with that index.
fn serve_runtime_api(
    listener: TcpListener,
    queue: Queue,
    tx: mpsc::Sender<(Option<usize>, Answer)>,
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (queue, tx) = (queue.clone(), tx.clone());
        std::thread::spawn(move || {
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            while let Some((path, body)) = read_request(&mut r) {
                if path.ends_with("/invocation/next") {
                    let next = queue.lock().unwrap().pop_front();
                    // Nothing left: the function waits here until it is killed.
                    let Some((index, payload)) = next else {
                        std::thread::sleep(Duration::from_secs(600));
                        return;
                    };
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
                            ("lambda-runtime-aws-request-id", format!("req-{index}")),
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
                    // …/invocation/req-<index>/response (or /error).
                    let index = path
                        .split('/')
                        .find_map(|p| p.strip_prefix("req-"))
                        .and_then(|i| i.parse().ok());
                    respond(&mut w, "202 Accepted", &[], b"{}");
                    let _ = tx.send((
                        index,
                        Answer {
                            kind: kind.into(),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        },
                    ));
                }
            }
        });
    }
}
