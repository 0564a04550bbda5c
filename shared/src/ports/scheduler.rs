//! EventBridge Scheduler: one-time schedules.

use super::*;

/// A one-time schedule (`at(…)`, UTC) that invokes the function with `input`, and is deleted
/// after it ran. Its name is derived from what it is for, so writing it twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeSchedule {
    pub name: String,
    /// When it runs, epoch seconds (whole seconds: `at()` has no finer grain).
    pub at: i64,
    /// The payload the function is invoked with (JSON).
    pub input: String,
    pub description: String,
}

impl OneTimeSchedule {
    /// `at(yyyy-mm-ddThh:mm:ss)`, read in UTC.
    pub fn expression(&self) -> String {
        let t = chrono::DateTime::from_timestamp(self.at, 0).unwrap_or_default();
        format!("at({})", t.format("%Y-%m-%dT%H:%M:%S"))
    }

    /// The time of an `at(…)` expression back.
    pub fn parse_expression(e: &str) -> Option<i64> {
        let inner = e.trim().strip_prefix("at(")?.strip_suffix(')')?;
        chrono::NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|t| t.and_utc().timestamp())
    }
}

/// What writing a schedule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleWrite {
    Created,
    /// It existed with another time or payload: moved.
    Updated,
    /// It existed as it is.
    Unchanged,
}

/// One-time schedules (EventBridge Scheduler), in the function's schedule group, invoking the
/// function through the scheduler's role.
pub trait Schedules: Clone + Send + Sync + 'static {
    /// `GetSchedule`; `None` when there is none (never created, ran and deleted, or deleted).
    fn schedule(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<OneTimeSchedule>, AwsError>> + Send;

    /// `CreateSchedule`; when one of that name exists, `UpdateSchedule` if its time or payload
    /// differ.
    fn put(
        &self,
        schedule: &OneTimeSchedule,
    ) -> impl Future<Output = Result<ScheduleWrite, AwsError>> + Send;

    /// `DeleteSchedule`; `false` when there was none.
    fn delete(&self, name: &str) -> impl Future<Output = Result<bool, AwsError>> + Send;
}
