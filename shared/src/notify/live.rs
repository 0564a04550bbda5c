//! The destination port's adapter for the real services: SNS through the SDK, the web services
//! over HTTPS with one shared client. Secrets (webhook URLs, the bot token, routing keys) are read
//! on first use and kept; a destination that failed reads its secret again next time.

use super::services::{Call, Failure, Method, Reply, Services};
use super::webhook::WebhookUrl;
use super::{Deadline, Destination, http, pagerduty, slack};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A secret's text; never shown.
#[derive(Clone)]
struct SecretText(String);

/// Slack's Web API: the bot token's secret and the API's base URL.
#[derive(Clone, Debug)]
pub struct SlackApi {
    pub token_secret: String,
    pub base: reqwest::Url,
}

#[derive(Clone, Default)]
pub struct Live {
    pub(super) secrets: Option<aws_sdk_secretsmanager::Client>,
    pub(super) sns: Option<aws_sdk_sns::Client>,
    /// `SLACK_WEBHOOK_URL` (local use), known at init.
    pub(super) webhook_url: Option<WebhookUrl>,
    pub(super) slack_api: Option<SlackApi>,
    pub(super) pagerduty_url: Option<reqwest::Url>,
    /// Secret values read since init, by secret id.
    values: Arc<Mutex<BTreeMap<String, SecretText>>>,
    /// Built on the first web post, with the process's shared root certificates.
    http: Arc<OnceLock<reqwest::Client>>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("webhook_url", &self.webhook_url)
            .field(
                "slack_bot_token_secret",
                &self.slack_api.as_ref().map(|a| &a.token_secret),
            )
            .finish()
    }
}

impl Live {
    fn values(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SecretText>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A secret's text: known, or read now (and kept). One that cannot be read is refused,
    /// named by its id, and read again on the next try.
    async fn secret(&self, secret_id: &str) -> Result<SecretText, Failure> {
        if let Some(v) = self.values().get(secret_id) {
            return Ok(v.clone());
        }
        let sm = self
            .secrets
            .as_ref()
            .ok_or_else(|| Failure::refused("no Secrets Manager client"))?;
        let value = sm
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                Failure::refused(format!(
                    "cannot read secret {secret_id}: {}",
                    crate::text::excerpt(
                        &aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                        300
                    )
                ))
            })?;
        let text = value
            .secret_string()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                Failure::refused(format!(
                    "secret {secret_id} has no string value (is it filled in?)"
                ))
            })?;
        let v = SecretText(text.to_owned());
        self.values().insert(secret_id.to_owned(), v.clone());
        Ok(v)
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

    async fn post(
        &self,
        url: &reqwest::Url,
        authorization: Option<&str>,
        body: String,
        deadline: Deadline,
    ) -> Result<http::Answer, Failure> {
        let req = http::Post {
            url,
            authorization,
            content_type: if authorization.is_some() {
                "application/json; charset=utf-8"
            } else {
                "application/json"
            },
            body,
        };
        http::post(self.http(), req, deadline).await
    }

    async fn webhook(
        &self,
        hook: &WebhookUrl,
        c: &Call,
        deadline: Deadline,
    ) -> Result<Reply, Failure> {
        self.post(hook.url(), None, c.body.to_string(), deadline)
            .await
            .map(|_| Reply::default())
    }

    async fn publish(&self, topic_arn: &str, c: &Call) -> Result<Reply, Failure> {
        use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
        use aws_sdk_sns::types::MessageAttributeValue;
        let client = self
            .sns
            .as_ref()
            .ok_or_else(|| Failure::refused("no SNS client"))?;
        let text = |k: &str| c.body[k].as_str().unwrap_or_default().to_owned();
        let mut req = client
            .publish()
            .topic_arn(topic_arn)
            .subject(text("subject"))
            .message(text("message"));
        for (k, v) in c.body["attributes"].as_object().into_iter().flatten() {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v.as_str().unwrap_or_default())
                .build()
                .map_err(|e| Failure::refused(e.to_string()))?;
            req = req.message_attributes(k, attr);
        }
        // The SDK's standard retry mode already retried throttling and 5xx with backoff.
        match req.send().await {
            Ok(_) => Ok(Reply::default()),
            Err(e) => {
                let shown = DisplayErrorContext(&e).to_string();
                Err(match &e {
                    SdkError::ServiceError(s) if s.err().code() == Some("Throttling") => {
                        Failure::Throttled {
                            retry_after: None,
                            detail: shown,
                        }
                    }
                    SdkError::ServiceError(s) if s.raw().status().is_server_error() => {
                        Failure::Transient(shown)
                    }
                    SdkError::ServiceError(_) | SdkError::ConstructionFailure(_) => {
                        Failure::refused(shown)
                    }
                    SdkError::DispatchFailure(d) if d.is_io() && !d.is_timeout() => {
                        Failure::Transient(shown)
                    }
                    _ => Failure::Unknown(shown),
                })
            }
        }
    }

    async fn slack_api(&self, c: &Call, deadline: Deadline) -> Result<Reply, Failure> {
        let api = self
            .slack_api
            .as_ref()
            .ok_or_else(|| Failure::refused("no SLACK_BOT_TOKEN_SECRET_ARN"))?;
        let token = slack::bot_token_from_secret(
            &self.secret(&api.token_secret).await?.0,
            &api.token_secret,
        )
        .map_err(Failure::refused)?;
        let url = api
            .base
            .join(c.method.as_str())
            .map_err(|e| Failure::refused(e.to_string()))?;
        let answer = self
            .post(
                &url,
                Some(&format!("Bearer {token}")),
                c.body.to_string(),
                deadline,
            )
            .await?;
        slack::check_ok(&answer.body).map(Reply)
    }

    async fn enqueue(
        &self,
        secret_id: &str,
        c: &Call,
        deadline: Deadline,
    ) -> Result<Reply, Failure> {
        let key = pagerduty::routing_key_from_secret(&self.secret(secret_id).await?.0, secret_id)
            .map_err(Failure::refused)?;
        let url = self
            .pagerduty_url
            .as_ref()
            .ok_or_else(|| Failure::refused("no PagerDuty URL"))?;
        let mut body = c.body.clone();
        body["routing_key"] = serde_json::Value::String(key);
        let a = self.post(url, None, body.to_string(), deadline).await?;
        // 202 {"status": "success"}; anything else in 2xx is not what PagerDuty promised.
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
        match v.get("status").and_then(|s| s.as_str()) {
            Some("success") | None if a.status == 202 || a.status == 200 => Ok(Reply(v)),
            other => Err(Failure::refused(format!(
                "PagerDuty answered {} {}",
                a.status,
                other.unwrap_or("")
            ))),
        }
    }
}

