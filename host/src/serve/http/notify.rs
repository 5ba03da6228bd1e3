//! Storage notifications (`POST /events`): parse the payload, resolve its objects in the
//! stage, and record each file as pending in the state before answering.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::events::{self, Notification};
use crate::state::StateError;
use crate::trigger::{self, TriggerError, UnusableKey};

use super::{App, Body, json_response, text};
use crate::state::pending::{self, PendingEntry};

/// Why a payload's files were not all recorded; [`RecordError::status`] is the answer
/// (503: the sender retries).
#[derive(Debug, thiserror::Error)]
pub(super) enum RecordError {
    /// The payload names a bucket or container that is not the stage's.
    #[error("{0}")]
    UnknownBucket(TriggerError),
    /// The store could not be asked about the payload's objects.
    #[error("{0} (the event can be sent again)")]
    Stage(TriggerError),
    /// An object whose key cannot be read could not be recorded as a pending error.
    #[error(
        "cannot record the unusable key {key} as a pending error: {source} (the event can be \
         sent again)"
    )]
    PendingError {
        /// The key, shown on one line ([`events::show`]).
        key: String,
        source: StateError,
    },
    /// A file could not be recorded as pending.
    #[error("cannot record {url} as pending: {source} (the event can be sent again)")]
    Pending {
        /// The file's URL.
        url: String,
        source: StateError,
    },
    /// The blocking task that records the files failed (a bug).
    #[error("internal error: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl RecordError {
    /// The HTTP status answering the payload.
    pub(super) fn status(&self) -> StatusCode {
        match self {
            RecordError::UnknownBucket(_) => StatusCode::BAD_REQUEST,
            RecordError::Stage(_)
            | RecordError::PendingError { .. }
            | RecordError::Pending { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RecordError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<TriggerError> for RecordError {
    fn from(e: TriggerError) -> Self {
        match e {
            TriggerError::UnknownBucket { .. } => RecordError::UnknownBucket(e),
            TriggerError::Stage(_) => RecordError::Stage(e),
        }
    }
}

/// What a payload became.
struct Accepted {
    /// URLs of the files recorded as pending.
    files: Vec<String>,
    ignored: Vec<String>,
    /// Objects whose key cannot be read, recorded as pending errors.
    refused: Vec<UnusableKey>,
    /// Files that were not pending before.
    new: usize,
}

/// Parses, resolves and records the files of a notification payload; answers 200 only
/// once every file is recorded in the state. An object whose key cannot be read is
/// recorded as a pending error (shown by `status`) and the others are still queued: 200
/// once both are recorded, even when nothing could be queued, since sending the payload
/// again cannot change that (Pub/Sub push and Eventarc redeliver any 4xx,
/// docs/unusable-keys.md). 503 (the sender
/// retries) means the state could not be written or the store could not be asked.
/// `cloud_event`: the context attributes of a binary-mode CloudEvent (its `ce-*` headers),
/// whose data is the body.
pub(super) async fn deliver(
    app: &Arc<App>,
    body: Bytes,
    cloud_event: Option<&[(String, String)]>,
) -> Response<Body> {
    let parsed = match cloud_event {
        Some(attributes) => events::parse_binary(attributes, &body),
        None => events::parse(&body),
    };
    let notifications = match parsed {
        Ok(notifications) => notifications,
        Err(e) => {
            tracing::warn!("refused an event: {e}");
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    app.metrics.add_events(&notifications);
    let worker = Arc::clone(app);
    let result = tokio::task::spawn_blocking(move || record(&worker, &notifications)).await;
    let result = result.map_err(RecordError::from).and_then(|r| r);
    match result {
        Ok(accepted) => {
            for reason in &accepted.ignored {
                tracing::info!("event ignored: {reason}");
            }
            if !accepted.files.is_empty() {
                app.signal.wake();
            }
            let refused: Vec<Value> = accepted
                .refused
                .iter()
                .map(|u| json!({ "key": u.key, "reason": u.reason }))
                .collect();
            json_response(
                StatusCode::OK,
                &json!({
                    "accepted": accepted.files,
                    "new": accepted.new,
                    "ignored": accepted.ignored,
                    "refused": refused,
                }),
            )
        }
        Err(e) => {
            let status = e.status();
            tracing::warn!("event not accepted ({}): {e}", status.as_u16());
            text(status, e.to_string())
        }
    }
}

/// The blocking part of [`deliver`]: HEAD each object, write its pending entry.
fn record(app: &App, notifications: &[Notification]) -> Result<Accepted, RecordError> {
    let resolved = trigger::resolve(&app.job.stage, notifications)?;
    let event_ids: HashMap<&str, &str> = notifications
        .iter()
        .filter_map(Notification::as_created)
        .filter_map(|object| Some((object.key.as_str(), object.event_id.as_deref()?)))
        .collect();
    for unusable in &resolved.unusable {
        tracing::error!(
            "an event names {} in the stage's {}, which cannot be delivered: {}{}; recorded as a \
             pending error (see `stagepush status`), the event's other objects are queued",
            events::show(&unusable.key),
            app.job.stage.stage_url().bucket(),
            unusable.reason,
            unusable
                .event_id
                .as_deref()
                .map(|id| format!(" (event {id})"))
                .unwrap_or_default()
        );
        pending::record_error(&app.job.state, &app.stage_url, unusable).map_err(|source| {
            RecordError::PendingError {
                key: events::show(&unusable.key),
                source,
            }
        })?;
    }
    let mut accepted = Accepted {
        files: Vec::new(),
        ignored: resolved.ignored,
        refused: resolved.unusable,
        new: 0,
    };
    let mut failure = None;
    for file in resolved.files {
        if let Some(reason) = app.selection.as_ref().and_then(|s| s.rejects(&file)) {
            accepted
                .ignored
                .push(format!("{} is not selected: {reason}", file.url));
            continue;
        }
        let event_id = event_ids.get(file.key.as_str()).map(|id| (*id).to_owned());
        let entry = PendingEntry::new(&file, event_id);
        match pending::record(&app.job.state, &app.stage_url, &entry) {
            Ok(new) => {
                tracing::info!(
                    "queued {}{}",
                    file.url,
                    entry
                        .event_id
                        .as_deref()
                        .map(|id| format!(" (event {id})"))
                        .unwrap_or_default()
                );
                accepted.new += usize::from(new);
                accepted.files.push(file.url);
            }
            Err(source) => {
                failure = Some(RecordError::Pending {
                    url: file.url,
                    source,
                });
                break;
            }
        }
    }
    app.metrics.add_queue_depth(accepted.new);
    if let Some(failure) = failure {
        if accepted.new > 0 {
            app.signal.wake();
        }
        return Err(failure);
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::StageError;

    #[test]
    fn a_foreign_bucket_is_400_and_a_store_failure_503_to_be_sent_again() {
        let foreign = RecordError::from(TriggerError::UnknownBucket {
            store: "bucket",
            bucket: "other".into(),
            account: String::new(),
            stage: "s3://stage/".into(),
        });
        assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
        assert!(matches!(foreign, RecordError::UnknownBucket(_)));
        assert!(
            foreign
                .to_string()
                .starts_with("the event names bucket other"),
            "{foreign}"
        );
        let store = RecordError::from(TriggerError::Stage(StageError::Vanished {
            object: "s3://stage/a".into(),
        }));
        assert_eq!(store.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            store
                .to_string()
                .ends_with(" (the event can be sent again)"),
            "{store}"
        );
    }
}
