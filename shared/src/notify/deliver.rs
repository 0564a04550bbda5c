//! Delivery: route, dedupe, send to each destination independently, report.
//!
//! Each destination is tried on its own, all at once; one failing never stops the others. If any
//! destination still failed after its retries, [`Notifier::send`] returns a [`DeliveryError`]
//! naming it, so the invocation fails, Lambda retries it and the on-failure destination keeps
//! it. With `DEDUPE_TABLE`, a destination that already has the message (same dedupe key) is
//! skipped, so that retry reaches only the destinations that missed it.

use super::incident::{self, IncidentRecord, PagerDutyAction, SlackStep};
use super::route::{self, Destination, Route, Rules};
use super::webhook::WebhookUrl;
use super::{Notification, Phase, http, pagerduty, slack, sns, teams};
use crate::config::ConfigError;
use aws_sdk_dynamodb::types::AttributeValue;
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
    /// `SLACK_WEBHOOK_URL` (local use), known at init.
    webhook_url: Option<WebhookUrl>,
    /// Secret values read since init (webhook URLs, routing keys, the bot token), by secret id.
    /// Read on first use: a secret that cannot be read fails only its own destination, never the
    /// init (draining must not depend on notifying).
    secret_values: Arc<Mutex<BTreeMap<String, SecretText>>>,
    secrets: Option<aws_sdk_secretsmanager::Client>,
    sns: Option<aws_sdk_sns::Client>,
    /// Slack's Web API: the bot token's secret and the API's base URL.
    slack_api: Option<SlackApi>,
    pagerduty_url: reqwest::Url,
    /// Built on the first web post, with the process's shared root certificates.
    http: Arc<OnceLock<reqwest::Client>>,
    dedupe: Option<(aws_sdk_dynamodb::Client, String)>,
    /// Stashed notifications when there is no dedupe table: this execution environment only.
    stash: Arc<Mutex<BTreeMap<String, Notification>>>,
    /// Incident records when there is no dedupe table: this execution environment only.
    incidents: Arc<Mutex<BTreeMap<String, IncidentRecord>>>,
    max_attempts: usize,
}

#[derive(Clone)]
struct SlackApi {
    token_secret: String,
    base: reqwest::Url,
}

/// One Slack Web API method call with the bot token, `"ok": false` checked.
struct SlackCall<'a> {
    notifier: &'a Notifier,
    base: &'a reqwest::Url,
    bearer: String,
    /// The destination, for logs and errors.
    label: String,
    deadline: Deadline,
}

impl SlackCall<'_> {
    async fn call(&self, method: &str, body: serde_json::Value) -> Result<http::Answer, String> {
        let url = self.base.join(method).map_err(|e| e.to_string())?;
        self.notifier
            .post_web(
                &url,
                Some(&self.bearer),
                body.to_string(),
                &self.label,
                self.deadline,
                slack::check_ok,
            )
            .await
    }
}

