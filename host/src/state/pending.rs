//! Pending entries: a file an event named, recorded in the delivery state before the event
//! is acknowledged and removed once the file is delivered.
//!
//! `pending/<stage-id>/<file-id>.json` (ids as in [`crate::state::files`]):
//!
//! ```json
//! {"format": "stagepush-pending/1", "key": "unload/data_0_0_0.snappy.parquet",
//!  "eTag": "\"9b2c…\"", "url": "s3://stage/unload/data_0_0_0.snappy.parquet",
//!  "receivedAt": "2024-05-01T02:15:32.004Z", "eventId": "8KQ7Z2M1VX0C3B4N/00663186E36D8E1A5C"}
//! ```
//!
//! One entry per key: the same key named again (a duplicate delivery, a new version) is
//! the same entry, written over.
//!
//! A key no stage file can have (`sub//x.parquet`, `..`, NUL, a leading `/`) is not
//! pending: it is a **pending error**, `pending-errors/<stage-id>/<file-id>.json`, kept
//! until someone removes it, and shown by `stagepush status` (the rule, per entry point:
//! docs/unusable-keys.md):
//!
//! ```json
//! {"format": "stagepush-pending-error/1", "key": "unload/sub//x.parquet",
//!  "reason": "the key has an empty path segment (`//`): stagepush cannot read it (…)",
//!  "receivedAt": "2024-05-01T02:15:32.004Z", "eventId": "8KQ7Z2M1VX0C3B4N/…"}
//! ```

use serde::{Deserialize, Serialize};

use crate::source::StageFile;
use crate::state::files::{file_id, stage_id};
use crate::state::{PutMode, StateError, StateStore, Stored, Version};
use crate::trigger::UnusableKey;

/// The `format` of a pending entry.
pub const PENDING_FORMAT: &str = "stagepush-pending/1";

/// Where the pending entries of all stages are.
pub const PENDING_ROOT: &str = "pending/";

/// A file waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingEntry {
    pub format: String,
    /// The object key.
    pub key: String,
    /// The ETag the store reported when the event arrived.
    pub e_tag: Option<String>,
    /// The object's URL (what `Stage::file` resolves again).
    pub url: String,
    /// When the event arrived (RFC 3339, UTC).
    pub received_at: String,
    /// The id of the event that named it, if it had one.
    pub event_id: Option<String>,
}

impl PendingEntry {
    /// The entry for `file`, received now.
    pub fn new(file: &StageFile, event_id: Option<String>) -> Self {
        Self {
            format: PENDING_FORMAT.to_owned(),
            key: file.key.clone(),
            e_tag: file.e_tag.clone(),
            url: file.url.clone(),
            received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event_id,
        }
    }

    /// Parses a stored entry; `path` names it in the error.
    pub fn parse(path: &str, stored: &Stored) -> Result<Self, StateError> {
        let damaged = |reason: String| StateError::Damaged {
            path: path.to_owned(),
            reason,
        };
        let entry: PendingEntry =
            serde_json::from_slice(&stored.bytes).map_err(|e| damaged(e.to_string()))?;
        if entry.format != PENDING_FORMAT {
            return Err(damaged(format!(
                "format {:?}, expected {PENDING_FORMAT:?}",
                entry.format
            )));
        }
        Ok(entry)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// The `format` of a pending error.
pub const PENDING_ERROR_FORMAT: &str = "stagepush-pending-error/1";

/// Where the pending errors of all stages are.
pub const PENDING_ERRORS_ROOT: &str = "pending-errors/";

/// An object an event named whose key cannot be read (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingError {
    pub format: String,
    /// The object key, as the event gave it.
    pub key: String,
    /// Why it cannot be delivered.
    pub reason: String,
    /// When the event arrived (RFC 3339, UTC).
    pub received_at: String,
    /// The id of the event that named it, if it had one.
    pub event_id: Option<String>,
}

impl PendingError {
    /// The pending error for `unusable`, received now.
    pub fn new(unusable: &UnusableKey) -> Self {
        Self {
            format: PENDING_ERROR_FORMAT.to_owned(),
            key: unusable.key.clone(),
            reason: unusable.reason.clone(),
            received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event_id: unusable.event_id.clone(),
        }
    }

