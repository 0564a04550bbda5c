//! Slack's Web API: `chat.postMessage` and `chat.update` with the bot token as `Bearer`; errors
//! come as HTTP 200 `"ok": false`, sorted by `notify::slack::check_ok`. [`FakeWorkspace`] answers
//! as Slack documents: channel names become IDs, an update needs the channel's ID and an existing
//! `ts` (`message_not_found`), and the workspace's edit window (`edit_window_closed`).

use super::Live;
use crate::notify::services::{Call, Failure, Reply};
use crate::notify::{Deadline, slack};

impl Live {
    pub(super) async fn slack_api(&self, c: &Call, deadline: Deadline) -> Result<Reply, Failure> {
        let api = self
            .slack_api
            .as_ref()
            .ok_or_else(|| Failure::refused("no SLACK_BOT_TOKEN_SECRET_ARN"))?;
        let token = slack::bot_token_from_secret(
            &self.secret(&api.token_secret).await?.0,
            &api.token_secret,
        )
        .map_err(Failure::refused)?;
        let url = api
            .base
            .join(c.method.as_str())
            .map_err(|e| Failure::refused(e.to_string()))?;
        let answer = self
            .post(
                &url,
                Some(&format!("Bearer {token}")),
                c.body.to_string(),
                deadline,
            )
            .await?;
        slack::check_ok(&answer.body).map(Reply)
    }
}

#[cfg(any(test, feature = "testing"))]
pub use fake::{FakeWorkspace, SlackMessage};

#[cfg(any(test, feature = "testing"))]
mod fake {
    use crate::notify::services::{Failure, Reply};
    use serde_json::{Value, json};

    #[derive(Debug, Clone, PartialEq)]
    pub struct SlackMessage {
        pub channel: String,
        pub ts: String,
        pub text: String,
        pub body: Value,
        pub posted_at: i64,
        pub updates: u32,
        pub replies: Vec<String>,
    }

    /// A Slack workspace's messages, as the Web API keeps them.
    #[derive(Debug, Default)]
    pub struct FakeWorkspace {
        pub messages: Vec<SlackMessage>,
        seq: u64,
        /// How long a message stays editable (workspaces can limit it), in seconds.
        pub edit_window: Option<i64>,
    }

    fn slack_error(code: &str) -> Failure {
        crate::notify::slack::check_ok(&json!({"ok": false, "error": code}).to_string())
            .unwrap_err()
    }

    /// Slack turns a channel name into an ID (`#ops` → `C…`); IDs stay as they are.
    fn channel_id(c: &str) -> String {
        if c.starts_with('C')
            && c.chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
        {
            return c.to_owned();
        }
        format!("C{}", &crate::notify::digest(c)[..8].to_ascii_uppercase())
    }

    impl FakeWorkspace {
        /// `chat.postMessage`: a message, or a reply in a thread.
        pub fn post_message(&mut self, body: &Value, now: i64) -> Result<Reply, Failure> {
            let s = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
            let channel = s("channel");
            if channel.is_empty() {
                return Err(slack_error("channel_not_found"));
            }
            if s("text").is_empty() && body.get("attachments").is_none() {
                return Err(slack_error("no_text"));
            }
            let cid = channel_id(&channel);
            self.seq += 1;
            let ts = format!("{now}.{:06}", self.seq);
            if let Some(thread) = body["thread_ts"].as_str() {
                let parent = self
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == cid && m.ts == thread)
                    .ok_or_else(|| slack_error("thread_not_found"))?;
                parent.replies.push(s("text"));
            } else {
                self.messages.push(SlackMessage {
                    channel: cid.clone(),
                    ts: ts.clone(),
                    text: s("text"),
                    body: body.clone(),
                    posted_at: now,
                    updates: 0,
                    replies: Vec::new(),
                });
            }
            Ok(Reply(json!({"ok": true, "channel": cid, "ts": ts})))
        }

        /// `chat.update`: by the channel's ID and an existing `ts`, within the edit window.
        pub fn update(&mut self, body: &Value, now: i64) -> Result<Reply, Failure> {
            let s = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
            let (channel, ts) = (s("channel"), s("ts"));
            if !channel.starts_with('C') {
                return Err(slack_error("channel_not_found"));
            }
            let window = self.edit_window;
            let m = self
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
                .ok_or_else(|| slack_error("message_not_found"))?;
            if window.is_some_and(|w| now - m.posted_at > w) {
                return Err(slack_error("edit_window_closed"));
            }
            m.text = s("text");
            m.body = body.clone();
            m.updates += 1;
            Ok(Reply(json!({"ok": true, "channel": channel, "ts": ts})))
        }
    }
}
