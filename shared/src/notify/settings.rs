//! The notifier's settings from the environment, checked at init; and the ledger it runs over.

use super::deliver::Notifier;
use super::destinations::{Live, SlackApi};
use super::ledger::{Item, Ledger, LedgerError, MemoryLedger, Put, Written};
use super::ledger_dynamodb::DynamoLedger;
use super::route::{self, Destination, Rules};
use super::webhook::WebhookUrl;
use super::{pagerduty, slack};
use crate::config::{ConfigError, parse_checked, parse_secret_id};

/// The ledger of a Lambda function: the `DEDUPE_TABLE` table, or this environment's memory.
/// A hub's ledger for a member account keeps that account's records under its own prefix
/// ([`AnyLedger::in_account`]): its marks, facts and incidents never mix with another's.
#[derive(Debug, Clone)]
pub struct AnyLedger {
    store: Store,
    /// `<account>/`, before every key, for a member account.
    scope: Option<std::sync::Arc<str>>,
}

#[derive(Debug, Clone)]
enum Store {
    Table(DynamoLedger),
    Memory(MemoryLedger),
}

impl AnyLedger {
    pub fn table(l: DynamoLedger) -> Self {
        Self {
            store: Store::Table(l),
            scope: None,
        }
    }

    pub fn memory(l: MemoryLedger) -> Self {
        Self {
            store: Store::Memory(l),
            scope: None,
        }
    }

    /// The same store, every key under `account`'s prefix.
    pub fn in_account(&self, account: &str) -> Self {
        Self {
            store: self.store.clone(),
            scope: Some(format!("{account}/").into()),
        }
    }

    fn key<'a>(&self, key: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.scope {
            Some(p) => format!("{p}{key}").into(),
            None => key.into(),
        }
    }
}

impl Ledger for AnyLedger {
    fn now(&self) -> i64 {
        match &self.store {
            Store::Table(l) => l.now(),
            Store::Memory(l) => l.now(),
        }
    }

    fn now_ms(&self) -> i64 {
        match &self.store {
            Store::Table(l) => l.now_ms(),
            Store::Memory(l) => l.now_ms(),
        }
    }

    fn shared(&self) -> bool {
        matches!(self.store, Store::Table(_))
    }

    async fn get(&self, key: &str) -> Result<Option<Item>, LedgerError> {
        let key = self.key(key);
        match &self.store {
            Store::Table(l) => l.get(&key).await,
            Store::Memory(l) => l.get(&key).await,
        }
    }

    async fn put_or_get(
        &self,
        key: &str,
        item: Item,
        cond: super::ledger::Cond,
    ) -> Result<Put, LedgerError> {
        let key = self.key(key);
        match &self.store {
            Store::Table(l) => l.put_or_get(&key, item, cond).await,
            Store::Memory(l) => l.put_or_get(&key, item, cond).await,
        }
    }

    async fn delete(&self, key: &str, cond: super::ledger::Cond) -> Written {
        let key = self.key(key);
        match &self.store {
            Store::Table(l) => l.delete(&key, cond).await,
            Store::Memory(l) => l.delete(&key, cond).await,
        }
    }

    async fn update(
        &self,
        key: &str,
        update: super::ledger::Update,
        cond: super::ledger::Cond,
    ) -> Result<Option<Item>, LedgerError> {
        let key = self.key(key);
        match &self.store {
            Store::Table(l) => l.update(&key, update, cond).await,
            Store::Memory(l) => l.update(&key, update, cond).await,
        }
    }

