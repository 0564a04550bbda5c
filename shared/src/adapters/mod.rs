//! Adapters: the AWS calls the functions make, each a small typed method over an SDK client.
//! Every mutating call is idempotent (setting DRAINING twice, deregistering a target that is gone)
//! and retried by the SDK's standard retry mode on throttling and 5xx (see `aws::load_sdk_config`).

pub mod autoscaling;
pub mod ecs;
pub mod elbv2;

use std::fmt;

/// A failed AWS call: which operation, and the SDK's full error context (codes and messages,
/// never credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn new<E>(operation: &'static str, err: &aws_sdk_ecs::error::SdkError<E>) -> Self
    where
        E: std::error::Error + aws_sdk_ecs::error::ProvideErrorMetadata + 'static,
    {
        let code = err
            .as_service_error()
            .and_then(|e| e.code())
            .map(str::to_owned);
        Self {
            operation,
            code,
            message: crate::text::excerpt(
                &aws_sdk_ecs::error::DisplayErrorContext(err).to_string(),
                400,
            ),
        }
    }

    pub fn other(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)
    }
}

impl std::error::Error for AwsError {}
