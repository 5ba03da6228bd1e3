//! Azure Storage Queues (and Azurite) as a [`QueueClient`], with the `azure_storage_queue`
//! crate on the storage I/O runtime ([`crate::storage::block_on`]).
//!
//! - Receive: Get Messages (at most [`MAX_MESSAGES`] = 32 at once). Azure has no long
//!   polling: an empty answer is asked again after a pause that doubles from [`POLL_FIRST`] to
//!   [`POLL_MAX`], until messages come or the wait is over. `DequeueCount` is the receive count.
//! - Bodies: Event Grid writes the event JSON to a Storage Queue base64-encoded (older
//!   subscriptions: as plain text, `docs/reference/storage-events.md`); a text that is not JSON
//!   but whose base64 decoding is becomes the decoded bytes ([`event_body`]).
//! - Visibility: Update Message; it answers a **new pop receipt** (`x-ms-popreceipt`), which
//!   replaces [`Message::receipt`]: the old one can no longer delete or extend the message.
//! - Credentials: [`auth`] (a SAS, a SAS signed with the account key, or Entra ID tokens).
//! - Failures: a few quick retries of transport errors and 408/429/5xx answers
//!   ([`RETRIES`] within [`RETRY_ELAPSED`]), then [`QueueError::Connect`] (no answer) or
//!   [`QueueError::Service`] (an answer, with the service's error code explained).
//!   Messages never hold a key, SAS or token ([`Redactor`]).

pub mod auth;

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::http::headers::HeaderName;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport, Url};
use azure_storage_queue::models::{
    QueueClientDeleteMessageOptions, QueueClientReceiveMessagesOptions,
    QueueClientUpdateMessageOptions, ReceivedMessage,
};
use azure_storage_queue::{QueueClient as SdkClient, QueueClientOptions};

use super::{Message, QueueClient, QueueError, QueueUrl, QueueUrlError};
use crate::source::StageConfig;
use crate::storage::{Redactor, block_on};
use crate::tls::install_crypto_provider;

pub use auth::{CONSUMER_PERMISSIONS, QueueSasSigner};

/// Most messages one Get Messages returns.
pub const MAX_MESSAGES: u32 = 32;
/// Longest visibility timeout the service accepts (7 days).
pub const MAX_VISIBILITY_SECS: u64 = 7 * 24 * 3600;
/// First pause between two receives that found nothing.
pub const POLL_FIRST: Duration = Duration::from_millis(250);
/// Longest pause between two receives that found nothing.
pub const POLL_MAX: Duration = Duration::from_secs(5);
/// Retries of a request that got no answer or a 408/429/5xx.
pub const RETRIES: u32 = 3;
/// Retries of a request stop this long after its first attempt.
pub const RETRY_ELAPSED: Duration = Duration::from_secs(10);
/// Time limit of connecting unless the stage sets `connect_timeout_secs`.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;
/// Time limit of one request unless the stage sets `request_timeout_secs`.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");

/// One Azure Storage queue.
pub struct AzureQueue {
    client: Arc<SdkClient>,
    /// The queue URL without a SAS, for messages.
    shown: String,
    redactor: Arc<Redactor>,
}

