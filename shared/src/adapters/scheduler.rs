//! EventBridge Scheduler adapter (feature `scheduler`): one-time schedules that invoke the
//! function, in its schedule group, through the scheduler's role, deleted after they ran.

use super::sdk_error;
use crate::ports::{AwsError, OneTimeSchedule, ScheduleWrite, Schedules};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, Target,
};

/// Where the schedules live and what they invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTarget {
    /// `SCHEDULE_GROUP` (`default` when unset).
    pub group: String,
    /// The function's ARN (`SCHEDULE_TARGET_ARN`).
    pub function_arn: String,
    /// The role the scheduler assumes to invoke it (`SCHEDULER_ROLE_ARN`).
    pub role_arn: String,
    /// Where an invocation that kept failing goes (`FAILED_EVENTS_QUEUE_ARN`).
    pub dead_letter_arn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    client: aws_sdk_scheduler::Client,
    target: ScheduleTarget,
}

impl Scheduler {
    pub fn new(client: aws_sdk_scheduler::Client, target: ScheduleTarget) -> Self {
        Self { client, target }
    }

    fn target(&self, input: &str) -> Result<Target, AwsError> {
        Target::builder()
            .arn(&self.target.function_arn)
            .role_arn(&self.target.role_arn)
            .input(input)
            // The scheduler retries an invocation that failed (throttled, or our error) for up
            // to a day; then the failed-events queue keeps the payload.
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(185)
                    .maximum_event_age_in_seconds(86_400)
                    .build(),
            )
            .set_dead_letter_config(
                self.target
                    .dead_letter_arn
                    .as_ref()
                    .map(|a| DeadLetterConfig::builder().arn(a).build()),
            )
            .build()
            .map_err(|e| AwsError::other("CreateSchedule", e.to_string()))
    }

    async fn create_or_update(&self, s: &OneTimeSchedule, update: bool) -> Result<(), AwsError> {
        let op = if update {
            "UpdateSchedule"
        } else {
            "CreateSchedule"
        };
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| AwsError::other(op, e.to_string()))?;
        let target = self
            .target(&s.input)
            .map_err(|e| AwsError { operation: op, ..e })?;
        // Create and Update take the same fields, through two builder types.
        macro_rules! schedule {
            ($request:expr) => {
                $request
                    .name(&s.name)
                    .group_name(&self.target.group)
                    .schedule_expression(s.expression())
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(window)
                    .target(target)
                    .description(&s.description)
                    .action_after_completion(ActionAfterCompletion::Delete)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(op, &e))
            };
        }
        if update {
            schedule!(self.client.update_schedule())
        } else {
            schedule!(self.client.create_schedule())
        }
    }
}

impl Schedules for Scheduler {
    async fn schedule(&self, name: &str) -> Result<Option<OneTimeSchedule>, AwsError> {
        match self
            .client
            .get_schedule()
            .name(name)
            .group_name(&self.target.group)
            .send()
            .await
        {
            Ok(out) => Ok(Some(OneTimeSchedule {
                name: name.to_owned(),
                at: out
                    .schedule_expression()
                    .and_then(OneTimeSchedule::parse_expression)
                    .unwrap_or_default(),
                input: out
                    .target()
                    .and_then(|t| t.input())
                    .unwrap_or_default()
                    .to_owned(),
                description: out.description().unwrap_or_default().to_owned(),
            })),
            Err(e) => {
                let e = sdk_error("GetSchedule", &e);
                if e.code.as_deref() == Some("ResourceNotFoundException") {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn put(&self, s: &OneTimeSchedule) -> Result<ScheduleWrite, AwsError> {
        match self.create_or_update(s, false).await {
            Ok(()) => Ok(ScheduleWrite::Created),
            Err(e) if e.code.as_deref() == Some("ConflictException") => {
                match self.schedule(&s.name).await? {
                    Some(old) if old.at == s.at && old.input == s.input => {
                        Ok(ScheduleWrite::Unchanged)
                    }
                    _ => {
                        self.create_or_update(s, true).await?;
                        Ok(ScheduleWrite::Updated)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, name: &str) -> Result<bool, AwsError> {
        match self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.target.group)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = sdk_error("DeleteSchedule", &e);
                if e.code.as_deref() == Some("ResourceNotFoundException") {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}
