//! The one invocation envelope every function goes through: parse → metrics → span →
//! acknowledge foreign events → the function's handler → summary or error → Lambda diagnostic.

use crate::events::{Event, EventKind, parse_value};
use crate::notify::Deadline;
use crate::observe::{Metrics, event_span};
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use tracing::Instrument;

/// A Lambda function of the suite: which events it acts on, and what it does with them.
pub trait Function: Send + Sync + 'static {
    /// The package, binary and Lambda function name.
    const NAME: &'static str;

    /// The event kinds this function acts on; any other parsed event is acknowledged and skipped.
    fn accepts(kind: EventKind) -> bool;

    /// `METRICS_NAMESPACE`.
    fn metrics_namespace(&self) -> &str;

    /// The `Account` dimension of this event's metrics: a hub's ([`crate::hub::Hub`]); none
    /// standalone.
    fn account_dimension(&self, _event: &Event) -> Option<String> {
        None
    }

    /// Handle an event the function accepts. `summary` comes filled with what the envelope knows.
    fn handle(
        &self,
        event: &Event,
        summary: Summary,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> impl Future<Output = Result<Summary, Error>> + Send;
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

/// Why an invocation failed: one line, never a secret. Lambda records `error_type` and the message,
/// retries the event, and the on-failure destination keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// `InvalidEvent`, `DeliveryFailed`, `AwsCallFailed`, `DrainFailed`.
    pub error_type: &'static str,
    pub message: String,
}