    /// Parses a stored pending error; `path` names it in the error.
    pub fn parse(path: &str, stored: &Stored) -> Result<Self, StateError> {
        let damaged = |reason: String| StateError::Damaged {
            path: path.to_owned(),
            reason,
        };
        let error: PendingError =
            serde_json::from_slice(&stored.bytes).map_err(|e| damaged(e.to_string()))?;
        if error.format != PENDING_ERROR_FORMAT {
            return Err(damaged(format!(
                "format {:?}, expected {PENDING_ERROR_FORMAT:?}",
                error.format
            )));
        }
        Ok(error)
    }
}

/// `pending-errors/<stage-id>/`.
pub fn pending_errors_prefix(stage_url: &str) -> String {
    format!("{PENDING_ERRORS_ROOT}{}/", stage_id(stage_url))
}

/// Writes the pending error of `unusable` durably (over an earlier one for its key).
pub fn record_error(
    state: &StateStore,
    stage_url: &str,
    unusable: &UnusableKey,
) -> Result<(), StateError> {
    let path = format!(
        "{}{}.json",
        pending_errors_prefix(stage_url),
        file_id(&unusable.key)
    );
    let json = serde_json::to_vec_pretty(&PendingError::new(unusable)).unwrap_or_default();
    state.put(&path, &json, PutMode::Overwrite).map(|_| ())
}

/// `pending/<stage-id>/`.
pub fn pending_prefix(stage_url: &str) -> String {
    format!("{PENDING_ROOT}{}/", stage_id(stage_url))
}

/// `pending/<stage-id>/<file-id>.json`.
pub fn pending_path(stage_url: &str, key: &str) -> String {
    format!("{}{}.json", pending_prefix(stage_url), file_id(key))
}

/// Writes `entry` durably. `true` when no entry for its key was there before.
pub fn record(
    state: &StateStore,
    stage_url: &str,
    entry: &PendingEntry,
) -> Result<bool, StateError> {
    let path = pending_path(stage_url, &entry.key);
    let json = entry.to_json();
    match state.put(&path, &json, PutMode::Create) {
        Ok(_) => Ok(true),
        Err(StateError::Conflict { .. }) => {
            state.put(&path, &json, PutMode::Overwrite)?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Deletes the entry at `path` unless it was written since it was read as `version` (a
/// newer event for the key: it stays for the next round). `true` when deleted.
pub fn remove_if_unchanged(
    state: &StateStore,
    path: &str,
    version: &Version,
) -> Result<bool, StateError> {
    match state.get(path)? {
        None => Ok(true),
        Some(stored) if &stored.version == version => {
            state.delete(path)?;
            Ok(true)
        }
        Some(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_use_the_state_ids() {
        let path = pending_path("s3://stage/unload/", "unload/a.parquet");
        assert_eq!(
            path,
            format!(
                "pending/{}/{}.json",
                stage_id("s3://stage/unload/"),
                file_id("unload/a.parquet")
            )
        );
        assert!(path.starts_with(&pending_prefix("s3://stage/unload/")));
    }

    #[test]
    fn an_entry_round_trips_with_its_documented_names() {
        let entry = PendingEntry {
            format: PENDING_FORMAT.into(),
            key: "unload/a.parquet".into(),
            e_tag: Some("\"abc\"".into()),
            url: "s3://stage/unload/a.parquet".into(),
            received_at: "2024-05-01T02:15:32.004Z".into(),
            event_id: None,
        };
        let json: serde_json::Value = serde_json::from_slice(&entry.to_json()).unwrap();
        for name in ["format", "key", "eTag", "url", "receivedAt", "eventId"] {
            assert!(json.get(name).is_some(), "{name} in {json}");
        }
        let stored = Stored {
            bytes: entry.to_json(),
            version: Version("v".into()),
        };
        assert_eq!(PendingEntry::parse("p", &stored).unwrap(), entry);
        let other = Stored {
            bytes: br#"{"format":"x","key":"k","url":"u","receivedAt":"t"}"#.to_vec(),
            version: Version("v".into()),
        };
        assert!(matches!(
            PendingEntry::parse("p", &other),
            Err(StateError::Damaged { .. })
        ));
    }

    #[test]
    fn a_pending_error_round_trips_with_its_documented_names() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateStore::open(
            dir.path().to_str().unwrap(),
            &crate::source::StageConfig::default(),
        )
        .unwrap();
        let unusable = UnusableKey {
            key: "unload/a\0.parquet".into(),
            event_id: Some("e1".into()),
            reason: "the key contains the control character U+0000".into(),
        };
        record_error(&state, "s3://stage/unload/", &unusable).unwrap();
        record_error(&state, "s3://stage/unload/", &unusable).unwrap();
        let paths = state
            .list(&pending_errors_prefix("s3://stage/unload/"))
            .unwrap();
        assert_eq!(paths.len(), 1, "one document per key: {paths:?}");
        let stored = state.get(&paths[0]).unwrap().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&stored.bytes).unwrap();
        for name in ["format", "key", "reason", "receivedAt", "eventId"] {
            assert!(json.get(name).is_some(), "{name} in {json}");
        }
        let error = PendingError::parse(&paths[0], &stored).unwrap();
        assert_eq!(
            (error.key.as_str(), error.reason.as_str()),
            (unusable.key.as_str(), unusable.reason.as_str())
        );
    }

    #[test]
    fn a_newer_entry_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateStore::open(
            dir.path().to_str().unwrap(),
            &crate::source::StageConfig::default(),
        )
        .unwrap();
        let entry = |received: &str| PendingEntry {
            format: PENDING_FORMAT.into(),
            key: "unload/a.parquet".into(),
            e_tag: None,
            url: "s3://stage/unload/a.parquet".into(),
            received_at: received.into(),
            event_id: None,
        };
        let stage = "s3://stage/unload/";
        assert!(record(&state, stage, &entry("1")).unwrap());
        let path = pending_path(stage, "unload/a.parquet");
        let first = state.get(&path).unwrap().unwrap().version;
        assert!(
            !record(&state, stage, &entry("2")).unwrap(),
            "same key, same entry"
        );
        assert_eq!(
            state.list(&pending_prefix(stage)).unwrap(),
            vec![path.clone()]
        );
        assert!(!remove_if_unchanged(&state, &path, &first).unwrap());
        let second = state.get(&path).unwrap().unwrap().version;
        assert!(remove_if_unchanged(&state, &path, &second).unwrap());
        assert!(state.list(&pending_prefix(stage)).unwrap().is_empty());
    }
}
