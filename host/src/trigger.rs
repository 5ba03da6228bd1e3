//! Storage notifications → the stage files they name, for `run --event` and `serve`.
//!
//! An object-created event must name the bucket (S3) or container (Azure, and the account
//! when both say one) of the configured stage; another bucket is an error naming it. An
//! object whose key no stage file can have (an empty `//` segment, a `.` or `..` segment, a
//! control character such as NUL, a leading `/` as S3 allows: see
//! [`crate::storage::url::check_object_key`]) is [`Resolved::unusable`], with its reason,
//! and the other objects of the payload are still resolved. Every entry point records each
//! as a pending error ([`crate::state::pending::record_error`]) and then treats it as done:
//! it is never read (object_store's paths cannot hold such keys: it would read another
//! object) and never retried (docs/unusable-keys.md). A key ending in `/` (a folder
//! marker), an object outside the stage's prefix and duplicates within one payload are
//! ignored with a log line, and so is a file of another format than `[source] format`
//! names. Whether a file is delivered again is for the delivery state to
//! decide (same ETag: skipped), so duplicate deliveries of an event send nothing twice.

use std::collections::BTreeSet;

use crate::events::{Notification, ObjectRef, show};
use crate::source::{Stage, StageError, StageFile, StoreKind};
use crate::storage::url::check_object_key;

/// Why notifications cannot be turned into files.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(
        "the event names {store} {bucket}{account}, which is not the configured stage {stage}: \
         add a configuration for it"
    )]
    UnknownBucket {
        store: &'static str,
        bucket: String,
        account: String,
        stage: String,
    },
    #[error(transparent)]
    Stage(#[from] StageError),
}

/// The files of a payload, in event order, and what was left out.
#[derive(Debug, Default)]
pub struct Resolved {
    pub files: Vec<StageFile>,
    /// Why events were not turned into files (one line each).
    pub ignored: Vec<String>,
    /// Objects of the stage's bucket whose key cannot be read, in event order. A caller
    /// acknowledges (answers, deletes the queue message of) a notification naming them once
    /// each is recorded as a pending error: waiting for them to be delivered would wait for
    /// ever.
    pub unusable: Vec<UnusableKey>,
}

/// An object a notification named that no stage file can be: its key cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableKey {
    /// The key as the event gave it (decoded).
    pub key: String,
    /// The id of the event that named it, if it had one.
    pub event_id: Option<String>,
    /// Why it cannot be read.
    pub reason: String,
}

fn store_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::S3 => "S3 bucket",
        StoreKind::Azure => "Azure container",
        StoreKind::Gcs => "GCS bucket",
        StoreKind::Local => "folder",
    }
}

/// Whether `object` is in the stage's bucket/container.
fn same_bucket(stage: &Stage, object: &ObjectRef) -> bool {
    let url = stage.stage_url();
    let kind_matches = url.kind() == object.store;
    let account_matches = match (url.account(), object.account.as_deref()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    };
    kind_matches && url.bucket() == object.bucket && account_matches
}

/// Resolves the created objects of `notifications` to files of `stage`.
pub fn resolve(stage: &Stage, notifications: &[Notification]) -> Result<Resolved, TriggerError> {
    let mut out = Resolved::default();
    let mut seen = BTreeSet::new();
    let prefix = stage.stage_url().key().to_string();
    for note in notifications {
        let object = match note {
            Notification::Created(object) => object,
            Notification::Test => {
                out.ignored.push("s3:TestEvent (acknowledged)".into());
                continue;
            }
            Notification::Ignored { reason } => {
                out.ignored.push(reason.clone());
                continue;
            }
        };
        if !same_bucket(stage, object) {
            return Err(TriggerError::UnknownBucket {
                store: store_name(object.store),
                bucket: object.bucket.clone(),
                account: object
                    .account
                    .as_deref()
                    .map(|a| format!(" of account {a}"))
                    .unwrap_or_default(),
                stage: stage.url(),
            });
        }
        if let Err(reason) = check_object_key(&object.key) {
            if !seen.insert(object.key.clone()) {
                continue;
            }
            let folder = object
                .key
                .strip_suffix('/')
                .is_some_and(|key| check_object_key(key).is_ok());
            if folder {
                out.ignored.push(format!(
                    "{} is a folder marker, not a file",
                    show(&object.key)
                ));
            } else {
                out.unusable.push(UnusableKey {
                    key: object.key.clone(),
                    event_id: object.event_id.clone(),
                    reason: reason.to_string(),
                });
            }
            continue;
        }
        let under_prefix = if stage.stage_url().is_prefix() {
            object.key.starts_with(&prefix)
        } else {
            object.key == prefix
        };
        if !under_prefix {
            out.ignored.push(format!(
                "{} is outside the stage {}",
                object.key,
                stage.url()
            ));
            continue;
        }
        if !seen.insert(object.key.clone()) {
            out.ignored
                .push(format!("{} (a duplicate in this payload)", object.key));
            continue;
        }
        match stage.file(&stage.stage_url().object_url(&object.key)) {
            Ok(file) => match stage.skips(&file) {
                Some(reason) => out.ignored.push(format!("{}: {reason}", object.key)),
                None => out.files.push(file),
            },
            Err(e @ (StageError::NotFound { .. } | StageError::Vanished { .. })) => {
                out.ignored
                    .push(format!("{}: {e} (deleted since the event?)", object.key));
            }
            // What the key says, not the store's state: this object only.
            Err(e @ (StageError::Url { .. } | StageError::Selection { .. })) => {
                out.unusable.push(UnusableKey {
                    key: object.key.clone(),
                    event_id: object.event_id.clone(),
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
