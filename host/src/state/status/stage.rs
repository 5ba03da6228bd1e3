//! One stage's files by status: the state documents of its files, compared with the
//! stage's listing when one is given (a listed file with no document, or a document of
//! another version of it, is pending), with the leases that are live now.

use std::collections::{BTreeSet, HashMap};

use super::{ClaimedFile, Damaged, FileCounts, ReasonCounts, StageStatus, StatusOptions};
use crate::source::StageFile;
use crate::state::files::{self, FileState, FileStatus};
use crate::state::{StateError, StateStore};

/// The files of one stage.
pub(super) fn stage_status(
    store: &StateStore,
    stage_id: &str,
    paths: Vec<String>,
    options: &StatusOptions,
    damaged: &mut Vec<Damaged>,
) -> Result<StageStatus, StateError> {
    let listing = options
        .stage
        .as_ref()
        .filter(|stage| files::stage_id(&stage.url) == stage_id);
    let mut states = Vec::new();
    let mut damaged_paths = BTreeSet::new();
    for path in &paths {
        let Some(stored) = store.get(path)? else {
            continue; // deleted since the listing
        };
        match FileState::parse(path, &stored) {
            Ok(state) => states.push(state),
            Err(StateError::Damaged { path, reason }) => {
                damaged_paths.insert(path.clone());
                damaged.push(Damaged { path, reason });
            }
            Err(e) => return Err(e),
        }
    }
    let mut stage_url = states.first().map(|s| s.stage.clone());
    let mut counts = FileCounts {
        damaged: damaged_paths.len() as u64,
        ..FileCounts::default()
    };
    let (mut listed, mut not_listed) = (None, None);
    if let Some(stage) = listing {
        stage_url = Some(stage.url.clone());
        let listed_files: HashMap<&str, &StageFile> =
            stage.files.iter().map(|f| (f.key.as_str(), f)).collect();
        let mut seen = BTreeSet::new();
        let mut outside = 0;
        states.retain(|state| {
            seen.insert(state.key.clone());
            match listed_files.get(state.key.as_str()) {
                // Another version of the file: the next run starts it over.
                Some(file) if files::identity(file) != state.identity => {
                    counts.pending += 1;
                    false
                }
                Some(_) => true,
                None => {
                    outside += 1;
                    true
                }
            }
        });
        for file in &stage.files {
            let path = files::file_path(&stage.url, &file.key);
            if !seen.contains(&file.key) && !damaged_paths.contains(&path) {
                counts.pending += 1;
            }
        }
        listed = Some(stage.files.len() as u64);
        not_listed = Some(outside);
    }
    for (status, n) in files::summarize(&states, options.now_ms) {
        match status {
            "done" => counts.done += n,
            "partial" => counts.partial += n,
            "claimed" => counts.claimed += n,
            _ => counts.pending += n,
        }
    }
    counts.total = counts.done + counts.partial + counts.claimed + counts.pending + counts.damaged;
    let claimed = states
        .iter()
        .filter(|s| s.status == FileStatus::Partial)
        .filter_map(|s| {
            let lease = s
                .lease
                .as_ref()
                .filter(|l| l.expires_at_ms > options.now_ms)?;
            Some(ClaimedFile {
                key: s.key.clone(),
                owner: lease.owner.clone(),
                expires_at: lease.expires_at.clone(),
                expires_at_ms: lease.expires_at_ms,
            })
        })
        .collect();
    Ok(StageStatus {
        stage_id: stage_id.to_string(),
        stage: stage_url,
        files: counts,
        claimed,
        listed,
        not_listed,
        dead_letters: ReasonCounts::default(),
        pending_errors: Vec::new(),
        queue_dead_letters: Vec::new(),
    })
}
