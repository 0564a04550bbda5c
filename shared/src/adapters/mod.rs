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

/// The fleet's adapters as the drain functions run them, on one account's SDK configuration:
/// drain marks kept in `notifier`'s ledger as well as on the container instance.
#[cfg(all(feature = "ecs", feature = "elbv2", feature = "autoscaling"))]
pub type LiveFleet = crate::out_of_service::Fleet<
    crate::kept_marks::Marked<ecs::Ecs, crate::notify::Notifier>,
    elbv2::Elbv2,
    autoscaling::AutoScaling,
>;

/// [`LiveFleet`] on `sdk` (an account's credentials).
#[cfg(all(feature = "ecs", feature = "elbv2", feature = "autoscaling"))]
pub fn live_fleet_on(sdk: &aws_config::SdkConfig, notifier: &crate::notify::Notifier) -> LiveFleet {
    let autoscaling = autoscaling::AutoScaling::new(aws_sdk_autoscaling::Client::new(sdk));
    live_fleet(sdk, notifier, autoscaling)
}

/// [`LiveFleet`] on `sdk` (an account's credentials), with `autoscaling` given (tests point it
/// at the lifecycle fake).
#[cfg(all(feature = "ecs", feature = "elbv2", feature = "autoscaling"))]
pub fn live_fleet(
    sdk: &aws_config::SdkConfig,
    notifier: &crate::notify::Notifier,
    autoscaling: autoscaling::AutoScaling,
) -> LiveFleet {
    crate::out_of_service::Fleet {
        ecs: crate::kept_marks::Marked::new(
            ecs::Ecs::new(aws_sdk_ecs::Client::new(sdk)),
            notifier.clone(),
        ),
        elbv2: elbv2::Elbv2::new(aws_sdk_elasticloadbalancingv2::Client::new(sdk)),
        autoscaling,
    }
}

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
