//! Adapters: the AWS SDK implementations of the ports, one Cargo feature per service (`ecs`,
//! `autoscaling`, `elbv2`, `scheduler`), so each binary links only the SDK crates it calls.
//! Every mutating call is idempotent (setting DRAINING twice, deregistering a target that is gone)
//! and retried by the SDK's standard retry mode on throttling and 5xx (see `aws::load_sdk_config`).

#[cfg(feature = "autoscaling")]
pub mod autoscaling;
#[cfg(feature = "ecs")]
pub mod ecs;
#[cfg(feature = "elbv2")]
pub mod elbv2;
#[cfg(feature = "scheduler")]
pub mod scheduler;

pub use crate::ports::AwsError;

/// An SDK error as an [`AwsError`]: the operation, the service's error code, and the SDK's full
/// error context, cut to 400 characters.
pub fn sdk_error<E, R>(
    operation: &'static str,
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> AwsError
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned);
    AwsError {
        operation,
        code,
        message: crate::text::excerpt(
            &aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
            400,
        ),
    }
}
