//! Queue triggers (`run --queue`, `serve --queue`, `[trigger] queue`): storage notifications
//! pulled from Amazon SQS or an Azure Storage Queue, and each message deleted only once every
//! object it names is done in the delivery state.
//!
//! This module owns the contract between the consumer ([`consumer`]) and the queue services:
//! [`QueueClient`] (receive, change visibility, delete), [`Message`], [`QueueUrl`] and the
//! settings ([`QueueOptions`]). One file per service implements the client.

pub mod azure;
pub mod consumer;
pub mod dead_letter;
pub mod heartbeat;
pub mod merge;
pub mod sqs;
pub mod url;

pub use url::{QueueKind, QueueUrl, QueueUrlError};

use std::time::Duration;

/// Messages asked for per receive, by default (SQS allows 1–10, Azure 1–32).
pub const DEFAULT_MAX_MESSAGES: u32 = 10;
/// How long a received message stays invisible to other consumers, by default; while its
/// objects are being delivered the consumer extends it (a heartbeat).
pub const DEFAULT_VISIBILITY_SECS: u64 = 120;
/// How long one receive waits for a message (SQS long polling, at most 20 s; Azure polls).
pub const DEFAULT_WAIT_SECS: u64 = 20;

/// The services' limits, checked by `[trigger]` (`crate::config::TriggerSection`).
pub mod limits {
    /// SQS `ReceiveMessage` `MaxNumberOfMessages`: 1 to 10.
    pub const SQS_MAX_MESSAGES: u32 = 10;
    /// Azure `Get Messages` `numofmessages`: 1 to 32.
    pub const AZURE_MAX_MESSAGES: u32 = 32;
    /// SQS `WaitTimeSeconds`: 0 to 20.
    pub const SQS_MAX_WAIT_SECS: u64 = 20;
    /// The shortest visibility timeout stagepush takes (a heartbeat needs time to extend).
    pub const MIN_VISIBILITY_SECS: u64 = 1;
    /// SQS's longest visibility timeout (12 hours; Azure allows 7 days).
    pub const MAX_VISIBILITY_SECS: u64 = 12 * 60 * 60;
}

/// How the consumer uses a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    pub url: QueueUrl,
    /// Messages per receive.
    pub max_messages: u32,
    /// Visibility timeout of a received message (and of each extension).
    pub visibility: Duration,
    /// Longest wait of one receive for the first message.
    pub wait: Duration,
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The service's message id (for logs and reports).
    pub id: String,
    /// What deletes or extends this receipt of the message: SQS's receipt handle, Azure's pop
    /// receipt (replaced by every visibility change).
    pub receipt: String,
    /// The body as a notification payload (Azure: base64 decoded when Event Grid encoded it).
    pub body: Vec<u8>,
    /// How many times the message has been received, this time included, if the service
    /// says (SQS `ApproximateReceiveCount`, Azure `DequeueCount`).
    pub receive_count: Option<u32>,
}

/// A queue service: blocking calls (they run on the storage I/O runtime), callable from any
/// thread.
pub trait QueueClient: Send + Sync {
    /// Up to `max` messages, each hidden from other consumers for `visibility`; waits up to
    /// `wait` for the first one, and returns none when none came.
    fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError>;
    /// Hides `message` for `visibility` from now (zero: visible again at once). Updates
    /// `message.receipt` when the service issues a new one (Azure).
    fn set_visibility(&self, message: &mut Message, visibility: Duration)
    -> Result<(), QueueError>;
    /// Deletes `message` (it is done).
    fn delete(&self, message: &Message) -> Result<(), QueueError>;
}

/// The client of the queue `url`, with the credentials of the stage `stage` (SQS: its S3
/// credential chain; Azure: a SAS in the URL, else the stage's Azure settings and chain,
/// `azure::auth`).
pub fn connect(
    url: &QueueUrl,
    stage: &crate::storage::StageConfig,
) -> Result<Box<dyn QueueClient>, QueueError> {
    match url.kind() {
        QueueKind::Sqs => Ok(Box::new(sqs::SqsClient::new(url, stage)?)),
        QueueKind::Azure => Ok(Box::new(azure::AzureQueue::new(url, stage)?)),
    }
}

/// Why a queue cannot be used. No message holds a credential or a SAS.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Url(#[from] QueueUrlError),
    /// The queue's credentials cannot be found or used.
    #[error("queue {queue}: {reason}")]
    Credentials { queue: String, reason: String },
    /// The service cannot be reached.
    #[error("queue {queue}: cannot connect: {reason}")]
    Connect { queue: String, reason: String },
    /// The service refused or failed an operation.
    #[error("queue {queue}: {operation} failed: {reason}")]
    Service {
        queue: String,
        operation: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}
