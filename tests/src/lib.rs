//! Test harness: a real local AWS for integration tests.
//!
//! [`LocalAws::start`] runs `scripts/local_aws.py serve`: moto server, the Slack sink and the
//! Auto Scaling lifecycle fake, each on a free port on 127.0.0.1, so parallel runs never collide.
//! The child process watches its stdin and exits when this process goes away, and `Drop` kills
//! it, so no server outlives a test.
//!
//! The lifecycle fake is a TEST FIXTURE for the two Auto Scaling calls moto lacks
//! (`CompleteLifecycleAction`, `RecordLifecycleActionHeartbeat`) and for the `Pending:Wait` /
//! `Terminating:Wait` states moto never enters, with the scaling activities those actions belong to
//! (`DescribeScalingActivities`); every other Auto Scaling call it forwards to moto.

pub mod incident_env;
pub mod incident_sim;
pub mod infra_organization;
pub mod runtime_api;
pub mod sim;
pub mod storm_sim;
pub mod terraform;

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
pub fn python() -> String {
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
    /// The STS endpoint: the trust-policy fake in front of moto.
    pub sts: String,
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
            sts: s("sts"),
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

    /// Build a hub account and its members (see `scripts/local_org.py seed`).
    pub fn seed_organization(&self) -> Value {
        let out = Command::new(python())
            .arg(repo_root().join("scripts/local_org.py"))
            .args(["seed", "--moto", &self.moto, "--region", REGION])
            .output()
            .expect("run local_org.py seed");
        assert!(
            out.status.success(),
            "organization seed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("organization seed output is JSON")
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

    /// The next `count` requests whose path starts with `path` fail: HTTP `status` (429 with
    /// `Retry-After`), or with `slack_error`, Slack's HTTP 200 `{"ok": false, "error": …}`.
    pub async fn sink_fail(
        &self,
        path: &str,
        status: u16,
        count: u32,
        retry_after: Option<u32>,
        slack_error: Option<&str>,
    ) {
        self.post_json(
            format!("{}/_sink/fail", self.slack),
            json!({"path": path, "status": status, "count": count, "retry_after": retry_after,
                   "slack_error": slack_error}),
        )
        .await;
    }

    /// The next `count` requests to `path` are acted on, then lose their answer (the connection
    /// closes unanswered): the caller cannot know they landed.
    pub async fn sink_drop(&self, path: &str, count: u32) {
        self.post_json(
            format!("{}/_sink/fail", self.slack),
            json!({"path": path, "count": count, "drop": true}),
        )
        .await;
    }

    /// From now on the sink answers 429 to a request over the service's documented rate: Slack's
    /// `slack_per_second` per channel or webhook, PagerDuty's `pagerduty_per_minute` per key.
    pub async fn sink_rates(&self, slack_per_second: u32, pagerduty_per_minute: u32) {
        self.post_json(
            format!("{}/_sink/rate", self.slack),
            json!({"slack_per_second": slack_per_second,
                   "pagerduty_per_minute": pagerduty_per_minute}),
        )
        .await;
    }

    /// The sink's requests to paths starting with `prefix`.
    pub async fn requests_to(&self, prefix: &str) -> Vec<Value> {
        self.slack_requests()
            .await
            .into_iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
            .collect()
    }

    /// Slack Web API messages as they are now (`channel`, `ts`, `text`, `attachments`, `updates`,
    /// `replies`).
    pub async fn slack_messages(&self) -> Vec<Value> {
        let v = self
            .get_json(format!("{}/_sink/slack/messages", self.slack))
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// PagerDuty alerts by `dedup_key` (`status`, `events`, `summary`, `severity`).
    pub async fn pagerduty_alerts(&self) -> Vec<Value> {
        let v = self
            .get_json(format!("{}/_sink/pagerduty/alerts", self.slack))
            .await;
        v.as_array().cloned().unwrap_or_default()
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
        self.lifecycle_action(instance_id, group, hook, transition, json!({}))
            .await
    }

    /// As `start_lifecycle_action`, with the instance waiting in `state` (a warm-pool transition:
    /// `Warmed:Pending:Wait`).
    pub async fn start_lifecycle_action_in(
        &self,
        instance_id: &str,
        group: &str,
        hook: &str,
        transition: &str,
        state: &str,
    ) -> Value {
        self.lifecycle_action(
            instance_id,
            group,
            hook,
            transition,
            json!({"LifecycleState": state}),
        )
        .await
    }

    /// As `start_lifecycle_action`, begun `ago` seconds before now (for timeouts and heartbeats).
    pub async fn start_lifecycle_action_at(
        &self,
        instance_id: &str,
        group: &str,
        hook: &str,
        transition: &str,
        ago: f64,
    ) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        self.lifecycle_action(
            instance_id,
            group,
            hook,
            transition,
            json!({"StartTime": now - ago}),
        )
        .await
    }

    async fn lifecycle_action(
        &self,
        instance_id: &str,
        group: &str,
        hook: &str,
        transition: &str,
        extra: Value,
    ) -> Value {
        let mut spec = json!({"EC2InstanceId": instance_id, "AutoScalingGroupName": group,
               "LifecycleHookName": hook, "LifecycleTransition": transition,
               "LifecycleActionToken": lifecycle_token(instance_id, hook)});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        self.post_json(
            format!("{}/_fake/lifecycle-actions", self.autoscaling),
            spec,
        )
        .await
    }

    /// Stop a task as the ECS agent reports it (a fixture: moto has no agent): stop code, stopped
    /// reason, and each container's exit code and reason.
    pub async fn ecs_task_stopped(
        &self,
        task: &str,
        stop_code: &str,
        stopped_reason: &str,
        containers: Value,
    ) -> Value {
        self.post_json(
            format!("{}/_fake/ecs/task-stopped", self.autoscaling),
            json!({"cluster": "demo-ecs", "task": task, "stopCode": stop_code,
                   "stoppedReason": stopped_reason, "containers": containers}),
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

/// Everything an SQS subscriber of a topic received since the last call (then deleted), as
/// `(body as JSON, SNS envelope)`: the SNS envelope carries `Message`, `Subject` and `MessageAttributes`.
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// A topic with an SQS subscriber, for reading back what was published: `(topic arn, queue url)`.
pub async fn topic_with_queue(sdk: &SdkConfig, name: &str) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue = sqs
        .create_queue()
        .queue_name(format!("{name}-inbox"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .unwrap();
    (topic, queue)
}

/// A DynamoDB dedupe table as the Terraform module creates it (`pk` string key, TTL on `expires_at`).
pub async fn dedupe_table(sdk: &SdkConfig, name: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    name.to_owned()
}

/// Log capture for asserting what functions log (for example, that secrets never appear).
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Install as this thread's subscriber (tokio tests run on one thread) until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Load a sample event from `events/`.
pub fn sample(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// An environment for a function's `build`, as `NAME=value` pairs.
pub type Env = std::collections::BTreeMap<String, String>;

/// `env` as the lookup a function's `build` takes in place of the process environment.
pub fn lookup(env: &Env) -> impl Fn(&str) -> Option<String> + '_ {
    move |k| env.get(k).cloned()
}

/// Run one payload through a function's invocation envelope, as Lambda would, with a minute's
/// budget. Errors read `ErrorType: message`.
pub async fn invoke<F: fleetguard::serve::Function>(
    function: &F,
    event: &Value,
) -> Result<fleetguard::serve::Summary, String> {
    fleetguard::serve::handle(
        function,
        event,
        fleetguard::notify::Deadline::after(std::time::Duration::from_secs(60)),
    )
    .await
    .map_err(|e| format!("{}: {}", e.error_type, e.message))
}

/// The title of a Slack message (the first block's text), without the severity emoji.
pub fn slack_header(body: &Value) -> String {
    let h = body["attachments"][0]["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default();
    match h.strip_prefix(':') {
        Some(rest) => rest.split_once(' ').map_or(rest, |(_, t)| t).to_owned(),
        None => h.to_owned(),
    }
}

/// What every integration test starts from: a local AWS with the demo fleet seeded (ECS tasks
/// frozen in their state, see [`LocalAws::freeze_ecs_tasks`]) and one SDK configuration for it.
pub struct Setup {
    pub aws: LocalAws,
    pub fleet: Value,
    pub sdk: SdkConfig,
    pub ecs: aws_sdk_ecs::Client,
}

impl Setup {
    pub async fn new() -> Self {
        let aws = LocalAws::start();
        let fleet = aws.seed();
        aws.freeze_ecs_tasks().await;
        let sdk = aws.sdk_config().await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        Self {
            aws,
            fleet,
            sdk,
            ecs,
        }
    }

    /// A string the seed returned.
    pub fn seeded(&self, key: &str) -> String {
        self.fleet[key].as_str().unwrap().to_owned()
    }

    /// The default Slack webhook secret (`SLACK_WEBHOOK_SECRET_ARN`), plus `extra`.
    pub fn env(&self, extra: &[(&str, &str)]) -> Env {
        let mut env = Env::from([(
            "SLACK_WEBHOOK_SECRET_ARN".to_owned(),
            self.seeded("slack_webhook_secret_arn"),
        )]);
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        env
    }

    /// The `i`-th seeded ECS instance: (EC2 instance id, container instance ARN).
    pub fn ecs_instance(&self, i: usize) -> (String, String) {
        let e = &self.fleet["ecs_instances"][i];
        (
            e["instance_id"].as_str().unwrap().to_owned(),
            e["container_instance_arn"].as_str().unwrap().to_owned(),
        )
    }

    /// A container instance of the demo cluster, as ECS describes it.
    async fn describe_ci(&self, ci: &str) -> aws_sdk_ecs::types::ContainerInstance {
        self.ecs
            .describe_container_instances()
            .cluster("demo-ecs")
            .container_instances(ci)
            .send()
            .await
            .unwrap()
            .container_instances()[0]
            .clone()
    }

    /// A container instance's status in the demo cluster.
    pub async fn status(&self, ci: &str) -> String {
        self.describe_ci(ci).await.status().unwrap().to_owned()
    }

    /// fleetguard's drain mark on a container instance of the demo cluster, as ECS holds it.
    pub async fn drain_mark(&self, ci: &str) -> Option<String> {
        self.describe_ci(ci)
            .await
            .attributes()
            .iter()
            .find(|a| a.name() == fleetguard::ports::DRAIN_MARK_ATTRIBUTE)
            .and_then(|a| a.value())
            .map(str::to_owned)
    }

    /// Set the drain mark's value (as if written earlier).
    pub async fn set_drain_mark(&self, ci: &str, value: &str) {
        self.ecs
            .put_attributes()
            .cluster("demo-ecs")
            .attributes(
                aws_sdk_ecs::types::Attribute::builder()
                    .name(fleetguard::ports::DRAIN_MARK_ATTRIBUTE)
                    .value(value)
                    .target_id(ci)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// The container-instance state change ECS sends for a container instance of the demo
    /// cluster, as it is now (status, counters, attributes).
    pub async fn container_instance_event(&self, ci: &str) -> Value {
        let c = &self.describe_ci(ci).await;
        let mut e = sample("ecs/container-instance-draining.json");
        e["time"] = json!(chrono::Utc::now().to_rfc3339());
        e["region"] = json!("us-east-1");
        let detail = &mut e["detail"];
        detail["clusterArn"] = self.fleet["cluster_arn"].clone();
        detail["containerInstanceArn"] = json!(ci);
        detail["ec2InstanceId"] = json!(c.ec2_instance_id());
        detail["status"] = json!(c.status());
        detail["agentConnected"] = json!(c.agent_connected());
        detail["runningTasksCount"] = json!(c.running_tasks_count());
        detail["pendingTasksCount"] = json!(c.pending_tasks_count());
        detail["registeredAt"] = json!(chrono::Utc::now().to_rfc3339());
        detail["attributes"] = json!(
            c.attributes()
                .iter()
                .map(|a| json!({"name": a.name(), "value": a.value()}))
                .collect::<Vec<_>>()
        );
        e["resources"] = json!([ci]);
        e
    }

    /// The tasks ECS lists on a container instance of the demo cluster.
    pub async fn tasks_on(&self, ci: &str) -> Vec<String> {
        self.ecs
            .list_tasks()
            .cluster("demo-ecs")
            .container_instance(ci)
            .send()
            .await
            .unwrap()
            .task_arns()
            .to_vec()
    }

    pub async fn stop_tasks(&self, arns: &[String]) {
        for t in arns {
            self.ecs
                .stop_task()
                .cluster("demo-ecs")
                .task(t)
                .send()
                .await
                .unwrap();
        }
    }

    /// Start `n` checkout-api tasks on a container instance of the demo cluster.
    pub async fn start_tasks(&self, ci: &str, n: usize) {
        for _ in 0..n {
            self.ecs
                .start_task()
                .cluster("demo-ecs")
                .task_definition("checkout-api:2")
                .container_instances(ci)
                .group("service:checkout-api")
                .send()
                .await
                .unwrap();
        }
    }

    /// The instances registered in the seeded target group.
    pub async fn targets(&self) -> Vec<String> {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk);
        let h = elb
            .describe_target_health()
            .target_group_arn(self.seeded("target_group_arn"))
            .send()
            .await
            .unwrap();
        h.target_health_descriptions()
            .iter()
            .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
            .collect()
    }

    /// Lifecycle actions the lifecycle fake saw completed.
    pub async fn completed(&self) -> Vec<Value> {
        self.aws.lifecycle_actions().await["completed"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Auto Scaling calls of `action` the lifecycle fake received.
    pub async fn calls(&self, action: &str) -> Vec<Value> {
        self.aws
            .autoscaling_calls()
            .await
            .into_iter()
            .filter(|c| c["action"] == action)
            .collect()
    }

    /// The SNS messages delivered to the seeded topic's queue since the last call.
    pub async fn sns_messages(&self) -> Vec<Value> {
        drain_queue(
            &aws_sdk_sqs::Client::new(&self.sdk),
            &self.seeded("queue_url"),
        )
        .await
    }

    /// The Slack webhook bodies the sink received.
    pub async fn slack_bodies(&self) -> Vec<Value> {
        self.aws
            .requests_to("/services/")
            .await
            .iter()
            .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
            .collect()
    }

    /// The titles of the Slack messages the sink received.
    pub async fn slack_titles(&self) -> Vec<String> {
        self.slack_bodies().await.iter().map(slack_header).collect()
    }
}

/// The token of the lifecycle action the lifecycle fake holds for (instance, hook): the same in
/// the fake and in the events a test builds, as AWS's token is in the action and its event.
pub fn lifecycle_token(instance: &str, hook: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (instance, hook).hash(&mut h);
    let a = h.finish();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        a & 0xffff,
        (a >> 16) & 0xfff,
        (a >> 28) & 0xfff,
        a & 0xffff_ffff_ffff
    )
}
