//! AWS clients, built once per execution environment from one `SdkConfig`.
//!
//! Endpoints come from the standard variables (`AWS_ENDPOINT_URL`, and per service
//! `AWS_ENDPOINT_URL_ECS`, `AWS_ENDPOINT_URL_AUTO_SCALING`, …), which is how the demo and the
//! tests point the real clients at a local AWS.

pub use aws_config::SdkConfig;

/// Load the shared SDK configuration (region, credentials, endpoints) from the environment, with
/// the standard retry mode at 5 attempts: throttling and 5xx are retried with jittered backoff.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .load()
        .await
}

/// The clients a function may use. Each function builds only those it calls.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    pub ecs: Option<aws_sdk_ecs::Client>,
    pub autoscaling: Option<aws_sdk_autoscaling::Client>,
    pub elbv2: Option<aws_sdk_elasticloadbalancingv2::Client>,
    pub sns: Option<aws_sdk_sns::Client>,
}

/// Which clients to build.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    pub ecs: bool,
    pub autoscaling: bool,
    pub elbv2: bool,
    pub sns: bool,
}

impl Clients {
    pub fn build(sdk: &SdkConfig, needs: Needs) -> Self {
        Self {
            ecs: needs.ecs.then(|| aws_sdk_ecs::Client::new(sdk)),
            autoscaling: needs
                .autoscaling
                .then(|| aws_sdk_autoscaling::Client::new(sdk)),
            elbv2: needs
                .elbv2
                .then(|| aws_sdk_elasticloadbalancingv2::Client::new(sdk)),
            sns: needs.sns.then(|| aws_sdk_sns::Client::new(sdk)),
        }
    }
}
