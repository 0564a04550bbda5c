//! One HTTP POST with retries for every web destination (Slack webhooks and Web API, PagerDuty,
//! Teams): 429 waits for `Retry-After` when given, 5xx and transport errors back off; nothing waits
//! past the invocation's deadline. URLs and credentials never reach an error or a log line.

use super::Deadline;
use backon::{ExponentialBuilder, Retryable};
use std::fmt;
use std::time::Duration;

/// A request to send: the URL and any `Authorization` value are credentials.
pub struct Post<'a> {
    pub url: &'a reqwest::Url,
    pub authorization: Option<&'a str>,
    /// Slack's Web API asks for the charset (`missing_charset` warning otherwise); webhooks
    /// take plain `application/json`.
    pub content_type: &'static str,
    pub body: String,
    /// What logs and errors call the destination.
    pub label: &'a str,
    pub max_attempts: usize,
}

/// A response with a 2xx status.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

#[derive(Debug)]
pub enum HttpError {
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    Transport(String),
    /// A 2xx answer the service says is an error (Slack's `"ok": false`).
    Refused {
        error: String,
        retryable: bool,
    },
    OutOfTime,
}

impl HttpError {
    fn retryable(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => *status == 429 || *status >= 500,
            HttpError::Transport(_) => true,
            HttpError::Refused { retryable, .. } => *retryable,
            HttpError::OutOfTime => false,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status { status, body, .. } => write!(f, "HTTP {status} {body}"),
            HttpError::Transport(e) => write!(f, "{e}"),
            HttpError::Refused { error, .. } => write!(f, "{error}"),
            HttpError::OutOfTime => f.write_str("no time left in the invocation"),
        }
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        // A service asking for more than a few minutes is answered by Lambda's retry instead.
        .map(|s| Duration::from_secs(s.min(900)))
}

/// POST `req` until it succeeds, `check` accepts the answer, or retries are exhausted. `check`
/// sees every 2xx answer and may turn it into an error (retryable or not).
pub async fn post(
    http: &reqwest::Client,
    req: Post<'_>,
    deadline: Deadline,
    check: impl Fn(&Answer) -> Result<(), HttpError>,
) -> Result<Answer, String> {
    let attempt = || async {
        let timeout = deadline.remaining().min(Duration::from_secs(10));
        if timeout < Duration::from_millis(100) {
            return Err(HttpError::OutOfTime);
        }
        let mut r = http
            .post(req.url.clone())
            .header("content-type", req.content_type)
            .timeout(timeout)
            .body(req.body.clone());
        if let Some(auth) = req.authorization {
            r = r.header("authorization", auth);
        }
        // `without_url`: the URL may be the credential.
        let resp = r
            .send()
            .await
            .map_err(|e| HttpError::Transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let wait = retry_after(&resp);
        let text = resp.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            let answer = Answer { status, body: text };
            check(&answer)?;
            return Ok(answer);
        }
        Err(HttpError::Status {
            status,
            retry_after: wait,
            body: crate::text::shown(&text, 100),
        })
    };
    let mut attempts = 0usize;
    let result = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(300))
                .with_max_delay(Duration::from_secs(8))
                .with_max_times(req.max_attempts.saturating_sub(1))
                .with_jitter(),
        )
        .sleep(tokio::time::sleep)
        .when(HttpError::retryable)
        .adjust(|e, backoff| {
            // The service's Retry-After wins over our backoff; never wait past the deadline.
            let wait = match e {
                HttpError::Status {
                    status: 429,
                    retry_after: Some(r),
                    ..
                } => Some(*r),
                _ => backoff,
            }?;
            (wait + Duration::from_millis(200) < deadline.remaining()).then_some(wait)
        })
        .notify(|e, wait| {
            attempts += 1;
            tracing::warn!(destination = %req.label, error = %e, retry_in_ms = wait.as_millis() as u64, "post failed, retrying");
        })
        .await;
    result.map_err(|e| {
        let tries = attempts + 1;
        format!(
            "{e} after {tries} attempt{}",
            if tries == 1 { "" } else { "s" }
        )
    })
}
