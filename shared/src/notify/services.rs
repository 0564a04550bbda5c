//! The destination port: one call to one service (SNS, a Slack webhook, Slack's Web API,
//! PagerDuty Events v2, a Teams Workflows webhook), its body rendered already. Adapters answer
//! in the service's own terms, sorted into what the caller must know: done, throttled, failed
//! and not done, refused, or **unknown** (the request left and no answer came: it may have
//! landed). [`call`] is the one retry policy above every adapter: `Retry-After` honoured,
//! backoff for transient failures, never past the deadline, and an unknown outcome never
//! retried for a call that would land twice.
//!
//! Adapters: [`super::destinations::Live`] (HTTP and the SDK), and the fakes of `testing` (each answers
//! as its service documents, faults injectable).

use super::{Deadline, Destination};
use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// Which API method a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// SNS `Publish`: body `{"subject", "message", "attributes": {name: value}}`.
    Publish,
    /// An incoming webhook (Slack's, Teams Workflows): the body as posted.
    Webhook,
    /// Slack `chat.postMessage` (a message, or a reply with `thread_ts`).
    ChatPostMessage,
    /// Slack `chat.update`.
    ChatUpdate,
    /// PagerDuty `POST /v2/enqueue`; the adapter adds the routing key.
    Enqueue,
}

impl Method {
    /// Whether sending it twice does no harm: `chat.update` sets the same content, PagerDuty
    /// folds events by `dedup_key`. A post, a publish or a webhook lands twice.
    pub fn idempotent(self) -> bool {
        matches!(self, Method::ChatUpdate | Method::Enqueue)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Publish => "Publish",
            Method::Webhook => "webhook",
            Method::ChatPostMessage => "chat.postMessage",
            Method::ChatUpdate => "chat.update",
            Method::Enqueue => "enqueue",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub body: Value,
    /// The notification's dedupe key: which transition this call carries (logs, fakes' traces).
    pub origin: String,
}

/// A service's answer to a call that was done (Slack's JSON, with `channel` and `ts`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply(pub Value);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not done: 429, or Slack's `ratelimited`; try again after `retry_after` when given.
    Throttled {
        retry_after: Option<Duration>,
        detail: String,
    },
    /// Not done, and may work on another try (5xx, no connection, Slack's `service_unavailable`).
    Transient(String),
    /// The request left and no answer came (a timeout, a connection lost mid-answer, Slack's
    /// `internal_error`): it may have landed.
    Unknown(String),
    /// Refused, and the same request will be refused again: a 4xx, Slack's `"ok": false` code
    /// (`code` is Slack's, or the HTTP status), a secret that cannot be read.
    Refused { code: String, detail: String },
}

impl Failure {
    pub fn refused(code: impl Into<String>) -> Self {
        let code = code.into();
        Failure::Refused {
            detail: String::new(),
            code,
        }
    }

    /// Slack's codes for a message that can no longer be edited: the incident gets a new one.
    pub fn message_gone(&self) -> bool {
        matches!(self, Failure::Refused { code, .. }
            if matches!(code.as_str(), "message_not_found" | "cant_update_message" | "edit_window_closed"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Throttled { detail, .. } => write!(f, "throttled: {detail}"),
            Failure::Transient(e) => f.write_str(e),
            Failure::Unknown(e) => write!(f, "outcome unknown: {e}"),
            Failure::Refused { code, detail } if detail.is_empty() => f.write_str(code),
            Failure::Refused { code, detail } => write!(f, "{code} {detail}"),
        }
    }
}

/// The port.
pub trait Services: Send + Sync + 'static {
    /// One attempt of `call` at `dest`, within `deadline`.
    fn call(
        &self,
        dest: &Destination,
        call: &Call,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Reply, Failure>> + Send;

    /// `dest` failed: what it read (a secret) is read again next time (rotated, or fixed).
    fn forget(&self, dest: &Destination);

    /// Read what a call to `dest` needs (a secret, a connection) before it waits for its slot
    /// in the destination's pace, so that the call leaves as soon as the slot comes. Failures
    /// are left to the call.
    fn prepare(&self, _dest: &Destination) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// `call` at `dest` with the one retry policy, at most `max_attempts` attempts. The error names
/// the attempts.
pub async fn call<S: Services>(
    services: &S,
    dest: &Destination,
    c: &Call,
    deadline: Deadline,
    max_attempts: usize,
) -> Result<Reply, (Failure, usize)> {
    call_paced(services, dest, c, deadline, max_attempts, || async {
        Ok(())
    })
    .await
}

/// [`call`], each attempt first waiting for `pace` (a slot in the destination's rate).
pub async fn call_paced<S: Services, P, F>(
    services: &S,
    dest: &Destination,
    c: &Call,
    deadline: Deadline,
    max_attempts: usize,
    pace: P,
) -> Result<Reply, (Failure, usize)>
where
    P: Fn() -> F,
    F: Future<Output = Result<(), Failure>>,
{
    let mut attempts = 0usize;
    let idempotent = c.method.idempotent();
    services.prepare(dest).await;
    let result = (|| async {
        if deadline.remaining() < Duration::from_millis(100) {
            return Err(Failure::Transient("no time left in the invocation".into()));
        }
        pace().await?;
        services.call(dest, c, deadline).await
    })
    .retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(300))
            .with_max_delay(Duration::from_secs(8))
            .with_max_times(max_attempts.saturating_sub(1))
            .with_jitter(),
    )
    .sleep(tokio::time::sleep)
    .when(|f| match f {
        Failure::Throttled { .. } | Failure::Transient(_) => true,
        Failure::Unknown(_) => idempotent,
        Failure::Refused { .. } => false,
    })
    .adjust(|f, backoff| {
        // The service's Retry-After wins over our backoff; never wait past the deadline.
        let wait = match f {
            Failure::Throttled {
                retry_after: Some(r),
                ..
            } => Some(*r),
            _ => backoff,
        }?;
        (wait + Duration::from_millis(200) < deadline.remaining()).then_some(wait)
    })
    .notify(|f, wait| {
        attempts += 1;
        tracing::warn!(destination = %dest.id(), method = c.method.as_str(), error = %f, retry_in_ms = wait.as_millis() as u64, "call failed, retrying");
    })
    .await;
    result.map_err(|f| (f, attempts + 1))
}

