//! The destination port's adapters, one file per service, each with the fake that answers as
//! that service documents (`fake.rs` composes them, with faults):
//!
//! - `sns.rs`: SNS `Publish` through the SDK;
//! - `webhooks.rs`: Slack incoming webhooks and Teams Workflows webhooks (a POST to a secret URL);
//! - `slack.rs`: Slack's Web API (`chat.postMessage`, `chat.update`) with the bot token;
//! - `pagerduty.rs`: PagerDuty Events API v2.
//!
//! [`Live`] holds what they share: the secrets read on first use (a destination that failed reads
//! its secret again next time), one HTTPS client, the SDK clients.

mod pagerduty;
mod slack;
mod sns;
mod webhooks;

#[cfg(any(test, feature = "testing"))]
pub mod fake;

use super::services::{Call, Failure, Method, Reply, Services};
use super::webhook::WebhookUrl;
use super::{Deadline, Destination, http};
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

    /// The secret a call to `dest` reads.
    fn secret_of<'a>(&'a self, dest: &'a Destination) -> Option<&'a str> {
        match dest {
            Destination::SlackSecret { secret_id }
            | Destination::PagerDuty { secret_id }
            | Destination::Teams { secret_id } => Some(secret_id.as_str()),
            Destination::SlackChannel { .. } => {
                self.slack_api.as_ref().map(|a| a.token_secret.as_str())
            }
            Destination::Sns { .. } | Destination::SlackUrl => None,
        }
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

    async fn prepare(&self, dest: &Destination) {
        let _ = self.http();
        let secret = self.secret_of(dest);
        if let Some(s) = secret {
            let _ = self.secret(s).await;
        }
    }

    fn forget(&self, dest: &Destination) {
        let secret = self.secret_of(dest);
        if let Some(s) = secret {
            self.values().remove(s);
        }
    }
}