impl Error {
    /// How a function that acts, then tells, ends when something failed: its failed calls first
    /// (as `error_type`, the actions matter most), else its failed deliveries. `None` when
    /// everything went through.
    pub fn after(
        error_type: &'static str,
        calls: &[String],
        deliveries: &[String],
    ) -> Option<Self> {
        let (error_type, failed) = if !calls.is_empty() {
            tracing::error!(errors = ?calls, "calls failed");
            (error_type, calls)
        } else if !deliveries.is_empty() {
            ("DeliveryFailed", deliveries)
        } else {
            return None;
        };
        Some(Self {
            error_type,
            message: failed.join("; "),
        })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<crate::events::ParseError> for Error {
    fn from(e: crate::events::ParseError) -> Self {
        Self {
            error_type: "InvalidEvent",
            message: e.to_string(),
        }
    }
}

impl From<crate::notify::DeliveryError> for Error {
    fn from(e: crate::notify::DeliveryError) -> Self {
        Self {
            error_type: "DeliveryFailed",
            message: e.to_string(),
        }
    }
}

impl From<crate::ports::AwsError> for Error {
    fn from(e: crate::ports::AwsError) -> Self {
        Self {
            error_type: "AwsCallFailed",
            message: e.to_string(),
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}

/// Handle one payload. Malformed input is an error (Lambda retries it and the on-failure
/// destination keeps it for inspection); unknown or foreign events are acknowledged; whatever the
/// function could not do is an error naming it.
pub async fn handle<F: Function>(
    function: &F,
    payload: &Value,
    deadline: Deadline,
) -> Result<Summary, Error> {
    let mut metrics = Metrics::new(function.metrics_namespace(), F::NAME);
    let result = handle_with(function, payload, deadline, &mut metrics).await;
    metrics.flush();
    result
}

/// [`handle`], returning the EMF lines instead of writing them (tests check what is emitted).
pub async fn handle_observed<F: Function>(
    function: &F,
    payload: &Value,
    deadline: Deadline,
) -> (Result<Summary, Error>, Vec<String>) {
    let mut metrics = Metrics::new(function.metrics_namespace(), F::NAME);
    let result = handle_with(function, payload, deadline, &mut metrics).await;
    (result, metrics.lines().to_vec())
}

async fn handle_with<F: Function>(
    function: &F,
    payload: &Value,
    deadline: Deadline,
    metrics: &mut Metrics,
) -> Result<Summary, Error> {
    // A payload that was not JSON at all, as the runtime layer passed it on (see `StripBom`):
    // the parser's own error, not the runtime's deserializer's.
    let parsed = match payload
        .as_object()
        .and_then(|o| o.get(NOT_JSON_KEY).filter(|_| o.len() == 1))
    {
        Some(Value::String(raw)) => crate::events::parse_event(raw.as_bytes()),
        _ => parse_value(payload),
    };
    let event = match parsed {
        Ok(e) => e,
        Err(e) => {
            metrics.event_received(None);
            tracing::error!(function = F::NAME, error = %e, "rejected malformed event");
            return Err(e.into());
        }
    };
    metrics.set_account(function.account_dimension(&event));
    metrics.event_received(Some(event.kind()));
    let span = event_span(F::NAME, &event);
    async {
        tracing::debug!(
            remaining_ms = deadline.remaining().as_millis() as u64,
            "invocation budget"
        );
        let summary = classify::<F>(&event);
        if summary.outcome != "parsed" {
            return Ok(summary);
        }
        function.handle(&event, summary, deadline, metrics).await
    }
    .instrument(span)
    .await
}

fn classify<F: Function>(event: &Event) -> Summary {
    let kind = event.kind();
    let outcome = if kind == EventKind::Unrecognised {
        tracing::info!("acknowledged an event this suite does not handle");
        "ignored: unrecognised event".to_owned()
    } else if !F::accepts(kind) {
        tracing::info!(kind = %kind, "acknowledged an event meant for another function");
        format!("ignored: {kind} is not handled by {}", F::NAME)
    } else {
        let detail = serde_json::to_string(&event.detail).unwrap_or_default();
        tracing::info!(kind = %kind, ingress = ?event.ingress, detail = %crate::text::excerpt(&detail, 4000), "parsed event");
        "parsed".to_owned()
    };
    Summary {
        function: F::NAME,
        event_id: event.envelope.id.clone(),
        detail_type: event.envelope.detail_type.clone(),
        kind,
        subject: event.subject(),
        outcome,
        actions: Vec::new(),
    }
}

/// Serve `function` under the Lambda runtime. Every `main.rs` ends here.
pub async fn run<F: Function>(function: F) -> Result<(), lambda_runtime::Error> {
    let function = &function;
    let service = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let deadline = Deadline::from_epoch_ms(event.context.deadline);
            // Boxed: the handler's future is deep, and the runtime's own futures nest it further
            // (rustc's layout query depth overflows without it in release builds).
            Box::pin(handle(function, &event.payload, deadline)).await
        },
    );
    lambda_runtime::Runtime::new(service)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(StripBom)
        .run()
        .await
}

/// The UTF-8 byte-order mark a Windows editor puts at the start of a saved JSON file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How many leading bytes of a payload are a byte-order mark: a sample saved by a Windows
/// editor and sent with `cargo lambda invoke --data-file` is read as the project's own parser
/// reads it, not refused by the runtime's deserializer.
pub fn bom_len(body: &[u8]) -> usize {
    if body.starts_with(BOM) { BOM.len() } else { 0 }
}

/// The key under which the runtime layer passes on a payload that is not JSON, so that the
/// project's parser, not the runtime's deserializer, says what is wrong with it.
const NOT_JSON_KEY: &str = "fleetguard:payload-not-json";

/// The runtime layer that makes the runtime read a payload as the project's parser does: it
/// drops a leading byte-order mark ([`bom_len`]), and hands a payload that is not JSON on as
/// `{NOT_JSON_KEY: text}` (the runtime would refuse it with its generic deserializer error).
#[derive(Debug, Clone, Copy)]
struct StripBom;

impl<S> lambda_runtime::tower::Layer<S> for StripBom {
    type Service = StripBomService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StripBomService(inner)
    }
}

#[derive(Debug, Clone)]
struct StripBomService<S>(S);

impl<S> lambda_runtime::Service<lambda_runtime::LambdaInvocation> for StripBomService<S>
where
    S: lambda_runtime::Service<lambda_runtime::LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: lambda_runtime::LambdaInvocation) -> Self::Future {
        let bom = bom_len(&invocation.body);
        if bom > 0 {
            invocation.body = invocation.body.slice(bom..);
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&invocation.body).is_err() {
            let text = String::from_utf8_lossy(&invocation.body).into_owned();
            invocation.body = serde_json::to_vec(&serde_json::json!({ NOT_JSON_KEY: text }))
                .unwrap_or_default()
                .into();
        }
        self.0.call(invocation)
    }
}

#[cfg(test)]
mod bom_tests {
    use super::*;

    #[test]
    fn a_leading_byte_order_mark_is_dropped_before_the_payload_is_read() {
        let json = br#"{"version": "0", "detail-type": "Scheduled Event"}"#;
        let mut with_bom = BOM.to_vec();
        with_bom.extend_from_slice(json);
        assert!(serde_json::from_slice::<Value>(&with_bom).is_err());
        let n = bom_len(&with_bom);
        assert_eq!(n, 3);
        let v: Value = serde_json::from_slice(&with_bom[n..]).unwrap();
        assert_eq!(v["detail-type"], "Scheduled Event");
        assert_eq!(bom_len(json), 0);
        assert_eq!(bom_len(b""), 0);
        // A mark later in the payload is the payload's own business.
        assert_eq!(bom_len(b" \xEF\xBB\xBF{}"), 0);
    }
}
