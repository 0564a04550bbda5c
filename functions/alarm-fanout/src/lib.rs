//! `alarm-fanout`: routes CloudWatch alarms by rules to SNS topics and Slack.
//!
//! `main.rs` → [`build`] → [`handler::Handler`] → [`decide`] (pure) → [`render`] (pure) →
//! `fleetguard::notify`.

pub mod config;
pub mod decide;
pub mod handler;
pub mod render;

pub use handler::Handler;

use fleetguard::config::{CommonConfig, ConfigError};
use fleetguard::notify::Notifier;

/// The function as Lambda runs it.
pub type Lambda = Handler<Notifier>;

/// The function as Lambda runs it, from configuration (`lookup` stands in for the environment).
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
    sdk: &fleetguard::aws::SdkConfig,
) -> Result<Lambda, ConfigError> {
    Ok(Handler {
        common: CommonConfig::from_lookup(&lookup)?,
        alarms: config::AlarmConfig::from_lookup(&lookup)?,
        notifier: Notifier::from_lookup(&lookup, sdk).await?,
    })
}

/// `alarm-fanout` calls nothing in the account an alarm is about: a member's alarms need no
/// role, only their account on the message and in the keys.
impl fleetguard::hub::InAccount for Lambda {
    const ASSUMES_ROLE: bool = false;

    fn in_account(&self, _sdk: &fleetguard::aws::SdkConfig, account: &str) -> Self {
        Handler {
            common: self.common.clone(),
            alarms: self.alarms,
            notifier: self.notifier.in_account(account),
        }
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}
