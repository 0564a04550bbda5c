//! Delivery: route, dedupe, send to each destination independently, report.
//!
//! Each destination is tried on its own; one failing never stops the others. If any destination
//! still failed after its retries, [`Notifier::send`] returns a [`DeliveryError`] naming it, so
//! the invocation fails, Lambda retries it and the on-failure destination keeps it. With
//! `DEDUPE_TABLE`, a destination that already has the message (same dedupe key) is skipped, so
//! that retry reaches only the destinations that missed it.

use super::route::{Destination, Route, Rules};
use super::webhook::WebhookUrl;
use super::{Notification, slack, sns};
use crate::config::ConfigError;
use aws_sdk_dynamodb::types::AttributeValue;
use backon::{ExponentialBuilder, Retryable};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// When the invocation must be finished; retries never wait past it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// Lambda's deadline (milliseconds since the epoch), less a margin to report back in time.
    /// Lambda never hands over an invocation whose deadline has passed; local emulators may
    /// (`cargo lambda watch` sends the timeout, `600000`, instead of a time): then
    /// [`Deadline::FALLBACK`] is assumed.
    pub fn from_epoch_ms(deadline_ms: u64) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        if deadline_ms <= now_ms {
            tracing::debug!(
                deadline_ms,
                now_ms,
                "runtime deadline is not in the future; assuming the fallback budget"
            );
            return Self::after(Self::FALLBACK);
        }
        let left = Duration::from_millis(deadline_ms - now_ms);
        Self(Instant::now() + left.saturating_sub(Duration::from_millis(500)))
    }

    /// The budget assumed when the runtime's deadline is unusable.
    pub const FALLBACK: Duration = Duration::from_secs(30);

    pub fn after(d: Duration) -> Self {
        Self(Instant::now() + d)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

/// What was done with one notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub route: Route,
    pub delivered: Vec<String>,
    /// Destinations that already had this message (dedupe table).
    pub already_delivered: Vec<String>,
}

impl DeliveryReport {
    /// One summary line per destination: `delivered to …` / `already delivered to …`.
    pub fn actions(&self) -> impl Iterator<Item = String> + '_ {
        self.delivered
            .iter()
            .map(|d| format!("delivered to {d}"))
            .chain(
                self.already_delivered
                    .iter()
                    .map(|d| format!("already delivered to {d}")),
            )
    }
}

