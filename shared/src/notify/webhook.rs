//! A Slack incoming-webhook URL. The URL is the credential: it never appears in logs, errors or
//! Debug output. Only its host (and a stable fingerprint, for dedupe records) can be shown.

use reqwest::Url;
use std::fmt;
use std::hash::{Hash, Hasher};

#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: Url,
    /// What logs and errors call it: the secret's ARN, or `SLACK_WEBHOOK_URL`.
    label: String,
}

impl WebhookUrl {
    /// `label` names where the URL came from; it is what logs show instead of the URL.
    /// `https://` always; plain `http://` only for loopback hosts (local sinks).
    pub fn parse(raw: &str, label: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("{label}: not a URL ({e})"))?;
        let host = url.host_str().unwrap_or("");
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = bare == "localhost"
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(format!(
                    "{label}: plain http:// is accepted for loopback hosts only"
                ));
            }
            other => return Err(format!("{label}: unsupported scheme {other:?}")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{label}: URL has no host"));
        }
        Ok(Self {
            url,
            label: label.to_owned(),
        })
    }

    /// A Secrets Manager secret's value: the bare URL, or JSON with a `url` key.
    pub fn from_secret(value: &str, label: &str) -> Result<Self, String> {
        Self::parse(&super::secret_field(value, label, &["url"])?, label)
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// A stable, non-reversible identifier for dedupe records.
    pub fn fingerprint(&self) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.url.as_str().hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebhookUrl({}, host {}, url redacted)",
            self.label,
            self.url.host_str().unwrap_or("")
        )
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slack webhook {}", self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str =
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

    #[test]
    fn never_shows_the_url() {
        let w =
            WebhookUrl::parse(SECRET, "arn:aws:secretsmanager:eu-west-1:1:secret:slack").unwrap();
        for shown in [format!("{w:?}"), format!("{w}")] {
            assert!(!shown.contains("XXXXXXXX"), "{shown}");
            assert!(!shown.contains("/services/"), "{shown}");
        }
        assert_eq!(w.fingerprint().len(), 16);
    }

    #[test]
    fn accepts_secret_forms_and_rejects_plain_http() {
        assert!(WebhookUrl::from_secret(SECRET, "s").is_ok());
        assert!(WebhookUrl::from_secret(&format!("{{\"url\": \"{SECRET}\"}}"), "s").is_ok());
        assert!(
            WebhookUrl::from_secret("{\"hook\": 1}", "s")
                .unwrap_err()
                .contains("\"url\"")
        );
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/services/x", "s").is_ok());
        assert!(WebhookUrl::parse("http://localhost:9000/x", "s").is_ok());
        let e = WebhookUrl::parse("http://hooks.slack.com/services/T0/B0/secret", "s").unwrap_err();
        assert!(e.contains("loopback") && !e.contains("secret"), "{e}");
        let e = WebhookUrl::parse("not a url with secret", "label").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