    async fn set_member(
        &self,
        key: &str,
        attr: &str,
        value: &str,
        present: bool,
    ) -> Result<(), LedgerError> {
        let key = self.key(key);
        match &self.store {
            Store::Table(l) => l.set_member(&key, attr, value, present).await,
            Store::Memory(l) => l.set_member(&key, attr, value, present).await,
        }
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
    /// not here: a secret that cannot be read fails only its own destination, never the init
    /// (draining must not depend on notifying).
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
        let mut live = Live::default();
        if let Some(topic) = get("SNS_TOPIC_ARN") {
            if !topic.starts_with("arn:") || !topic.contains(":sns:") {
                return Err(cfg_err(
                    "SNS_TOPIC_ARN",
                    format!("not an SNS topic ARN: {topic:?}"),
                ));
            }
            defaults.push(Destination::Sns { topic_arn: topic });
        }
        let mut any_secret = rules.secrets().next().is_some();
        if let Some(secret) =
            parse_secret_id("SLACK_WEBHOOK_SECRET_ARN", get("SLACK_WEBHOOK_SECRET_ARN"))?
        {
            defaults.push(Destination::SlackSecret { secret_id: secret });
            any_secret = true;
        } else if let Some(url) = lookup("SLACK_WEBHOOK_URL").filter(|u| !u.trim().is_empty()) {
            let hook = WebhookUrl::parse(&url, "SLACK_WEBHOOK_URL")
                .map_err(|e| cfg_err("SLACK_WEBHOOK_URL", e))?;
            defaults.push(Destination::SlackUrl);
            live.webhook_url = Some(hook);
        }
        // Checked whether or not a bot token uses it: a bad value fails init either way.
        let raw = get("SLACK_API_URL").unwrap_or_else(|| slack::DEFAULT_API_URL.into());
        let raw = if raw.ends_with('/') {
            raw
        } else {
            format!("{raw}/")
        };
        let slack_api_base = endpoint(&raw, "SLACK_API_URL")?;
        if let Some(token_secret) = parse_secret_id(
            "SLACK_BOT_TOKEN_SECRET_ARN",
            get("SLACK_BOT_TOKEN_SECRET_ARN"),
        )? {
            any_secret = true;
            live.slack_api = Some(SlackApi {
                token_secret,
                base: slack_api_base,
            });
        }
        if let Some(channel) = get("SLACK_CHANNEL") {
            if live.slack_api.is_none() {
                return Err(cfg_err(
                    "SLACK_CHANNEL",
                    "needs SLACK_BOT_TOKEN_SECRET_ARN (the Web API posts as the bot)",
                ));
            }
            route::check_channel(&channel).map_err(|e| cfg_err("SLACK_CHANNEL", e))?;
            defaults.push(Destination::SlackChannel { channel });
        }
        if live.slack_api.is_none()
            && let Some(c) = rules.slack_channels().next()
        {
            return Err(cfg_err(
                "NOTIFY_ROUTES",
                format!("slack channel {c:?} needs SLACK_BOT_TOKEN_SECRET_ARN"),
            ));
        }
        live.pagerduty_url = Some(endpoint(
            &get("PAGERDUTY_EVENTS_URL").unwrap_or_else(|| pagerduty::DEFAULT_EVENTS_URL.into()),
            "PAGERDUTY_EVENTS_URL",
        )?);
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
        live.secrets = any_secret.then(|| aws_sdk_secretsmanager::Client::new(sdk));
        live.sns = any_sns.then(|| aws_sdk_sns::Client::new(sdk));
        // DynamoDB's rule: 3 to 255 of letters, digits, `_`, `-`, `.`.
        let table = parse_checked(
            "DEDUPE_TABLE",
            get("DEDUPE_TABLE"),
            |t| {
                (3..=255).contains(&t.len())
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            },
            "a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)",
        )?;
        let ledger = match table {
            Some(t) => AnyLedger::table(DynamoLedger::new(aws_sdk_dynamodb::Client::new(sdk), t)),
            None => AnyLedger::memory(MemoryLedger::local()),
        };
        let mut n = Notifier::with(rules, defaults, ledger, live);
        n.max_attempts = max_attempts;
        n.accounts = super::account_view::AccountView {
            names: std::sync::Arc::new(crate::accounts::AccountNames::from_lookup(&lookup)?),
            shortcut: super::account_view::ConsoleShortcut::from_lookup(&lookup)?
                .map(std::sync::Arc::new),
            member: None,
        };
        Ok(n)
    }

    /// How messages show `account`: `name (id)` (`ACCOUNT_NAMES`), or the id.
    pub fn account_label(&self, account: &str) -> String {
        self.accounts.names.describe(account)
    }

    /// This notifier for a member account of a hub: the same routes and destinations; its
    /// keys, and everything it keeps in the ledger, under the account.
    pub fn in_account(&self, account: &str) -> Self {
        let mut n = self.clone();
        n.book = super::book::Book::new(self.book.ledger.in_account(account));
        n.accounts.member = Some(account.into());
        n
    }
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
            (
                vec![("NOTIFY_ROUTES", r#"[{"insufficient_data": "page"}]"#)],
                "NOTIFY_ROUTES",
                "expected one of `update`, `open`, `ignore`",
            ),
        ] {
            let e = notifier(&env).await.unwrap_err();
            assert_eq!(e.variable, variable, "{env:?}");
            assert!(e.message.contains(needle), "{env:?}: {}", e.message);
        }
    }

    #[tokio::test]
    async fn a_members_ledger_keeps_its_records_apart_in_the_same_store() {
        use super::super::book::Book;
        let own = AnyLedger::memory(MemoryLedger::local());
        let (a, b) = (
            own.in_account("111111111111"),
            own.in_account("222222222222"),
        );
        let ttl = std::time::Duration::from_secs(60);
        Book::new(a.clone())
            .remember("open|i-1", ttl)
            .await
            .unwrap();
        assert!(Book::new(a.clone()).remembered("open|i-1").await.unwrap());
        assert!(!Book::new(b).remembered("open|i-1").await.unwrap());
        assert!(!Book::new(own.clone()).remembered("open|i-1").await.unwrap());
        // One store: the member's record is there, every key under its account.
        assert!(
            own.get("111111111111/fact|open|i-1")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn without_a_table_the_ledger_is_this_environments_memory() {
        let n = notifier(&[]).await.unwrap();
        assert!(!n.ledger().shared());
        let n = notifier(&[("DEDUPE_TABLE", "fleet-dedupe")]).await.unwrap();
        assert!(n.ledger().shared());
    }
}