/// Some destinations did not get the message. Names them; never contains a webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub kind: &'static str,
    pub failed: Vec<(String, String)>,
    pub delivered: Vec<String>,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} notification not delivered to ", self.kind)?;
        for (i, (dest, why)) in self.failed.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{dest} ({why})")?;
        }
        if !self.delivered.is_empty() {
            write!(f, "; delivered to {}", self.delivered.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for DeliveryError {}

/// The pipeline, built once at init.
#[derive(Clone)]
pub struct Notifier {
    rules: Rules,
    defaults: Vec<Destination>,
    /// Webhooks known at init (`SLACK_WEBHOOK_URL`), and those read from their secrets since.
    webhooks: Arc<Mutex<BTreeMap<Destination, WebhookUrl>>>,
    /// Reads webhook secrets on first use: a secret that cannot be read fails only its own
    /// destination, never the init (draining must not depend on Slack).
    secrets: Option<aws_sdk_secretsmanager::Client>,
    sns: Option<aws_sdk_sns::Client>,
    /// Built on the first Slack post, with the process's shared root certificates.
    http: Arc<OnceLock<reqwest::Client>>,
    dedupe: Option<(aws_sdk_dynamodb::Client, String)>,
    /// Stashed notifications when there is no dedupe table: this execution environment only.
    stash: Arc<Mutex<BTreeMap<String, Notification>>>,
    slack_max_attempts: usize,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("defaults", &self.defaults)
            .field(
                "webhooks",
                &self.webhooks().values().cloned().collect::<Vec<_>>(),
            )
            .field("dedupe_table", &self.dedupe.as_ref().map(|(_, t)| t))
            .finish()
    }
}

fn cfg_err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

impl Notifier {
    /// Read `SNS_TOPIC_ARN`, `SLACK_WEBHOOK_SECRET_ARN`, `SLACK_WEBHOOK_URL`, `NOTIFY_ROUTES`,
    /// `DEDUPE_TABLE` and `SLACK_MAX_ATTEMPTS`. Webhook secrets are read on first use, not here.
    pub async fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let rules = match get("NOTIFY_ROUTES") {
            Some(json) => Rules::parse(&json).map_err(|e| cfg_err("NOTIFY_ROUTES", e))?,
            None => Rules::default(),
        };
        let mut defaults = Vec::new();
        if let Some(topic) = get("SNS_TOPIC_ARN") {
            if !topic.starts_with("arn:") || !topic.contains(":sns:") {
                return Err(cfg_err(
                    "SNS_TOPIC_ARN",
                    format!("not an SNS topic ARN: {topic:?}"),
                ));
            }
            defaults.push(Destination::Sns { topic_arn: topic });
        }
        let mut webhooks = BTreeMap::new();
        let mut any_secret = rules.slack_secrets().next().is_some();
        if let Some(secret) = get("SLACK_WEBHOOK_SECRET_ARN") {
            defaults.push(Destination::SlackSecret { secret_id: secret });
            any_secret = true;
        } else if let Some(url) = lookup("SLACK_WEBHOOK_URL").filter(|u| !u.trim().is_empty()) {
            let hook = WebhookUrl::parse(&url, "SLACK_WEBHOOK_URL")
                .map_err(|e| cfg_err("SLACK_WEBHOOK_URL", e))?;
            defaults.push(Destination::SlackUrl);
            webhooks.insert(Destination::SlackUrl, hook);
        }
        let slack_max_attempts = match get("SLACK_MAX_ATTEMPTS") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=20).contains(n))
                .ok_or_else(|| {
                    cfg_err("SLACK_MAX_ATTEMPTS", format!("expected 1-20, got {v:?}"))
                })?,
            None => 5,
        };
        let any_sns = defaults
            .iter()
            .any(|d| matches!(d, Destination::Sns { .. }))
            || !rules.is_empty();
        Ok(Self {
            rules,
            defaults,
            webhooks: Arc::new(Mutex::new(webhooks)),
            secrets: any_secret.then(|| aws_sdk_secretsmanager::Client::new(sdk)),
            sns: any_sns.then(|| aws_sdk_sns::Client::new(sdk)),
            http: Arc::default(),
            dedupe: get("DEDUPE_TABLE").map(|t| (aws_sdk_dynamodb::Client::new(sdk), t)),
            stash: Arc::default(),
            slack_max_attempts,
        })
    }

    pub fn defaults(&self) -> &[Destination] {
        &self.defaults
    }

    /// Route `n`, then deliver it to every destination that does not have it yet.
    pub async fn send(
        &self,
        mut n: Notification,
        deadline: Deadline,
    ) -> Result<DeliveryReport, DeliveryError> {
        let route = self.rules.route(&n, &self.defaults);
        if let Some(s) = route.severity {
            n.severity = s;
        }
        let mut report = DeliveryReport {
            route: route.clone(),
            ..DeliveryReport::default()
        };
        if route.dropped {
            tracing::info!(kind = n.kind.as_str(), rules = ?route.rules, "notification dropped by rule");
            return Ok(report);
        }
        if route.destinations.is_empty() {
            tracing::warn!(kind = n.kind.as_str(), title = %n.title, "no notification destination configured");
            return Ok(report);
        }
        let mut failed = Vec::new();
        for dest in &route.destinations {
            let id = dest.id();
            let key = dedupe_key(&n.dedupe_key, &id);
            // Claim before sending: of two invocations with the same message at once, one sends.
            let claim = self.claim(&key, n.dedupe_ttl, deadline).await;
            if claim == Claim::Taken {
                tracing::info!(destination = %id, "already delivered (or being delivered): skipped");
                report.already_delivered.push(id);
                continue;
            }
            match self.deliver(dest, &n, deadline).await {
                Ok(()) => {
                    tracing::info!(destination = %id, kind = n.kind.as_str(), "notification delivered");
                    self.record_sent(&key, n.dedupe_ttl).await;
                    report.delivered.push(id);
                }
                Err(why) => {
                    tracing::error!(destination = %id, error = %why, "notification delivery failed");
                    if claim == Claim::Won {
                        // Let the retry claim it again.
                        self.release(&key).await;
                    }
                    failed.push((id, why));
                }
            }
        }
        if failed.is_empty() {
            Ok(report)
        } else {
            Err(DeliveryError {
                kind: n.kind.as_str(),
                failed,
                delivered: report.delivered,
            })
        }
    }

    async fn deliver(
        &self,
        dest: &Destination,
        n: &Notification,
        deadline: Deadline,
    ) -> Result<(), String> {
        match dest {
            Destination::Sns { topic_arn } => self.publish(topic_arn, n).await,
            Destination::SlackSecret { .. } | Destination::SlackUrl => {
                let hook = self.webhook(dest).await?;
                self.post_slack(&hook, n, deadline).await
            }
        }
    }

    fn webhooks(&self) -> std::sync::MutexGuard<'_, BTreeMap<Destination, WebhookUrl>> {
        self.webhooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The destination's webhook: known, or read from its secret now (and kept). A secret that
    /// cannot be read is this destination's failure, named, and read again on the next try.
    async fn webhook(&self, dest: &Destination) -> Result<WebhookUrl, String> {
        if let Some(hook) = self.webhooks().get(dest) {
            return Ok(hook.clone());
        }
        let Destination::SlackSecret { secret_id } = dest else {
            return Err("no webhook configured".into());
        };
        let sm = self.secrets.as_ref().ok_or("no Secrets Manager client")?;
        let value = sm
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot read secret {secret_id}: {}",
                    crate::text::excerpt(
                        &aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                        300
                    )
                )
            })?;
        let text = value
            .secret_string()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| format!("secret {secret_id} has no string value (is it filled in?)"))?;
        let hook = WebhookUrl::from_secret(text, secret_id)?;
        self.webhooks().insert(dest.clone(), hook.clone());
        Ok(hook)
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            crate::tls::http_client_builder()
                .user_agent(concat!("fleetguard/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default()
        })
    }

    async fn publish(&self, topic_arn: &str, n: &Notification) -> Result<(), String> {
        use aws_sdk_sns::types::MessageAttributeValue;
        let client = self.sns.as_ref().ok_or("no SNS client")?;
        let mut req = client
            .publish()
            .topic_arn(topic_arn)
            .subject(sns::subject(n))
            .message(sns::body(n));
        for (k, v) in sns::attributes(n) {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| e.to_string())?;
            req = req.message_attributes(k, attr);
        }
        // The SDK's standard retry mode retries throttling and 5xx with backoff.
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sns::error::DisplayErrorContext(&e).to_string())
    }

    async fn post_slack(
        &self,
        hook: &WebhookUrl,
        n: &Notification,
        deadline: Deadline,
    ) -> Result<(), String> {
        let http = self.http();
        let body = slack::render(n).to_string();
        let attempt = || async {
            let timeout = deadline.remaining().min(Duration::from_secs(10));
            if timeout < Duration::from_millis(100) {
                return Err(SlackError::OutOfTime);
            }
            let resp = http
                .post(hook.url().clone())
                .header("content-type", "application/json")
                .timeout(timeout)
                .body(body.clone())
                .send()
                .await
                // `without_url`: the URL is the credential.
                .map_err(|e| SlackError::Transport(e.without_url().to_string()))?;
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(());
            }
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = resp.text().await.unwrap_or_default();
            Err(SlackError::Status {
                status,
                retry_after,
                body: crate::text::shown(&text, 100),
            })
        };
        let mut attempts = 0usize;
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(300))
                    .with_max_delay(Duration::from_secs(8))
                    .with_max_times(self.slack_max_attempts.saturating_sub(1))
                    .with_jitter(),
            )
            .sleep(tokio::time::sleep)
            .when(SlackError::retryable)
            .adjust(|e, backoff| {
                // Slack's Retry-After wins over our backoff; never wait past the deadline.
                let wait = match e {
                    SlackError::Status { status: 429, retry_after: Some(r), .. } => Some(*r),
                    _ => backoff,
                }?;
                (wait + Duration::from_millis(200) < deadline.remaining()).then_some(wait)
            })
            .notify(|e, wait| {
                attempts += 1;
                tracing::warn!(destination = %hook, error = %e, retry_in_ms = wait.as_millis() as u64, "slack post failed, retrying");
            })
            .await;
        result.map_err(|e| {
            let tries = attempts + 1;
            format!(
                "{e} after {tries} attempt{}",
                if tries == 1 { "" } else { "s" }
            )
        })
    }

    /// Leave a fact in the dedupe table for a later event (not a message): for example that a
    /// rollback to a deployment started. A no-op without `DEDUPE_TABLE`.
    pub async fn remember(&self, fact: &str, ttl: Duration) {
        self.record_sent(&format!("fact|{fact}"), ttl).await
    }

    /// Whether `remember` left this fact (false without `DEDUPE_TABLE`).
    pub async fn remembered(&self, fact: &str) -> bool {
        self.already_sent(&format!("fact|{fact}")).await
    }

    /// Claim the right to send `key`: a conditional write that succeeds only if nobody delivered
    /// it (or the record expired) and nobody holds a live claim (a lease until the claimer's
    /// deadline). Without a table, or when the table cannot be reached, `Unknown`: send anyway
    /// (at-least-once) rather than lose the message.
    async fn claim(&self, key: &str, ttl: Duration, deadline: Deadline) -> Claim {
        let Some((ddb, table)) = &self.dedupe else {
            return Claim::Unknown;
        };
        let now = now_secs();
        let lease = now + deadline.remaining().as_secs().clamp(5, 900) + 5;
        let res = ddb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("state", AttributeValue::S("sending".into()))
            .item("lease_until", AttributeValue::N(lease.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now + ttl.as_secs()).to_string()),
            )
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now OR (#state = :sending AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .send()
            .await;
        match res {
            Ok(_) => Claim::Won,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Claim::Taken
            }
            Err(e) => {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "dedupe claim failed; sending");
                Claim::Unknown
            }
        }
    }

    /// Give a claim back after a failed delivery, so the retry can send.
    async fn release(&self, key: &str) {
        let Some((ddb, table)) = &self.dedupe else {
            return;
        };
        let res = ddb
            .delete_item()
            .table_name(table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .condition_expression("#state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .send()
            .await;
        if let Err(e) = res {
            // The lease runs out by itself; the retry claims it then.
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not release a dedupe claim");
        }
    }

    async fn already_sent(&self, key: &str) -> bool {
        let Some((ddb, table)) = &self.dedupe else {
            return false;
        };
        match ddb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
        {
            Ok(out) => out.item().is_some_and(|item| {
                // TTL deletion is lazy: an expired record does not count.
                item.get("expires_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_none_or(|exp| exp > now_secs())
            }),
            Err(e) => {
                // Unknown: send anyway (at-least-once) rather than lose the message.
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "dedupe lookup failed; sending");
                false
            }
        }
    }

    async fn record_sent(&self, key: &str, ttl: Duration) {
        let Some((ddb, table)) = &self.dedupe else {
            return;
        };
        let now = now_secs();
        let res = ddb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("state", AttributeValue::S("sent".into()))
            .item("sent_at", AttributeValue::N(now.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now + ttl.as_secs()).to_string()),
            )
            // Over our own claim, or a record that expired; never over another's delivery.
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now OR #state = :sending",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .send()
            .await;
        if let Err(e) = res {
            let conditional = e
                .as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception());
            if !conditional {
                // Delivered already: failing now would only make a retry send it again.
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not record delivery in the dedupe table");
            }
        }
    }
}