/// A failure after `tries` attempts, as errors and logs show it.
pub fn describe(f: &Failure, tries: usize) -> String {
    format!(
        "{f} after {tries} attempt{}",
        if tries == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A service that answers from a script, one answer per attempt.
    struct Scripted(Mutex<Vec<Result<Reply, Failure>>>, Mutex<usize>);

    impl Services for Scripted {
        async fn call(&self, _: &Destination, _: &Call, _: Deadline) -> Result<Reply, Failure> {
            *self.1.lock().unwrap() += 1;
            self.0.lock().unwrap().remove(0)
        }
        fn forget(&self, _: &Destination) {}
    }

    fn scripted(answers: Vec<Result<Reply, Failure>>) -> Scripted {
        Scripted(Mutex::new(answers), Mutex::new(0))
    }

    fn post() -> Call {
        Call {
            method: Method::ChatPostMessage,
            body: Value::Null,
            origin: String::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_transients_back_off() {
        let s = scripted(vec![
            Err(Failure::Throttled {
                retry_after: Some(Duration::from_secs(3)),
                detail: "429".into(),
            }),
            Err(Failure::Transient("HTTP 503".into())),
            Ok(Reply::default()),
        ]);
        let start = tokio::time::Instant::now();
        let deadline = Deadline::after(Duration::from_secs(60));
        assert!(
            call(&s, &Destination::SlackUrl, &post(), deadline, 5)
                .await
                .is_ok()
        );
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "waited for Retry-After"
        );
        assert_eq!(*s.1.lock().unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_outcome_is_retried_only_where_a_repeat_is_harmless() {
        let unknown = || Err(Failure::Unknown("timed out".into()));
        let deadline = Deadline::after(Duration::from_secs(60));
        let s = scripted(vec![unknown(), Ok(Reply::default())]);
        let (f, tries) = call(&s, &Destination::SlackUrl, &post(), deadline, 5)
            .await
            .unwrap_err();
        assert_eq!((f, tries), (Failure::Unknown("timed out".into()), 1));
        let update = Call {
            method: Method::ChatUpdate,
            body: Value::Null,
            origin: String::new(),
        };
        let s = scripted(vec![unknown(), Ok(Reply::default())]);
        assert!(
            call(&s, &Destination::SlackUrl, &update, deadline, 5)
                .await
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_waits_past_the_deadline_and_refusals_are_final() {
        let s = scripted(vec![Err(Failure::Throttled {
            retry_after: Some(Duration::from_secs(30)),
            detail: "429".into(),
        })]);
        let deadline = Deadline::after(Duration::from_secs(10));
        let (f, tries) = call(&s, &Destination::SlackUrl, &post(), deadline, 5)
            .await
            .unwrap_err();
        assert!(matches!(f, Failure::Throttled { .. }) && tries == 1);
        let s = scripted(vec![Err(Failure::refused("channel_not_found"))]);
        let (f, _) = call(&s, &Destination::SlackUrl, &post(), deadline, 5)
            .await
            .unwrap_err();
        assert_eq!(describe(&f, 1), "channel_not_found after 1 attempt");
        assert!(Failure::refused("edit_window_closed").message_gone());
    }
}
