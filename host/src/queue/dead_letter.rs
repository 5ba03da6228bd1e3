//! Queue dead letters: a message that can never be delivered (its body is not JSON or has
//! an unknown shape, or it names another bucket or container) is deleted from the queue and
//! kept here, in the delivery state, so that `stagepush status` shows it:
//!
//! `queue-dead-letters/<stage-id>/<message-id>.json` (`<message-id>` as a file id):
//!
//! ```json
//! {"format": "stagepush-queue-dead-letter/1", "queue": "https://sqs.eu-west-1.amazonaws.com/1/q",
//!  "messageId": "5fea7756-…", "receiveCount": 1, "reason": "the event is not JSON: …",
//!  "receivedAt": "2024-05-01T02:15:32.004Z", "body": "…", "bodyTruncated": false}
//! ```
//!
//! The body is kept up to [`MAX_BODY_BYTES`] (lossy UTF-8).

use serde::{Deserialize, Serialize};

use super::Message;
use crate::state::files::{file_id, stage_id};
use crate::state::{PutMode, StateError, StateStore, Stored};

/// The `format` of a queue dead letter.
pub const QUEUE_DEAD_LETTER_FORMAT: &str = "stagepush-queue-dead-letter/1";
/// Where the queue dead letters of all stages are.
pub const QUEUE_DEAD_LETTERS_ROOT: &str = "queue-dead-letters/";
/// How much of a message body a dead letter keeps.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A message that can never be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDeadLetter {
    pub format: String,
    /// The queue URL (without a SAS).
    pub queue: String,
    pub message_id: String,
    pub receive_count: Option<u32>,
    /// Why it can never be delivered.
    pub reason: String,
    /// When it was received (RFC 3339, UTC).
    pub received_at: String,
    /// The body, its first [`MAX_BODY_BYTES`].
    pub body: String,
    pub body_truncated: bool,
}

impl QueueDeadLetter {
    /// The dead letter of `message` from `queue`, received now.
    pub fn new(queue: &str, message: &Message, reason: &str) -> Self {
        let cut = message.body.len().min(MAX_BODY_BYTES);
        Self {
            format: QUEUE_DEAD_LETTER_FORMAT.to_owned(),
            queue: queue.to_owned(),
            message_id: message.id.clone(),
            receive_count: message.receive_count,
            reason: reason.to_owned(),
            received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            body: String::from_utf8_lossy(&message.body[..cut]).into_owned(),
            body_truncated: cut < message.body.len(),
        }
    }

    /// Parses a stored dead letter; `path` names it in the error.
    pub fn parse(path: &str, stored: &Stored) -> Result<Self, StateError> {
        let damaged = |reason: String| StateError::Damaged {
            path: path.to_owned(),
            reason,
        };
        let letter: QueueDeadLetter =
            serde_json::from_slice(&stored.bytes).map_err(|e| damaged(e.to_string()))?;
        if letter.format != QUEUE_DEAD_LETTER_FORMAT {
            return Err(damaged(format!(
                "format {:?}, expected {QUEUE_DEAD_LETTER_FORMAT:?}",
                letter.format
            )));
        }
        Ok(letter)
    }
}

/// Where the queue dead letters of the stage `stage_url` are.
pub fn queue_dead_letters_prefix(stage_url: &str) -> String {
    format!("{QUEUE_DEAD_LETTERS_ROOT}{}/", stage_id(stage_url))
}

/// Keeps `letter` (one document per message id: a message received again is written over).
pub fn record(
    state: &StateStore,
    stage_url: &str,
    letter: &QueueDeadLetter,
) -> Result<(), StateError> {
    let path = format!(
        "{}{}.json",
        queue_dead_letters_prefix(stage_url),
        file_id(&letter.message_id)
    );
    let json = serde_json::to_vec_pretty(letter).unwrap_or_default();
    state.put(&path, &json, PutMode::Overwrite).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Version;

    #[test]
    fn a_dead_letter_keeps_the_first_64_kib_of_the_body_and_round_trips() {
        let message = Message {
            id: "m-1".into(),
            receipt: "r".into(),
            body: vec![b'x'; MAX_BODY_BYTES + 10],
            receive_count: Some(3),
        };
        let letter = QueueDeadLetter::new("http://q/1/n", &message, "the event is not JSON");
        assert_eq!(letter.body.len(), MAX_BODY_BYTES);
        assert!(letter.body_truncated);
        let stored = Stored {
            bytes: serde_json::to_vec(&letter).unwrap(),
            version: Version("v".into()),
        };
        assert_eq!(QueueDeadLetter::parse("p", &stored).unwrap(), letter);
        let json: serde_json::Value = serde_json::from_slice(&stored.bytes).unwrap();
        for name in ["queue", "messageId", "receiveCount", "reason", "body"] {
            assert!(json.get(name).is_some(), "{name} in {json}");
        }
        assert!(queue_dead_letters_prefix("s3://b/p/").starts_with(QUEUE_DEAD_LETTERS_ROOT));
    }
}