impl crate::ports::Notify for Notifier {
    async fn send(
        &self,
        n: Notification,
        deadline: Deadline,
    ) -> Result<DeliveryReport, DeliveryError> {
        Notifier::send(self, n, deadline).await
    }

    async fn remember(&self, fact: &str, ttl: Duration) {
        Notifier::remember(self, fact, ttl).await
    }

    async fn remembered(&self, fact: &str) -> bool {
        Notifier::remembered(self, fact).await
    }

    async fn stash(&self, key: &str, n: &Notification) -> bool {
        let keep_here = |n: &Notification| {
            let mut stash = self.stash.lock().unwrap_or_else(|e| e.into_inner());
            if stash.contains_key(key) {
                return false;
            }
            stash.insert(key.to_owned(), n.clone());
            true
        };
        let Some((ddb, table)) = &self.dedupe else {
            return keep_here(n);
        };
        let body = serde_json::to_string(n).unwrap_or_default();
        let expires = now_secs() + 2 * 86_400;
        let put = ddb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("outbox|{key}")))
            .item("notification", AttributeValue::S(body))
            .item("expires_at", AttributeValue::N(expires.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        let put = match put {
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                return false; // kept already
            }
            other => other,
        };
        // The index of what is stashed: one item, a string set changed atomically.
        let res = match put {
            Ok(_) => ddb
                .update_item()
                .table_name(table)
                .key("pk", AttributeValue::S(OUTBOX_INDEX.into()))
                .update_expression("ADD #keys :k")
                .expression_attribute_names("#keys", "keys")
                .expression_attribute_values(":k", AttributeValue::Ss(vec![key.to_owned()]))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()),
            Err(e) => Err(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()),
        };
        if let Err(e) = res {
            // The completion goes ahead regardless: a notification problem never holds a drain.
            tracing::warn!(error = %e, "could not stash a notification");
            return keep_here(n);
        }
        true
    }

    async fn stashed(&self, key: &str) -> Option<Notification> {
        if let Some(n) = self
            .stash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return Some(n.clone());
        }
        let (ddb, table) = self.dedupe.as_ref()?;
        let out = ddb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("outbox|{key}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not read the stash"))
            .ok()?;
        let body = out.item()?.get("notification")?.as_s().ok()?;
        serde_json::from_str(body).ok()
    }

    async fn unstash(&self, key: &str) {
        self.stash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        let Some((ddb, table)) = &self.dedupe else {
            return;
        };
        let deleted = ddb
            .delete_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("outbox|{key}")))
            .send()
            .await;
        let unindexed = ddb
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S(OUTBOX_INDEX.into()))
            .update_expression("DELETE #keys :k")
            .expression_attribute_names("#keys", "keys")
            .expression_attribute_values(":k", AttributeValue::Ss(vec![key.to_owned()]))
            .send()
            .await;
        if deleted.is_err() || unindexed.is_err() {
            tracing::warn!(
                "could not clear the stash; the message may be sent again (deduplicated)"
            );
        }
    }

    async fn stashed_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .stash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        if let Some((ddb, table)) = &self.dedupe {
            match ddb
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(OUTBOX_INDEX.into()))
                .consistent_read(true)
                .send()
                .await
            {
                Ok(out) => {
                    if let Some(AttributeValue::Ss(ks)) = out.item().and_then(|i| i.get("keys")) {
                        keys.extend(ks.iter().cloned());
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not read the stash index")
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

/// The dedupe table's item listing the stashed notifications.
const OUTBOX_INDEX: &str = "outbox-index";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The dedupe record's key: the notification's key and the destination's id, hashed when long
/// (DynamoDB keys are at most 2 KB).
fn dedupe_key(key: &str, destination: &str) -> String {
    let full = format!("{key}|{destination}");
    if full.len() <= 1024 {
        return full;
    }
    // SHA-256: the same key in every release (DefaultHasher may change between Rust releases,
    // and a changed key would send every message again).
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(full.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}…{hex}", slack::cut(&full, 512))
}

/// The outcome of claiming a (message, destination) before sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Ours to send.
    Won,
    /// Delivered already, or being delivered by another invocation right now.
    Taken,
    /// No table, or it could not be reached: send (at-least-once).
    Unknown,
}

#[derive(Debug)]
enum SlackError {
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    Transport(String),
    OutOfTime,
}

impl SlackError {
    fn retryable(&self) -> bool {
        match self {
            SlackError::Status { status, .. } => *status == 429 || *status >= 500,
            SlackError::Transport(_) => true,
            SlackError::OutOfTime => false,
        }
    }
}

impl fmt::Display for SlackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlackError::Status { status, body, .. } => write!(f, "HTTP {status} {body}"),
            SlackError::Transport(e) => write!(f, "{e}"),
            SlackError::OutOfTime => f.write_str("no time left in the invocation"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = Deadline::from_epoch_ms(now_ms + 10_000);
        assert!(
            d.remaining() > Duration::from_secs(9) && d.remaining() <= Duration::from_millis(9_500)
        );
        assert!(Deadline::from_epoch_ms(0).remaining() > Duration::from_secs(29));
        assert!(Deadline::from_epoch_ms(now_ms - 5).remaining() > Duration::from_secs(29));
    }

    #[test]
    fn dedupe_keys_are_bounded() {
        assert_eq!(dedupe_key("k", "sns:t"), "k|sns:t");
        let long = dedupe_key(&"x".repeat(5000), "sns:t");
        assert!(long.len() < 1100);
        assert_ne!(long, dedupe_key(&"x".repeat(5001), "sns:t"));
        // Stable across builds and Rust releases: a fixed digest.
        assert!(
            long.ends_with("…972cf9d7692afdf8a5ab429e9e50e03e"),
            "{long}"
        );
    }

    #[test]
    fn delivery_error_names_destinations() {
        let e = DeliveryError {
            kind: "alarm",
            failed: vec![(
                "slack:arn:secret".into(),
                "HTTP 500 server_error after 5 attempts".into(),
            )],
            delivered: vec!["sns:arn:topic".into()],
        };
        assert_eq!(
            e.to_string(),
            "alarm notification not delivered to slack:arn:secret (HTTP 500 server_error after 5 attempts); delivered to sns:arn:topic"
        );
    }
}
