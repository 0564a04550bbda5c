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