impl AzureQueue {
    /// The client of the queue `url` (an Azure one) with the credentials of the URL's SAS or
    /// of the stage's settings and environment ([`auth::resolve`]).
    pub fn new(url: &QueueUrl, stage: &StageConfig) -> Result<Self, QueueError> {
        let QueueUrl::Azure {
            endpoint,
            account,
            name,
            sas,
        } = url
        else {
            return Err(QueueError::Url(QueueUrlError::Shape {
                url: url.to_string(),
                reason: "not an Azure Storage queue".into(),
                expected: "https://ACCOUNT.queue.core.windows.net/NAME",
            }));
        };
        let shown = url.to_string();
        let https = endpoint.to_ascii_lowercase().starts_with("https://");
        let resolved = auth::resolve(account, name, https, sas.as_ref(), stage).map_err(|e| {
            QueueError::Credentials {
                queue: shown.clone(),
                reason: e.0,
            }
        })?;
        let mut secrets = resolved.secrets.clone();
        secrets.extend(stage.secrets());
        let redactor = Arc::new(Redactor::new(secrets));
        tracing::debug!("queue {shown}: authorised with {}", resolved.describe());
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(
                stage
                    .connect_timeout_secs
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS),
            ))
            .timeout(Duration::from_secs(
                stage
                    .request_timeout_secs
                    .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS),
            ))
            .build()
            .map_err(|e| QueueError::Connect {
                queue: shown.clone(),
                reason: redactor.scrub(&crate::errors::one_line(&e)),
            })?;
        let client_options = ClientOptions {
            per_call_policies: vec![resolved.policy()],
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                max_retries: stage.max_retries.map_or(RETRIES, |n| n as u32),
                max_total_elapsed: azure_core::time::Duration::seconds(
                    RETRY_ELAPSED.as_secs() as i64
                ),
                ..Default::default()
            }),
            transport: Some(Transport::new(Arc::new(http))),
            ..ClientOptions::default()
        };
        let options = QueueClientOptions {
            client_options,
            ..Default::default()
        };
        let queue_url =
            Url::parse(&format!("{}/{name}", endpoint.trim_end_matches('/'))).map_err(|e| {
                QueueError::Url(QueueUrlError::Shape {
                    url: shown.clone(),
                    reason: e.to_string(),
                    expected: "https://ACCOUNT.queue.core.windows.net/NAME",
                })
            })?;
        let client =
            SdkClient::new(queue_url, None, Some(options)).map_err(|e| QueueError::Connect {
                queue: shown.clone(),
                reason: redactor.scrub(&crate::errors::one_line(&e)),
            })?;
        Ok(Self {
            client: Arc::new(client),
            shown,
            redactor,
        })
    }

    /// One Get Messages.
    fn receive_once(&self, max: u32, visibility: u64) -> Result<Vec<Message>, QueueError> {
        let client = Arc::clone(&self.client);
        let answer = block_on(async move {
            let options = QueueClientReceiveMessagesOptions {
                number_of_messages: Some(max as i32),
                visibility_timeout: Some(visibility as i32),
                ..Default::default()
            };
            client.receive_messages(Some(options)).await?.into_model()
        })?
        .map_err(|e| self.error("receive", &e))?;
        answer
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|message| self.message(message))
            .collect()
    }

    fn message(&self, message: ReceivedMessage) -> Result<Message, QueueError> {
        let missing = |field: &str| QueueError::Service {
            queue: self.shown.clone(),
            operation: "receive",
            reason: format!("the answer has a message without {field}"),
        };
        Ok(Message {
            id: message.message_id.ok_or_else(|| missing("MessageId"))?,
            receipt: message.pop_receipt.ok_or_else(|| missing("PopReceipt"))?,
            body: event_body(message.message_text.as_deref().unwrap_or_default()),
            receive_count: message
                .dequeue_count
                .and_then(|count| u32::try_from(count).ok()),
        })
    }

    /// A failed call as a [`QueueError`]: no answer → `Connect`; an answer → `Service` with
    /// the error code explained; a credential failure → `Credentials`. Scrubbed.
    fn error(&self, operation: &'static str, error: &azure_core::Error) -> QueueError {
        use azure_core::error::ErrorKind;
        let queue = self.shown.clone();
        match error.kind() {
            ErrorKind::Connection | ErrorKind::Io => QueueError::Connect {
                queue,
                reason: self.redactor.scrub(&crate::errors::one_line(error)),
            },
            ErrorKind::Credential => QueueError::Credentials {
                queue,
                reason: self.redactor.scrub(&crate::errors::one_line(error)),
            },
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => QueueError::Service {
                queue,
                operation,
                reason: explain_code(u16::from(*status), error_code.as_deref()),
            },
            _ => QueueError::Service {
                queue,
                operation,
                reason: self.redactor.scrub(&crate::errors::one_line(error)),
            },
        }
    }
}