impl Services for Live {
    async fn call(
        &self,
        dest: &Destination,
        c: &Call,
        deadline: Deadline,
    ) -> Result<Reply, Failure> {
        match (dest, c.method) {
            (Destination::Sns { topic_arn }, Method::Publish) => self.publish(topic_arn, c).await,
            (Destination::SlackUrl, Method::Webhook) => {
                let hook = self
                    .webhook_url
                    .clone()
                    .ok_or_else(|| Failure::refused("no webhook configured"))?;
                self.webhook(&hook, c, deadline).await
            }
            (
                Destination::SlackSecret { secret_id } | Destination::Teams { secret_id },
                Method::Webhook,
            ) => {
                let hook = WebhookUrl::from_secret(&self.secret(secret_id).await?.0, secret_id)
                    .map_err(Failure::refused)?;
                self.webhook(&hook, c, deadline).await
            }
            (Destination::SlackChannel { .. }, Method::ChatPostMessage | Method::ChatUpdate) => {
                self.slack_api(c, deadline).await
            }
            (Destination::PagerDuty { secret_id }, Method::Enqueue) => {
                self.enqueue(secret_id, c, deadline).await
            }
            (dest, method) => Err(Failure::refused(format!(
                "{} does not take {}",
                dest.id(),
                method.as_str()
            ))),
        }
    }

    fn forget(&self, dest: &Destination) {
        let secret = match dest {
            Destination::SlackSecret { secret_id }
            | Destination::PagerDuty { secret_id }
            | Destination::Teams { secret_id } => Some(secret_id.as_str()),
            Destination::SlackChannel { .. } => {
                self.slack_api.as_ref().map(|a| a.token_secret.as_str())
            }
            Destination::Sns { .. } | Destination::SlackUrl => None,
        };
        if let Some(s) = secret {
            self.values().remove(s);
        }
    }
}
