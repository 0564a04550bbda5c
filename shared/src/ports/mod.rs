//! Ports: what the functions do to AWS, as small traits over plain domain types.
//!
//! Handlers are generic over these traits. The SDK adapters (`crate::adapters`, one Cargo feature
//! per AWS service) implement them for Lambda; `crate::testing` (feature `testing`) implements
//! them in memory so handler tests run in milliseconds and can inject AWS's failure modes.
//! Every method is one AWS operation (or a paginated listing of one), named in AWS's words.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use crate::ids::InstanceId;
use crate::notify::{Deadline, DeliveryError, DeliveryReport, Notification};

/// A failed AWS call: which operation, and the SDK's full error context (codes and messages,
/// never credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn other(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            message: message.into(),
        }
    }

    /// A service error with an AWS error code (fakes and adapters alike).
    pub fn service(operation: &'static str, code: &str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: Some(code.to_owned()),
            message: format!("{code}: {}", message.into()),
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)
    }
}

impl std::error::Error for AwsError {}

mod autoscaling;
mod ecs;
mod elbv2;
mod scheduler;

pub use autoscaling::*;
pub use ecs::*;
pub use elbv2::*;
pub use scheduler::*;

// ---------------------------------------------------------------------------------------------
// Time

/// The time, as the functions read it: the system clock in Lambda, a virtual one in the fleet
/// simulator (so timers, jitter and budgets can be driven deterministically).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

// ---------------------------------------------------------------------------------------------
// Notification delivery

/// The notification pipeline as the handlers see it (`crate::notify::Notifier` for Lambda).
pub trait Notify: Send + Sync + 'static {
    /// Route `n` and deliver it to every destination that does not have it yet.
    fn send(
        &self,
        n: Notification,
        deadline: Deadline,
    ) -> impl Future<Output = Result<DeliveryReport, DeliveryError>> + Send;

    /// Leave a fact for a later event (not a message). A no-op without a dedupe table.
    fn remember(&self, fact: &str, ttl: std::time::Duration) -> impl Future<Output = ()> + Send;

    /// Whether `remember` left this fact.
    fn remembered(&self, fact: &str) -> impl Future<Output = bool> + Send;

    /// Forget a fact `remember` left (it no longer holds).
    fn forget(&self, fact: &str) -> impl Future<Output = ()> + Send;

    /// The latest version [`Notify::keep_version`] recorded under `key`, with its label. `None`
    /// when nothing is recorded, or it cannot be read (then the caller acts: at least once).
    fn version(&self, key: &str) -> impl Future<Output = Option<(i64, String)>> + Send;

    /// Record `version` (labelled) under `key` unless a later version is recorded; true when
    /// recorded. A no-op (true) when it cannot be written.
    fn keep_version(
        &self,
        key: &str,
        version: i64,
        label: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = bool> + Send;

    /// Keep `n` under `key` before the action it announces (completing a lifecycle action),
    /// so a retry that finds the action done can still send it: in the dedupe table, or in
    /// this execution environment's memory without one. What is kept already stays: it is the
    /// message of the completion that happened. True when `n` was kept now.
    fn stash(&self, key: &str, n: &Notification) -> impl Future<Output = bool> + Send;

    /// The notification kept under `key`, if any.
    fn stashed(&self, key: &str) -> impl Future<Output = Option<Notification>> + Send;

    /// Forget `key`: its notification was delivered, or its action never happened.
    fn unstash(&self, key: &str) -> impl Future<Output = ()> + Send;

    /// Every key with a notification still stashed (for the sweep, whose retry cannot know
    /// which instances its failed run completed).
    fn stashed_keys(&self) -> impl Future<Output = Vec<String>> + Send;
}
