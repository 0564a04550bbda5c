//! The one SDK configuration, built once per execution environment.
//!
//! Endpoints come from the standard variables (`AWS_ENDPOINT_URL`, and per service
//! `AWS_ENDPOINT_URL_ECS`, `AWS_ENDPOINT_URL_AUTO_SCALING`, …), which is how the demo and the
//! tests point the real clients at a local AWS.

pub use aws_config::SdkConfig;

/// Load the shared SDK configuration (region, credentials, endpoints) from the environment, with
/// the standard retry mode at 5 attempts: throttling and 5xx are retried with jittered backoff.
/// Its HTTPS client trusts the process's one set of root certificates (`crate::tls`).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::tls::sdk_http_client())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .load()
        .await
}