impl QueueClient for AzureQueue {
    fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let max = max.clamp(1, MAX_MESSAGES);
        // Get Messages takes 1 s to 7 days.
        let visibility = seconds(visibility).clamp(1, MAX_VISIBILITY_SECS);
        let deadline = Instant::now() + wait;
        let mut pause = POLL_FIRST;
        loop {
            let messages = self.receive_once(max, visibility)?;
            let left = deadline.saturating_duration_since(Instant::now());
            if !messages.is_empty() || left.is_zero() {
                return Ok(messages);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    fn set_visibility(
        &self,
        message: &mut Message,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        // Update Message takes 0 s to 7 days.
        let visibility = seconds(visibility).min(MAX_VISIBILITY_SECS) as i32;
        let client = Arc::clone(&self.client);
        let (id, receipt) = (message.id.clone(), message.receipt.clone());
        let answer = block_on(async move {
            let options = QueueClientUpdateMessageOptions::default();
            let response = client
                .update_message(&id, &receipt, visibility, Some(options))
                .await?;
            Ok::<_, azure_core::Error>(
                response
                    .headers()
                    .get_optional_string(&POP_RECEIPT)
                    .filter(|receipt| !receipt.is_empty()),
            )
        })?
        .map_err(|e| self.error("change visibility", &e))?;
        message.receipt = answer.ok_or_else(|| QueueError::Service {
            queue: self.shown.clone(),
            operation: "change visibility",
            reason: "the answer has no new pop receipt (x-ms-popreceipt)".into(),
        })?;
        Ok(())
    }

    fn delete(&self, message: &Message) -> Result<(), QueueError> {
        let client = Arc::clone(&self.client);
        let (id, receipt) = (message.id.clone(), message.receipt.clone());
        block_on(async move {
            let options = QueueClientDeleteMessageOptions::default();
            client
                .delete_message(&id, &receipt, Some(options))
                .await
                .map(drop)
        })?
        .map_err(|e| self.error("delete", &e))
    }
}

/// Whole seconds, rounded up (a visibility of 0.5 s is 1 s, not 0).
fn seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The notification payload of a message text: the text itself when it is JSON (an object or
/// array), else its base64 decoding when that is JSON (how Event Grid writes to a Storage
/// Queue), else the text unchanged (the consumer then says it is not an event).
pub fn event_body(text: &str) -> Vec<u8> {
    use base64::Engine;
    let looks_json = |bytes: &[u8]| {
        matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        )
    };
    if looks_json(text.as_bytes()) {
        return text.as_bytes().to_vec();
    }
    match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
        Ok(decoded) if looks_json(&decoded) => decoded,
        _ => text.as_bytes().to_vec(),
    }
}

/// What a status and error code of the queue service mean, for people.
fn explain_code(status: u16, code: Option<&str>) -> String {
    let code = code.unwrap_or("no error code");
    let meaning = match code {
        "PopReceiptMismatch" => {
            ": the pop receipt is no longer valid (the message's visibility was changed since, \
             or it became visible and another consumer received it)"
        }
        "MessageNotFound" => {
            ": the message is gone (deleted, or expired) or became visible and was received \
             again"
        }
        "QueueNotFound" => ": the queue does not exist",
        "AuthenticationFailed" => {
            ": the credential was refused (a wrong account key, or a SAS that is expired, \
             malformed or for another resource)"
        }
        "AuthorizationPermissionMismatch" | "AuthorizationFailure" => {
            ": the credential may not do this (a SAS needs the permissions `rup`; an Entra ID \
             identity needs the role Storage Queue Data Contributor: Storage Queue Data Message \
             Processor receives and deletes but cannot extend a message's visibility)"
        }
        _ => "",
    };
    format!("HTTP {status} {code}{meaning}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_or_the_base64_of_json() {
        let event = r#"{"eventType":"Microsoft.Storage.BlobCreated"}"#;
        assert_eq!(event_body(event), event.as_bytes());
        assert_eq!(
            event_body(&format!(" [{event}]")),
            format!(" [{event}]").as_bytes()
        );
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(event);
        assert_eq!(event_body(&encoded), event.as_bytes());
        // Neither: unchanged, for the consumer to refuse with the text.
        assert_eq!(event_body("hello"), b"hello");
        let not_json = base64::engine::general_purpose::STANDARD.encode("plain words");
        assert_eq!(event_body(&not_json), not_json.as_bytes());
    }

    #[test]
    fn visibility_seconds_round_up() {
        assert_eq!(seconds(Duration::ZERO), 0);
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_secs(30)), 30);
        assert_eq!(seconds(Duration::from_millis(30_001)), 31);
    }

    #[test]
    fn service_codes_are_explained() {
        let text = explain_code(400, Some("PopReceiptMismatch"));
        assert!(
            text.starts_with("HTTP 400 PopReceiptMismatch: the pop receipt is no longer valid")
        );
        assert!(
            explain_code(403, Some("AuthorizationPermissionMismatch"))
                .contains("Storage Queue Data Contributor")
        );
        assert_eq!(explain_code(500, None), "HTTP 500 no error code");
    }
}
