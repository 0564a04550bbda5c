//! `spot-interruption`: takes an instance out of service at once on a Spot two-minute warning
//! (and, by `REBALANCE_ACTION`, on a rebalance recommendation), then tells people.
//!
//! `main.rs` → [`build`] → [`handler::Handler`] → `fleetguard::out_of_service::find` →
//! [`decide`] (pure) → `fleetguard::out_of_service::take_out_of_service` → [`render`] (pure) →
//! `fleetguard::notify`.

pub mod config;
pub mod decide;
pub mod handler;
pub mod render;

pub use handler::Handler;

use fleetguard::adapters::{autoscaling::AutoScaling, ecs::Ecs, elbv2::Elbv2};
use fleetguard::config::{CommonConfig, ConfigError};
use fleetguard::kept_marks::Marked;
use fleetguard::notify::Notifier;

/// The function as Lambda runs it.
/// Its drain marks are kept in the dedupe table as well as on the container instance.
pub type Lambda = Handler<Marked<Ecs, Notifier>, Elbv2, AutoScaling, Notifier>;

/// The function as Lambda runs it, from configuration (`lookup` stands in for the environment).
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
    sdk: &fleetguard::aws::SdkConfig,
) -> Result<Lambda, ConfigError> {
    let notifier = Notifier::from_lookup(&lookup, sdk).await?;
    Ok(Handler {
        common: CommonConfig::from_lookup(&lookup)?,
        config: config::SpotConfig::from_lookup(&lookup)?,
        fleet: fleetguard::adapters::live_fleet_on(sdk, &notifier),
        notifier,
        clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
    })
}

impl fleetguard::hub::InAccount for Lambda {
    fn in_account(&self, sdk: &fleetguard::aws::SdkConfig, account: &str) -> Self {
        let notifier = self.notifier.in_account(account);
        Handler {
            common: self.common.clone(),
            config: {
                let mut c = self.config.clone();
                c.scope = c.scope.in_account(account);
                c
            },
            fleet: fleetguard::adapters::live_fleet_on(sdk, &notifier),
            notifier,
            clock: self.clock.clone(),
        }
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}
