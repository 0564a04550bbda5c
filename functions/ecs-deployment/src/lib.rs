//! `ecs-deployment`: one rich message per failed deployment, rollback, impaired service and
//! Fargate Spot interruption.
//!
//! `main.rs` → [`build`] → [`handler::Handler`] → [`decide`] (pure) → [`evidence`] (ECS, through
//! the `Services` port) → [`render`] (pure) → `fleetguard::notify`.

pub mod config;
pub mod decide;
pub mod evidence;
pub mod handler;
pub mod render;

pub use handler::Handler;

use fleetguard::adapters::ecs::Ecs;
use fleetguard::config::{CommonConfig, ConfigError};
use fleetguard::notify::Notifier;

/// The function as Lambda runs it.
pub type Lambda = Handler<Ecs, Notifier>;

/// The function as Lambda runs it, from configuration (`lookup` stands in for the environment).
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
    sdk: &fleetguard::aws::SdkConfig,
) -> Result<Lambda, ConfigError> {
    Ok(Handler {
        common: CommonConfig::from_lookup(&lookup)?,
        config: config::DeploymentConfig::from_lookup(&lookup)?,
        ecs: Ecs::new(aws_sdk_ecs::Client::new(sdk)),
        notifier: Notifier::from_lookup(&lookup, sdk).await?,
    })
}

impl fleetguard::hub::InAccount for Lambda {
    fn in_account(&self, sdk: &fleetguard::aws::SdkConfig, account: &str) -> Self {
        Handler {
            common: self.common.clone(),
            config: self.config.clone(),
            ecs: Ecs::new(aws_sdk_ecs::Client::new(sdk)),
            notifier: self.notifier.in_account(account),
        }
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}
