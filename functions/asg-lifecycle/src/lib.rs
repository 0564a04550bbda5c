//! `asg-lifecycle`: drains before termination and completes the lifecycle action only when the
//! instance is really empty; holds launches until the instance joined its cluster.
//!
//! `main.rs` → [`build`] → [`handler::Handler`] (lifecycle actions, ECS wake-ups) and
//! [`sweep`] (the minute schedule) → [`decide`] (pure) → [`drain`] (the steps, through the ports)
//! → [`render`] (pure) → `fleetguard::notify`.

pub mod config;
mod container_instance;
pub mod decide;
pub mod drain;
pub mod group_events;
pub mod handler;
mod memory;
pub mod render;
pub mod sweep;
mod sweep_complete;
mod sweep_read;
pub mod undo;

pub use drain::Lifecycle;
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
    build_with(
        lookup,
        sdk,
        AutoScaling::new(aws_sdk_autoscaling::Client::new(sdk)),
    )
    .await
}

/// As [`build`], with the Auto Scaling adapter given (tests point it at the lifecycle fake).
pub async fn build_with(
    lookup: impl Fn(&str) -> Option<String>,
    sdk: &fleetguard::aws::SdkConfig,
    autoscaling: AutoScaling,
) -> Result<Lambda, ConfigError> {
    let common = CommonConfig::from_lookup(&lookup)?;
    let notifier = Notifier::from_lookup(&lookup, sdk).await?;
    Ok(Handler {
        lifecycle: Lifecycle {
            fleet: fleetguard::adapters::live_fleet(sdk, &notifier, autoscaling),
            config: config::LifecycleConfig::from_lookup(&lookup)?,
            dry_run: common.dry_run,
            clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
            starts: Default::default(),
            notifier,
        },
        common,
    })
}

/// In a member account: the member's fleet, and this environment's memory of it (the drain
/// starts it saw) its own.
impl fleetguard::hub::InAccount for Lambda {
    fn in_account(&self, sdk: &fleetguard::aws::SdkConfig, account: &str) -> Self {
        let l = &self.lifecycle;
        let notifier = l.notifier.in_account(account);
        Handler {
            lifecycle: Lifecycle {
                fleet: fleetguard::adapters::live_fleet_on(sdk, &notifier),
                config: {
                    let mut c = l.config.clone();
                    c.scope = c.scope.in_account(account);
                    c
                },
                dry_run: l.dry_run,
                clock: l.clock.clone(),
                starts: Default::default(),
                notifier,
            },
            common: self.common.clone(),
        }
    }

    fn notifier(&self) -> &Notifier {
        &self.lifecycle.notifier
    }
}
