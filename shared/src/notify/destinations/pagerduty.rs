//! PagerDuty Events API v2: `POST /v2/enqueue` with the routing key from its secret; 202
//! `{"status": "success"}` is delivered, 400 `invalid event` refused, 429 throttled. Events fold by
//! `dedup_key`, so repeating one is harmless. [`FakeEvents`] answers as PagerDuty documents: a
//! trigger on a resolved key opens a new incident, a resolve of an unknown key changes nothing.

use super::Live;
use crate::notify::services::{Call, Failure, Reply};
use crate::notify::{Deadline, pagerduty};

impl Live {
    pub(super) async fn enqueue(
        &self,
        secret_id: &str,
        c: &Call,
        deadline: Deadline,
    ) -> Result<Reply, Failure> {
        let key = pagerduty::routing_key_from_secret(&self.secret(secret_id).await?.0, secret_id)
            .map_err(Failure::refused)?;
        let url = self
            .pagerduty_url
            .as_ref()
            .ok_or_else(|| Failure::refused("no PagerDuty URL"))?;
        let mut body = c.body.clone();
        body["routing_key"] = serde_json::Value::String(key);
        let a = self.post(url, None, body.to_string(), deadline).await?;
        // 202 {"status": "success"}; anything else in 2xx is not what PagerDuty promised.
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
        match v.get("status").and_then(|s| s.as_str()) {
            Some("success") | None if a.status == 202 || a.status == 200 => Ok(Reply(v)),
            other => Err(Failure::refused(format!(
                "PagerDuty answered {} {}",
                a.status,
                other.unwrap_or("")
            ))),
        }
    }
}

#[cfg(any(test, feature = "testing"))]
pub use fake::{Alert, FakeEvents};

#[cfg(any(test, feature = "testing"))]
mod fake {
    use crate::notify::services::{Failure, Reply};
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq)]
    pub struct Alert {
        pub dedup_key: String,
        pub status: &'static str,
        pub severity: String,
        /// Every event this key received, in order (`trigger`, `resolve`).
        pub events: Vec<String>,
        /// How many PagerDuty incidents this key opened (a trigger on a resolved key opens another).
        pub incidents: u32,
    }

    /// PagerDuty's alerts by `dedup_key`, as the Events API v2 keeps them.
    #[derive(Debug, Default)]
    pub struct FakeEvents {
        pub alerts: BTreeMap<String, Alert>,
    }

    impl FakeEvents {
        /// `POST /v2/enqueue`: 202, or 400 `invalid event`.
        pub fn enqueue(&mut self, body: &Value) -> Result<Reply, Failure> {
            let s = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
            let key = s("dedup_key");
            let action = s("event_action");
            let bad = |why: &str| Failure::Refused {
                code: "HTTP 400".into(),
                detail: format!("invalid event: {why}"),
            };
            if key.is_empty() || key.len() > 255 {
                return Err(bad("dedup_key"));
            }
            match action.as_str() {
                "trigger" => {
                    let p = &body["payload"];
                    for f in ["summary", "source", "severity"] {
                        if p[f].as_str().unwrap_or_default().is_empty() {
                            return Err(bad(f));
                        }
                    }
                    let a = self.alerts.entry(key.clone()).or_insert_with(|| Alert {
                        dedup_key: key.clone(),
                        status: "resolved",
                        severity: String::new(),
                        events: Vec::new(),
                        incidents: 0,
                    });
                    if a.status == "resolved" {
                        a.incidents += 1;
                    }
                    a.status = "triggered";
                    a.severity = p["severity"].as_str().unwrap_or_default().to_owned();
                    a.events.push(action);
                }
                "resolve" => {
                    // An unknown key is accepted and changes nothing.
                    if let Some(a) = self.alerts.get_mut(&key) {
                        a.status = "resolved";
                        a.events.push(action);
                    }
                }
                _ => return Err(bad("event_action")),
            }
            Ok(Reply(json!({"status": "success", "dedup_key": key})))
        }
    }
}
