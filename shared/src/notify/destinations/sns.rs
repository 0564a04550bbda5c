//! SNS: `Publish` through the SDK (its standard retry mode already retried throttling and 5xx),
//! the subject, message and attributes rendered by `notify::sns`. Machine consumers get every
//! transition. The fake (in `fake.rs`) keeps what was published.

use super::Live;
use crate::notify::services::{Call, Failure, Reply};

impl Live {
    pub(super) async fn publish(&self, topic_arn: &str, c: &Call) -> Result<Reply, Failure> {
        use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
        use aws_sdk_sns::types::MessageAttributeValue;
        let client = self
            .sns
            .as_ref()
            .ok_or_else(|| Failure::refused("no SNS client"))?;
        let text = |k: &str| c.body[k].as_str().unwrap_or_default().to_owned();
        let mut req = client
            .publish()
            .topic_arn(topic_arn)
            .subject(text("subject"))
            .message(text("message"));
        for (k, v) in c.body["attributes"].as_object().into_iter().flatten() {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v.as_str().unwrap_or_default())
                .build()
                .map_err(|e| Failure::refused(e.to_string()))?;
            req = req.message_attributes(k, attr);
        }
        // The SDK's standard retry mode already retried throttling and 5xx with backoff.
        match req.send().await {
            Ok(_) => Ok(Reply::default()),
            Err(e) => {
                let shown = DisplayErrorContext(&e).to_string();
                Err(match &e {
                    SdkError::ServiceError(s) if s.err().code() == Some("Throttling") => {
                        Failure::Throttled {
                            retry_after: None,
                            detail: shown,
                        }
                    }
                    SdkError::ServiceError(s) if s.raw().status().is_server_error() => {
                        Failure::Transient(shown)
                    }
                    SdkError::ServiceError(_) | SdkError::ConstructionFailure(_) => {
                        Failure::refused(shown)
                    }
                    SdkError::DispatchFailure(d) if d.is_io() && !d.is_timeout() => {
                        Failure::Transient(shown)
                    }
                    _ => Failure::Unknown(shown),
                })
            }
        }
    }
}
