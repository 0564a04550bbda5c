//! One HTTP POST, one attempt, for every web destination (Slack webhooks and Web API, PagerDuty,
//! Teams), its outcome sorted for the retry policy of [`super::services::call`]: a connection
//! never made sent nothing; a timeout or a connection lost after the request left may have
//! landed. URLs and credentials never reach an error or a log line.

use super::Deadline;
use super::services::Failure;
use std::time::Duration;

/// A request to send: the URL and any `Authorization` value are credentials.
pub struct Post<'a> {
    pub url: &'a reqwest::Url,
    pub authorization: Option<&'a str>,
    /// Slack's Web API asks for the charset (`missing_charset` warning otherwise); webhooks
    /// take plain `application/json`.
    pub content_type: &'static str,
    pub body: String,
}

/// A response with a 2xx status.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        // A service asking for more than a few minutes is answered by Lambda's retry instead.
        .map(|s| Duration::from_secs(s.min(900)))
}

/// The client's own limit on one request: the invocation's time left, at most 10 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// POST once. A 2xx is an [`Answer`]; 429 is throttled, 5xx transient, other statuses refused.
pub async fn post(
    http: &reqwest::Client,
    req: Post<'_>,
    deadline: Deadline,
) -> Result<Answer, Failure> {
    let timeout = deadline.remaining().min(REQUEST_TIMEOUT);
    let mut r = http
        .post(req.url.clone())
        .header("content-type", req.content_type)
        .timeout(timeout)
        .body(req.body);
    if let Some(auth) = req.authorization {
        r = r.header("authorization", auth);
    }
    // `without_url`: the URL may be the credential.
    let resp = r.send().await.map_err(|e| {
        let connect = e.is_connect();
        let shown = e.without_url().to_string();
        if connect {
            Failure::Transient(shown)
        } else {
            Failure::Unknown(shown)
        }
    })?;
    let status = resp.status().as_u16();
    let wait = retry_after(&resp);
    let text = resp.text().await.unwrap_or_default();
    let shown = crate::text::shown(&text, 100);
    match status {
        200..=299 => Ok(Answer { status, body: text }),
        429 => Err(Failure::Throttled {
            retry_after: wait,
            detail: format!("HTTP 429 {shown}"),
        }),
        500.. => Err(Failure::Transient(format!("HTTP {status} {shown}"))),
        _ => Err(Failure::Refused {
            code: format!("HTTP {status}"),
            detail: shown,
        }),
    }
}
