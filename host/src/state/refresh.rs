//! Full refresh (`run --full-refresh`): the stage's **generation**, one document
//! `refresh/<stage-id>.json`.
//!
//! A full refresh writes a new generation (a fresh id) before it claims any file. From
//! then on, a file document of another generation (or of none: written before the first
//! refresh) counts as not delivered: the next claim starts it over under the current
//! generation, as it does a replaced file. So a full refresh that is interrupted halfway
//! is resumed by the next run, `--full-refresh` or not: the files it re-delivered are done
//! in the current generation and skipped, the others are sent again. Nothing is lost and
//! nothing delivered by the refresh is sent a third time. A stage that never had a full
//! refresh has no generation document and files are done as before.
//!
//! The generation is never removed: "done" means "done since the last full refresh
//! started". Documents with a `generation` field cannot be read by stagepush versions from
//! before it (their parser refuses unknown fields): they report the state as damaged
//! rather than skip files wrongly.

use serde::{Deserialize, Serialize};

use super::files::stage_id;
use super::{PutMode, STATE_FORMAT, StateError, StateStore};

/// `refresh/`.
pub const REFRESH_PREFIX: &str = "refresh/";

/// The generation document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Generation {
    pub format: String,
    /// The stage URL (its state key).
    pub stage: String,
    /// The generation's id (the run id of the full refresh that started it).
    pub generation: String,
    /// When the full refresh started (RFC 3339).
    pub started_at: String,
}

/// `refresh/<stage-id>.json`.
pub fn generation_path(stage_url: &str) -> String {
    format!("{REFRESH_PREFIX}{}.json", stage_id(stage_url))
}

/// The stage's current generation, if it ever had a full refresh.
pub fn current(store: &StateStore, stage_url: &str) -> Result<Option<Generation>, StateError> {
    let path = generation_path(stage_url);
    let Some(stored) = store.get(&path)? else {
        return Ok(None);
    };
    let damaged = |reason: String| StateError::Damaged {
        path: path.clone(),
        reason,
    };
    let doc: Generation = serde_json::from_slice(&stored.bytes)
        .map_err(|e| damaged(format!("not a generation document: {e}")))?;
    if doc.format != STATE_FORMAT {
        return Err(damaged(format!(
            "format {:?}, this stagepush reads {STATE_FORMAT:?}",
            doc.format
        )));
    }
    Ok(Some(doc))
}

/// Starts a new generation (id `run_id`): every file done before counts as not delivered.
pub fn start(store: &StateStore, stage_url: &str, run_id: &str) -> Result<Generation, StateError> {
    let doc = Generation {
        format: STATE_FORMAT.to_string(),
        stage: stage_url.to_string(),
        generation: run_id.to_string(),
        started_at: crate::wire::time::now_rfc3339(),
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    store.put(&generation_path(stage_url), &bytes, PutMode::Overwrite)?;
    Ok(doc)
}

/// Whether a document of generation `doc` is out of date under `current` (sent again).
pub fn outdated(doc: Option<&str>, current: Option<&str>) -> bool {
    match current {
        Some(current) => doc != Some(current),
        None => false,
    }
}

/// What the state says of some files, for the messages at a run's start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Survey {
    /// Delivered (done, this version of the file), in any generation.
    pub done: u64,
    /// Of those, the ones of an earlier generation than the current one (a run sends
    /// them again).
    pub outdated_done: u64,
}

/// Reads the documents of `files` (one read each) and counts them.
pub fn survey(
    store: &StateStore,
    stage_url: &str,
    files: &[crate::source::StageFile],
) -> Result<Survey, StateError> {
    let current = current(store, stage_url)?.map(|g| g.generation);
    let mut survey = Survey::default();
    for file in files {
        let path = super::files::file_path(stage_url, &file.key);
        let Some(stored) = store.get(&path)? else {
            continue;
        };
        let doc = super::files::FileState::parse(&path, &stored)?;
        if doc.status == super::files::FileStatus::Done
            && doc.identity == super::files::identity(file)
        {
            survey.done += 1;
            if outdated(doc.generation.as_deref(), current.as_deref()) {
                survey.outdated_done += 1;
            }
        }
    }
    Ok(survey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StageConfig;

    #[test]
    fn a_generation_outdates_every_other_document() {
        assert!(!outdated(None, None));
        assert!(!outdated(Some("g1"), None));
        assert!(outdated(None, Some("g1")));
        assert!(outdated(Some("g0"), Some("g1")));
        assert!(!outdated(Some("g1"), Some("g1")));
    }

    #[test]
    fn the_latest_generation_is_current() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(
            dir.path().join("state").to_str().unwrap(),
            &StageConfig::default(),
        )
        .unwrap();
        assert_eq!(current(&store, "s3://b/p/").unwrap(), None);
        start(&store, "s3://b/p/", "run-1").unwrap();
        let second = start(&store, "s3://b/p/", "run-2").unwrap();
        assert_eq!(current(&store, "s3://b/p/").unwrap(), Some(second));
        // Per stage.
        assert_eq!(current(&store, "s3://b/other/").unwrap(), None);
        store
            .put(
                &generation_path("s3://b/p/"),
                b"{\"torn",
                PutMode::Overwrite,
            )
            .unwrap();
        assert!(matches!(
            current(&store, "s3://b/p/"),
            Err(StateError::Damaged { .. })
        ));
    }
}
