//! Incoming webhooks: Slack's (a URL from `SLACK_WEBHOOK_URL` or a secret) and Teams Workflows'
//! (a URL from a secret). A 2xx is delivered; 429 is throttled (with `Retry-After`), 5xx
//! transient, any other status refused (Slack's `invalid_payload`, `channel_is_archived`…). The
//! fake (in `fake.rs`) keeps what was posted.

use super::Live;
use crate::notify::Deadline;
use crate::notify::services::{Call, Failure, Reply};
use crate::notify::webhook::WebhookUrl;

impl Live {
    pub(super) async fn webhook(
        &self,
        hook: &WebhookUrl,
        c: &Call,
        deadline: Deadline,
    ) -> Result<Reply, Failure> {
        self.post(hook.url(), None, c.body.to_string(), deadline)
            .await
            .map(|_| Reply::default())
    }
}