/// A secret's text; never shown.
#[derive(Clone)]
struct SecretText(String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(redacted)")
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("defaults", &self.defaults)
            .field("webhook_url", &self.webhook_url)
            .field(
                "slack_bot_token_secret",
                &self.slack_api.as_ref().map(|a| &a.token_secret),
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

/// A base URL from the environment: https, or http to a loopback host (local sinks).
fn endpoint(raw: &str, variable: &'static str) -> Result<reqwest::Url, ConfigError> {
    WebhookUrl::parse(raw, variable)
        .map(|u| u.url().clone())
        .map_err(|e| cfg_err(variable, e))
}

impl Notifier {
    /// Read `SNS_TOPIC_ARN`, `SLACK_WEBHOOK_SECRET_ARN`, `SLACK_WEBHOOK_URL`,
    /// `SLACK_BOT_TOKEN_SECRET_ARN`, `SLACK_CHANNEL`, `SLACK_API_URL`, `PAGERDUTY_EVENTS_URL`,
    /// `NOTIFY_ROUTES`, `DEDUPE_TABLE` and `SLACK_MAX_ATTEMPTS`. Secrets are read on first use,
    /// not here.
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
        let mut webhook_url = None;
        let mut any_secret = rules.secrets().next().is_some();
        if let Some(secret) = get("SLACK_WEBHOOK_SECRET_ARN") {
            defaults.push(Destination::SlackSecret { secret_id: secret });
            any_secret = true;
        } else if let Some(url) = lookup("SLACK_WEBHOOK_URL").filter(|u| !u.trim().is_empty()) {
            let hook = WebhookUrl::parse(&url, "SLACK_WEBHOOK_URL")
                .map_err(|e| cfg_err("SLACK_WEBHOOK_URL", e))?;
            defaults.push(Destination::SlackUrl);
            webhook_url = Some(hook);
        }
        let slack_api = match get("SLACK_BOT_TOKEN_SECRET_ARN") {
            Some(token_secret) => {
                any_secret = true;
                let raw = get("SLACK_API_URL").unwrap_or_else(|| slack::DEFAULT_API_URL.into());
                let raw = if raw.ends_with('/') {
                    raw
                } else {
                    format!("{raw}/")
                };
                Some(SlackApi {
                    token_secret,
                    base: endpoint(&raw, "SLACK_API_URL")?,
                })
            }
            None => None,
        };
        if let Some(channel) = get("SLACK_CHANNEL") {
            if slack_api.is_none() {
                return Err(cfg_err(
                    "SLACK_CHANNEL",
                    "needs SLACK_BOT_TOKEN_SECRET_ARN (the Web API posts as the bot)",
                ));
            }
            route::check_channel(&channel).map_err(|e| cfg_err("SLACK_CHANNEL", e))?;
            defaults.push(Destination::SlackChannel { channel });
        }
        if slack_api.is_none()
            && let Some(c) = rules.slack_channels().next()
        {
            return Err(cfg_err(
                "NOTIFY_ROUTES",
                format!("slack channel {c:?} needs SLACK_BOT_TOKEN_SECRET_ARN"),
            ));
        }
        let pagerduty_url = endpoint(
            &get("PAGERDUTY_EVENTS_URL").unwrap_or_else(|| pagerduty::DEFAULT_EVENTS_URL.into()),
            "PAGERDUTY_EVENTS_URL",
        )?;
        let max_attempts = match get("SLACK_MAX_ATTEMPTS") {
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
            || rules.any_sns();
        Ok(Self {
            rules,
            defaults,
            webhook_url,
            secret_values: Arc::default(),
            secrets: any_secret.then(|| aws_sdk_secretsmanager::Client::new(sdk)),
            sns: any_sns.then(|| aws_sdk_sns::Client::new(sdk)),
            slack_api,
            pagerduty_url,
            http: Arc::default(),
            dedupe: get("DEDUPE_TABLE").map(|t| (aws_sdk_dynamodb::Client::new(sdk), t)),
            stash: Arc::default(),
            incidents: Arc::default(),
            max_attempts,
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
        // Every destination at once: each has the whole deadline, so one service's Retry-After
        // never leaves another out of time.
        let outcomes = futures_util::future::join_all(
            route
                .destinations
                .iter()
                .map(|dest| self.send_to(dest, &n, &route.mentions, deadline)),
        )
        .await;
        let mut failed = Vec::new();
        for outcome in outcomes {
            match outcome {
                Sent::Delivered(id) => report.delivered.push(id),
                Sent::Already(id) => report.already_delivered.push(id),
                Sent::Failed(id, why) => failed.push((id, why)),
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

    /// Claim, deliver and record `n` for one destination.
    async fn send_to(
        &self,
        dest: &Destination,
        n: &Notification,
        mentions: &[String],
        deadline: Deadline,
    ) -> Sent {
        let id = dest.id();
        let key = dedupe_key(&n.dedupe_key, &id);
        // Claim before sending: of two invocations with the same message at once, one sends.
        let claim = self.claim(&key, n.dedupe_ttl, deadline).await;
        if claim == Claim::Taken {
            tracing::info!(destination = %id, "already delivered (or being delivered): skipped");
            return Sent::Already(id);
        }
        match self.deliver(dest, n, mentions, deadline).await {
            Ok(done) => {
                tracing::info!(
                    destination = %id,
                    kind = n.kind.as_str(),
                    incident = %n.incident_key(),
                    phase = n.phase().as_str(),
                    done,
                    "notification delivered"
                );
                self.record_sent(&key, n.dedupe_ttl).await;
                Sent::Delivered(id)
            }
            Err(why) => {
                tracing::error!(destination = %id, error = %why, "notification delivery failed");
                // A rotated webhook, token or key: the retry reads the secret again.
                if let Some(secret) = self.secret_of(dest) {
                    self.secret_values().remove(secret);
                }
                if claim == Claim::Won {
                    // Let the retry claim it again.
                    self.release(&key).await;
                }
                Sent::Failed(id, why)
            }
        }
    }

    /// Deliver `n` to one destination; says what was done.
    async fn deliver(
        &self,
        dest: &Destination,
        n: &Notification,
        mentions: &[String],
        deadline: Deadline,
    ) -> Result<&'static str, String> {
        match dest {
            Destination::Sns { topic_arn } => self.publish(topic_arn, n).await.map(|_| "published"),
            Destination::SlackUrl => {
                let hook = self.webhook_url.clone().ok_or("no webhook configured")?;
                let body = slack::render_with(n, mentions).to_string();
                self.post_web(hook.url(), None, body, &dest.id(), deadline, |_| Ok(()))
                    .await
                    .map(|_| "posted")
            }
            Destination::SlackSecret { secret_id } => {
                let hook = WebhookUrl::from_secret(&self.secret(secret_id).await?.0, secret_id)?;
                let body = slack::render_with(n, mentions).to_string();
                self.post_web(hook.url(), None, body, &dest.id(), deadline, |_| Ok(()))
                    .await
                    .map(|_| "posted")
            }
            Destination::Teams { secret_id } => {
                let hook = WebhookUrl::from_secret(&self.secret(secret_id).await?.0, secret_id)?;
                let body = teams::render(n).to_string();
                self.post_web(hook.url(), None, body, &dest.id(), deadline, |_| Ok(()))
                    .await
                    .map(|_| "posted a card")
            }
            Destination::PagerDuty { secret_id } => {
                let pk = incident_pk(n.incident_key(), &dest.id());
                let work = self.page(&pk, dest, secret_id, n, deadline);
                self.under_lock(&pk, deadline, work).await
            }
            Destination::SlackChannel { channel } => {
                let pk = incident_pk(n.incident_key(), &dest.id());
                let work = self.slack_incident(&pk, dest, channel, n, mentions, deadline);
                self.under_lock(&pk, deadline, work).await
            }
        }
    }

    /// A secret's text: known, or read now (and kept). A secret that cannot be read is its
    /// destination's failure, named, and read again on the next try.
    async fn secret(&self, secret_id: &str) -> Result<SecretText, String> {
        if let Some(v) = self.secret_values().get(secret_id) {
            return Ok(v.clone());
        }
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
        let v = SecretText(text.to_owned());
        self.secret_values().insert(secret_id.to_owned(), v.clone());
        Ok(v)
    }

    /// The secret a destination reads, if any.
    fn secret_of<'a>(&'a self, dest: &'a Destination) -> Option<&'a str> {
        match dest {
            Destination::SlackSecret { secret_id }
            | Destination::PagerDuty { secret_id }
            | Destination::Teams { secret_id } => Some(secret_id),
            Destination::SlackChannel { .. } => {
                self.slack_api.as_ref().map(|a| a.token_secret.as_str())
            }
            Destination::Sns { .. } | Destination::SlackUrl => None,
        }
    }

    fn secret_values(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SecretText>> {
        self.secret_values.lock().unwrap_or_else(|e| e.into_inner())
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

    async fn post_web(
        &self,
        url: &reqwest::Url,
        authorization: Option<&str>,
        body: String,
        label: &str,
        deadline: Deadline,
        check: impl Fn(&http::Answer) -> Result<(), http::HttpError>,
    ) -> Result<http::Answer, String> {
        http::post(
            self.http(),
            http::Post {
                url,
                authorization,
                content_type: if authorization.is_some() {
                    "application/json; charset=utf-8"
                } else {
                    "application/json"
                },
                body,
                label,
                max_attempts: self.max_attempts,
            },
            deadline,
            check,
        )
        .await
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

    /// PagerDuty: trigger on open and update, resolve on resolution, one `dedup_key` per incident.
    async fn page(
        &self,
        pk: &str,
        dest: &Destination,
        secret_id: &str,
        n: &Notification,
        deadline: Deadline,
    ) -> Result<&'static str, String> {
        let record = self.incident_record(pk).await?;
        let event_time = n.source.event_time.as_deref();
        let Some(action) = incident::pagerduty_action(
            record.as_ref(),
            n.phase(),
            event_time,
            self.dedupe.is_some(),
        ) else {
            if record.is_none() && n.phase() == Phase::Resolved {
                // Remember the resolution, so its opening delivered late triggers nothing.
                self.save_incident(pk, &IncidentRecord::default().shown(n))
                    .await;
            }
            return Ok("nothing to do in PagerDuty (never triggered, or a late event)");
        };
        let key = pagerduty::routing_key_from_secret(&self.secret(secret_id).await?.0, secret_id)?;
        let body = pagerduty::render(n, action, &key).to_string();
        self.post_web(&self.pagerduty_url, None, body, &dest.id(), deadline, |a| {
            // 202 {"status": "success"}; anything else in 2xx is not what PagerDuty promised.
            let v: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
            match v.get("status").and_then(|s| s.as_str()) {
                Some("success") | None if a.status == 202 || a.status == 200 => Ok(()),
                other => Err(http::HttpError::Refused {
                    error: format!("PagerDuty answered {} {}", a.status, other.unwrap_or("")),
                    retryable: false,
                }),
            }
        })
        .await?;
        let mut next = record.unwrap_or_default();
        if action == PagerDutyAction::Trigger && !next.is_open() {
            next.opened_at = Some(event_epoch(n));
        }
        self.save_incident(pk, &next.shown(n)).await;
        Ok(match action {
            PagerDutyAction::Trigger => "triggered",
            PagerDutyAction::Resolve => "resolved",
        })
    }

    /// Slack's Web API: one message per incident in `channel`, posted when it opens, updated in
    /// place on every later phase, with a short reply in its thread.
    async fn slack_incident(
        &self,
        pk: &str,
        dest: &Destination,
        channel: &str,
        n: &Notification,
        mentions: &[String],
        deadline: Deadline,
    ) -> Result<&'static str, String> {
        let api = self
            .slack_api
            .as_ref()
            .ok_or("no SLACK_BOT_TOKEN_SECRET_ARN")?;
        let token = slack::bot_token_from_secret(
            &self.secret(&api.token_secret).await?.0,
            &api.token_secret,
        )?;
        let slack = SlackCall {
            notifier: self,
            base: &api.base,
            bearer: format!("Bearer {token}"),
            label: dest.id(),
            deadline,
        };
        let record = self.incident_record(pk).await?;
        let mut shown = n.clone();
        if n.phase() == Phase::Resolved
            && let Some(secs) = incident::open_for(record.as_ref(), event_epoch(n))
        {
            shown = shown.field("Open for", crate::time::human_duration(secs));
        }
        let event_time = n.source.event_time.as_deref();
        if let SlackStep::Update {
            channel: id,
            ts,
            refresh,
        } = incident::slack_step(record.as_ref(), n.phase(), event_time)
        {
            if refresh {
                match slack
                    .call("chat.update", slack::update_message(&shown, &id, &ts))
                    .await
                {
                    Ok(_) => {}
                    // Somebody deleted the message: the incident gets a new one.
                    Err(e)
                        if e.starts_with("message_not_found")
                            || e.starts_with("cant_update_message") =>
                    {
                        tracing::warn!(destination = %slack.label, error = %e, "incident message gone; posting a new one");
                        return self.slack_post(pk, &slack, channel, &shown, mentions).await;
                    }
                    Err(e) => return Err(format!("chat.update: {e}")),
                }
            }
            slack
                .call(
                    "chat.postMessage",
                    slack::thread_reply(n, &id, &ts, !refresh),
                )
                .await
                .map_err(|e| format!("chat.postMessage (thread reply): {e}"))?;
            if !refresh {
                return Ok("replied in the thread (late event)");
            }
            self.save_incident(pk, &record.unwrap_or_default().shown(n))
                .await;
            return Ok("updated its message and replied in the thread");
        }
        self.slack_post(pk, &slack, channel, &shown, mentions).await
    }

    /// The incident's new message (`shown`, with the mentions), and its record.
    async fn slack_post(
        &self,
        pk: &str,
        slack: &SlackCall<'_>,
        channel: &str,
        shown: &Notification,
        mentions: &[String],
    ) -> Result<&'static str, String> {
        let answer = slack
            .call(
                "chat.postMessage",
                slack::post_message(shown, channel, mentions),
            )
            .await
            .map_err(|e| format!("chat.postMessage: {e}"))?;
        let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
        let next = IncidentRecord {
            channel: v["channel"].as_str().map(str::to_owned),
            ts: v["ts"].as_str().map(str::to_owned),
            opened_at: Some(event_epoch(shown)),
            ..IncidentRecord::default()
        };
        self.save_incident(pk, &next.shown(shown)).await;
        Ok("posted the incident's message")
    }

    /// The incident's record for one destination: from the table (a read that fails is this
    /// destination's failure: guessing could post a second message), or this environment's memory.
    async fn incident_record(&self, pk: &str) -> Result<Option<IncidentRecord>, String> {
        let Some((ddb, table)) = &self.dedupe else {
            return Ok(self.incidents_mem().get(pk).cloned());
        };
        let out = ddb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot read the incident record: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let num = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        if num("expires_at").is_some_and(|e| e < now_secs() as i64) {
            return Ok(None);
        }
        Ok(Some(IncidentRecord {
            channel: s("channel"),
            ts: s("ts"),
            phase: s("phase").as_deref().and_then(Phase::parse),
            opened_at: num("opened_at"),
            event_time: s("event_time"),
        }))
    }

    fn incidents_mem(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, IncidentRecord>> {
        self.incidents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep the incident's record. A failure is logged, not raised: the message is out, and
    /// failing now would only send it again.
    async fn save_incident(&self, pk: &str, r: &IncidentRecord) {
        let Some((ddb, table)) = &self.dedupe else {
            self.incidents_mem().insert(pk.to_owned(), r.clone());
            return;
        };
        let mut req = ddb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item(
                "expires_at",
                AttributeValue::N((now_secs() + INCIDENT_TTL.as_secs()).to_string()),
            );
        for (k, v) in [
            ("channel", &r.channel),
            ("ts", &r.ts),
            ("event_time", &r.event_time),
        ] {
            if let Some(v) = v {
                req = req.item(k, AttributeValue::S(v.clone()));
            }
        }
        if let Some(p) = r.phase {
            req = req.item("phase", AttributeValue::S(p.as_str().into()));
        }
        if let Some(o) = r.opened_at {
            req = req.item("opened_at", AttributeValue::N(o.to_string()));
        }
        if let Err(e) = req.send().await {
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not keep the incident record; its next phase may post a new message");
        }
    }

    /// Do `work` (a future: nothing runs until it is awaited) holding the lock of the incident
    /// record `pk`; another invocation holding it fails this destination, and Lambda's retry does it.
    async fn under_lock(
        &self,
        pk: &str,
        deadline: Deadline,
        work: impl std::future::Future<Output = Result<&'static str, String>>,
    ) -> Result<&'static str, String> {
        let Some(lease) = self.lock_incident(pk, deadline).await? else {
            return Err(
                "another invocation is delivering a phase of this incident; retried".into(),
            );
        };
        let done = work.await;
        self.unlock_incident(pk, lease).await;
        done
    }

    /// Take the incident's lock for one destination: one phase at a time per incident, so two
    /// phases arriving at once (an ALARM and its OK) never post two messages or leave an alert
    /// triggered after its resolution. A lease until the holder's deadline: a crashed holder's
    /// lock runs out by itself. `Some(lease)` when taken, `None` when another invocation holds it.
    async fn lock_incident(&self, pk: &str, deadline: Deadline) -> Result<Option<u64>, String> {
        let Some((ddb, table)) = &self.dedupe else {
            return Ok(Some(0));
        };
        let now = now_secs();
        let lease = lease_until(now, deadline);
        let res = ddb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("lock|{pk}")))
            .item("lease_until", AttributeValue::N(lease.to_string()))
            .item("expires_at", AttributeValue::N(lease.to_string()))
            .condition_expression("attribute_not_exists(pk) OR lease_until < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(Some(lease)),
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(format!(
                "cannot lock the incident record: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            )),
        }
    }

    /// Give the incident's lock back (only our own lease).
    async fn unlock_incident(&self, pk: &str, lease: u64) {
        let Some((ddb, table)) = &self.dedupe else {
            return;
        };
        let res = ddb
            .delete_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("lock|{pk}")))
            .condition_expression("lease_until = :mine")
            .expression_attribute_values(":mine", AttributeValue::N(lease.to_string()))
            .send()
            .await;
        if let Err(e) = res
            && !conditional_failed(&e)
        {
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not release the incident lock; it runs out by itself");
        }
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

    /// Forget a fact `remember` left. A no-op without `DEDUPE_TABLE`; a failure is logged (the
    /// fact expires with its TTL).
    pub async fn forget(&self, fact: &str) {
        let Some((ddb, table)) = &self.dedupe else {
            return;
        };
        let res = ddb
            .delete_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("fact|{fact}")))
            .send()
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not forget a fact; it expires by itself");
        }
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
        let lease = lease_until(now, deadline);
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
            Err(e) if conditional_failed(&e) => Claim::Taken,
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
        if let Err(e) = res
            && !conditional_failed(&e)
        {
            // Delivered already: failing now would only make a retry send it again.
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not record delivery in the dedupe table");
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

    async fn forget(&self, fact: &str) {
        Notifier::forget(self, fact).await
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
            Err(e) if conditional_failed(&e) => {
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

/// Until when a claim or a lock taken now holds: the holder's deadline and a little more, so a
/// holder that crashed frees it soon after.
fn lease_until(now: u64, deadline: Deadline) -> u64 {
    now + deadline.remaining().as_secs().clamp(5, 900) + 5
}

/// Whether a DynamoDB call failed its condition (another holder, or a record already there).
fn conditional_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// How long an incident's record outlives its last phase: a phase after that starts anew.
const INCIDENT_TTL: Duration = Duration::from_secs(30 * 86_400);

/// The incident record's key for one destination.
fn incident_pk(incident_key: &str, destination: &str) -> String {
    format!("incident|{}", dedupe_key(incident_key, destination))
}

/// The notification's event time in seconds since the epoch (now when it has none).
fn event_epoch(n: &Notification) -> i64 {
    n.source
        .event_time
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(now_secs() as i64, |t| t.timestamp())
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
    let hex = super::digest(&full);
    format!("{}…{hex}", slack::cut(&full, 512))
}

/// What became of a notification at one destination.
enum Sent {
    Delivered(String),
    Already(String),
    Failed(String, String),
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn notifier(env: &[(&str, &str)]) -> Result<Notifier, ConfigError> {
        let sdk = aws_config::SdkConfig::builder().build();
        Notifier::from_lookup(
            |k| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            },
            &sdk,
        )
        .await
    }

    #[tokio::test]
    async fn web_api_settings_are_checked_at_init() {
        let token = (
            "SLACK_BOT_TOKEN_SECRET_ARN",
            "arn:aws:secretsmanager:r:1:secret:bot",
        );
        let n = notifier(&[token, ("SLACK_CHANNEL", "#ops")]).await.unwrap();
        assert_eq!(
            n.defaults(),
            [Destination::SlackChannel {
                channel: "#ops".into()
            }]
        );
        assert!(format!("{n:?}").contains("secret:bot"));
        for (env, variable, needle) in [
            (
                vec![("SLACK_CHANNEL", "#ops")],
                "SLACK_CHANNEL",
                "needs SLACK_BOT_TOKEN_SECRET_ARN",
            ),
            (
                vec![("NOTIFY_ROUTES", r##"[{"slack_channels": ["#pay"]}]"##)],
                "NOTIFY_ROUTES",
                "needs SLACK_BOT_TOKEN_SECRET_ARN",
            ),
            (
                vec![token, ("SLACK_CHANNEL", "two words")],
                "SLACK_CHANNEL",
                "not a Slack channel",
            ),
            (
                vec![token, ("SLACK_API_URL", "http://slack.example/api/")],
                "SLACK_API_URL",
                "loopback",
            ),
            (
                vec![("PAGERDUTY_EVENTS_URL", "ftp://events.pagerduty.com")],
                "PAGERDUTY_EVENTS_URL",
                "unsupported scheme",
            ),
        ] {
            let e = notifier(&env).await.unwrap_err();
            assert_eq!(e.variable, variable, "{env:?}");
            assert!(e.message.contains(needle), "{env:?}: {}", e.message);
        }
    }

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
