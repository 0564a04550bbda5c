//! Test harness: a real local AWS for integration tests.
//!
//! [`LocalAws::start`] runs `scripts/local_aws.py serve`: moto server, the Slack sink and the
//! Auto Scaling lifecycle fake, each on a free port on 127.0.0.1, so parallel runs never collide.
//! The child process watches its stdin and exits when this process goes away, and `Drop` kills
//! it, so no server outlives a test.
//!
//! The lifecycle fake is a TEST FIXTURE for the two Auto Scaling calls moto lacks
//! (`CompleteLifecycleAction`, `RecordLifecycleActionHeartbeat`) and for the `Pending:Wait` /
//! `Terminating:Wait` states moto never enters; every other Auto Scaling call it forwards to moto.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

pub const REGION: &str = "us-east-1";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$PYTHON` (set by the Makefile), else the virtualenv `scripts/ensure-tools.sh` creates, else
/// `python3` from the PATH.
fn python() -> String {
    if let Ok(p) = std::env::var("PYTHON") {
        return p;
    }
    let venv = std::env::var("FLEETGUARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/fleetguard/venv")
        });
    let p = venv.join("bin/python");
    if p.exists() {
        p.to_string_lossy().into_owned()
    } else {
        "python3".to_owned()
    }
}

pub struct LocalAws {
    child: Child,
    _stdin: ChildStdin,
    pub moto: String,
    pub slack: String,
    /// The Auto Scaling endpoint: the lifecycle fake in front of moto.
    pub autoscaling: String,
    http: reqwest::Client,
}

impl LocalAws {
    pub fn start() -> Self {
        let mut child = Command::new(python())
            .arg(repo_root().join("scripts/local_aws.py"))
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scripts/local_aws.py (python3 with moto; run scripts/ensure-tools.sh)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read local_aws.py's first line");
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("local_aws.py did not start (is moto installed?): {e}: {line:?}")
        });
        let s = |k: &str| info[k].as_str().unwrap().to_owned();
        Self {
            moto: s("moto"),
            slack: s("slack"),
            autoscaling: s("autoscaling"),
            child,
            _stdin: stdin,
            http: reqwest::Client::new(),
        }
    }

    /// Build the demo fleet (see `scripts/local_aws.py seed`) and return what was created.
    pub fn seed(&self) -> Value {
        let out = Command::new(python())
            .arg(repo_root().join("scripts/local_aws.py"))
            .args([
                "seed",
                "--moto",
                &self.moto,
                "--slack",
                &self.slack,
                "--region",
                REGION,
            ])
            .output()
            .expect("run local_aws.py seed");
        assert!(
            out.status.success(),
            "seed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("seed output is JSON")
    }

    /// One SDK configuration for every client, pointed at moto, with test credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "local-aws",
            ))
            .endpoint_url(&self.moto)
            .load()
            .await
    }

    /// The Auto Scaling client as the functions get it under `AWS_ENDPOINT_URL_AUTO_SCALING`.
    pub fn autoscaling_client(&self, sdk: &SdkConfig) -> aws_sdk_autoscaling::Client {
        let conf = aws_sdk_autoscaling::config::Builder::from(sdk)
            .endpoint_url(&self.autoscaling)
            .build();
        aws_sdk_autoscaling::Client::from_conf(conf)
    }

    async fn get_json(&self, url: String) -> Value {
        self.http.get(url).send().await.unwrap().json_value().await
    }

    async fn post_json(&self, url: String, body: Value) -> Value {
        self.http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .json_value()
            .await
    }

    // ---- Slack sink

    /// Every request the sink received: `{path, headers, body, status, time}`.
    pub async fn slack_requests(&self) -> Vec<Value> {
        let v = self
            .get_json(format!("{}/_sink/requests", self.slack))
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// The next `count` posts answer `status` (429 with `Retry-After: retry_after` when given).
    pub async fn slack_fail_next(&self, status: u16, count: u32, retry_after: Option<u32>) {
        self.post_json(
            format!("{}/_sink/fail", self.slack),
            json!({"status": status, "count": count, "retry_after": retry_after}),
        )
        .await;
    }

    pub async fn slack_reset(&self) {
        self.post_json(format!("{}/_sink/reset", self.slack), json!({}))
            .await;
    }

    // ---- Auto Scaling lifecycle fake (test fixture)

    /// Put an instance into `Terminating:Wait` (or `Pending:Wait` for a launch transition) with a
    /// pending lifecycle action, as Auto Scaling would. Returns the action with its token.
    pub async fn start_lifecycle_action(
        &self,
        instance_id: &str,
        group: &str,
        hook: &str,
        transition: &str,
    ) -> Value {
        self.post_json(
            format!("{}/_fake/lifecycle-actions", self.autoscaling),
            json!({"EC2InstanceId": instance_id, "AutoScalingGroupName": group,
                   "LifecycleHookName": hook, "LifecycleTransition": transition}),
        )
        .await
    }

    /// Pending and completed lifecycle actions.
    pub async fn lifecycle_actions(&self) -> Value {
        self.get_json(format!("{}/_fake/lifecycle-actions", self.autoscaling))
            .await
    }

    /// Every Auto Scaling call the fake received, in order: `{action, params, time}`.
    pub async fn autoscaling_calls(&self) -> Vec<Value> {
        let v = self
            .get_json(format!("{}/_fake/calls", self.autoscaling))
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// The next `count` calls of `action` fail with `code` (for example `Throttling`).
    pub async fn autoscaling_fail_next(&self, action: &str, count: u32, code: &str) {
        self.post_json(
            format!("{}/_fake/fail", self.autoscaling),
            json!({"action": action, "count": count, "code": code, "status": 400}),
        )
        .await;
    }

    /// Freeze moto's ECS tasks in their current state (moto otherwise moves a task one step
    /// towards STOPPED on every DescribeTasks).
    pub async fn freeze_ecs_tasks(&self) {
        self.http
            .post(format!("{}/moto-api/state-manager/set-transition", self.moto))
            .body(json!({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}}).to_string())
            .send()
            .await
            .unwrap();
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait JsonBody {
    async fn json_value(self) -> Value;
}

impl JsonBody for reqwest::Response {
    async fn json_value(self) -> Value {
        let text = self.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}
