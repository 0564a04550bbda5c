//! The four functions, which events each accepts, and the entry every handler goes through:
//! parse, log, count, then hand the typed event to the function's own logic.

use crate::aws::{Clients, Needs};
use crate::config::CommonConfig;
use crate::events::{Event, EventKind, ParseError, parse_value};
use crate::observe::{Metrics, event_span};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    SpotInterruption,
    AsgLifecycle,
    EcsDeployment,
    AlarmFanout,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::SpotInterruption,
        Function::AsgLifecycle,
        Function::EcsDeployment,
        Function::AlarmFanout,
    ];

    /// The package, binary and Lambda function name.
    pub fn name(self) -> &'static str {
        match self {
            Function::SpotInterruption => "spot-interruption",
            Function::AsgLifecycle => "asg-lifecycle",
            Function::EcsDeployment => "ecs-deployment",
            Function::AlarmFanout => "alarm-fanout",
        }
    }

    /// The event kinds this function acts on; any other parsed event is acknowledged and skipped.
    pub fn accepts(self, kind: EventKind) -> bool {
        use EventKind::*;
        match self {
            Function::SpotInterruption => {
                matches!(kind, SpotInterruptionWarning | RebalanceRecommendation)
            }
            Function::AsgLifecycle => matches!(
                kind,
                LaunchLifecycleAction
                    | TerminateLifecycleAction
                    | OtherLifecycleAction
                    | AutoScalingTestNotification
                    | ContainerInstanceStateChange
                    | TaskStateChange
                    | Scheduled
            ),
            Function::EcsDeployment => matches!(
                kind,
                DeploymentStateChange | ServiceAction | TaskStateChange
            ),
            Function::AlarmFanout => matches!(
                kind,
                AlarmStateChange | AlarmContributorStateChange | AlarmConfigurationChange
            ),
        }
    }

    /// The AWS clients the function calls.
    pub fn needs(self) -> Needs {
        match self {
            Function::SpotInterruption | Function::AsgLifecycle => Needs {
                ecs: true,
                autoscaling: true,
                elbv2: true,
                sns: true,
            },
            Function::EcsDeployment => Needs {
                ecs: true,
                sns: true,
                ..Needs::default()
            },
            Function::AlarmFanout => Needs {
                sns: true,
                ..Needs::default()
            },
        }
    }
}

/// What an invocation did, returned to the caller (and shown by `cargo lambda invoke`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub function: &'static str,
    pub event_id: String,
    pub detail_type: String,
    pub kind: EventKind,
    pub subject: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
}

/// Everything a handler needs, built once in `main`.
#[derive(Debug, Clone)]
pub struct Context {
    pub function: Function,
    pub config: CommonConfig,
    pub clients: Clients,
}

impl Context {
    pub async fn from_env(function: Function) -> Result<Self, crate::config::ConfigError> {
        let config = CommonConfig::from_env()?;
        let sdk = crate::aws::load_sdk_config().await;
        Ok(Self {
            function,
            config,
            clients: Clients::build(&sdk, function.needs()),
        })
    }
}

/// Parse and classify one payload. Malformed input is an error (Lambda retries it and the
/// on-failure destination keeps it for inspection); unknown or foreign events are acknowledged.
pub async fn handle(ctx: &Context, payload: &Value) -> Result<Summary, ParseError> {
    let mut metrics = Metrics::new(&ctx.config.metrics_namespace, ctx.function.name());
    let event = match parse_value(payload) {
        Ok(e) => e,
        Err(e) => {
            metrics.event_received(None);
            metrics.flush();
            tracing::error!(function = ctx.function.name(), error = %e, "rejected malformed event");
            return Err(e);
        }
    };
    metrics.event_received(Some(event.kind()));
    let span = event_span(ctx.function.name(), &event);
    let summary = async { classify(ctx, &event) }.instrument(span).await;
    metrics.flush();
    Ok(summary)
}

fn classify(ctx: &Context, event: &Event) -> Summary {
    let kind = event.kind();
    let outcome = if kind == EventKind::Unrecognised {
        tracing::info!("acknowledged an event this suite does not handle");
        "ignored: unrecognised event".to_owned()
    } else if !ctx.function.accepts(kind) {
        tracing::info!(kind = %kind, "acknowledged an event meant for another function");
        format!("ignored: {kind} is not handled by {}", ctx.function.name())
    } else {
        let detail = serde_json::to_string(&event.detail).unwrap_or_default();
        tracing::info!(kind = %kind, ingress = ?event.ingress, detail = %crate::text::excerpt(&detail, 4000), "parsed event");
        "parsed".to_owned()
    };
    Summary {
        function: ctx.function.name(),
        event_id: event.envelope.id.clone(),
        detail_type: event.envelope.detail_type.clone(),
        kind,
        subject: event.subject(),
        outcome,
        actions: Vec::new(),
    }
}

/// Run a function's handler under the Lambda runtime. Used by every `main.rs`.
pub async fn run(function: Function) -> Result<(), lambda_runtime::Error> {
    crate::observe::init_logging();
    let ctx = Context::from_env(function).await?;
    let ctx = &ctx;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let summary = handle(ctx, &event.payload).await?;
            Ok::<Summary, lambda_runtime::Error>(summary)
        },
    ))
    .await
}
