//! `instance-maintenance`: AWS Health scheduled changes for EC2 instances (retirement, stop,
//! reboot), taken out of service `MAINTENANCE_LEAD_SECONDS` before their window through an
//! EventBridge Scheduler one-time schedule; and instances stopping or shutting down outside any
//! hook, taken out of service at once.
//!
//! `main.rs` → [`build`] → [`handler::Handler`] (the entry: routing, messages, errors) → one
//! file per phase: `health.rs` (a Health event), `due.rs` (a schedule's payload), `stopping.rs`
//! (an instance stopping), `take_out.rs` (drain, mark, replace) → [`decide`] (pure) →
//! [`render`] (pure) → `fleetguard::notify`.

pub mod config;
pub mod decide;
mod due;
pub mod handler;
mod health;
pub mod render;
mod stopping;
mod take_out;

pub use handler::Handler;

use fleetguard::adapters::scheduler::{ScheduleTarget, Scheduler};
use fleetguard::adapters::{autoscaling::AutoScaling, ecs::Ecs, elbv2::Elbv2};
use fleetguard::config::{CommonConfig, ConfigError};
use fleetguard::kept_marks::Marked;
use fleetguard::notify::Notifier;

/// The function as Lambda runs it.
/// Its drain marks are kept in the dedupe table as well as on the container instance.
pub type Lambda = Handler<Marked<Ecs, Notifier>, Elbv2, AutoScaling, Scheduler, Notifier>;

/// The function as Lambda runs it, from configuration (`lookup` stands in for the environment).
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
    sdk: &fleetguard::aws::SdkConfig,
) -> Result<Lambda, ConfigError> {
    let config = config::MaintenanceConfig::from_lookup(&lookup)?;
    let target = ScheduleTarget {
        group: config.schedule_group.clone(),
        function_arn: config.schedule_target_arn.clone().unwrap_or_default(),
        role_arn: config.scheduler_role_arn.clone().unwrap_or_default(),
        dead_letter_arn: config.failed_events_queue_arn.clone(),
    };
    let notifier = Notifier::from_lookup(&lookup, sdk).await?;
    Ok(Handler {
        common: CommonConfig::from_lookup(&lookup)?,
        config,
        fleet: fleetguard::adapters::live_fleet_on(sdk, &notifier),
        schedules: Scheduler::new(aws_sdk_scheduler::Client::new(sdk), target),
        notifier,
        clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
    })
}

/// In a member account, the fleet is the member's; the one-time schedules stay the hub's (a
/// timer, like the ledger, is bookkeeping): each carries the account of the event it came
/// from, so that when it fires, the hub acts in that account again.
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
            schedules: self.schedules.clone(),
            notifier,
            clock: self.clock.clone(),
        }
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}
