//! `stagepush status`: what the delivery state says. The last runs, the files of every
//! stage by status, the dead letters by reason, and every document that cannot be read.
//!
//! [`collect`] reads the state (and, given a stage's listing, compares it with the state)
//! and returns a typed [`Status`], which serializes to the `--json` form (the human form
//! is rendered by the command line, `cli/status_render.rs`):
//!
//! ```json
//! {
//!   "format": "stagepush-status/1",
//!   "state": "/work/stagepush-state",
//!   "runsTotal": 7,
//!   "runs": [                                 // the last N runs, newest first
//!     {"path": "runs/20250601T120000123Z-…json", "runId": "…", "stageId": "0123456789abcdef",
//!      "startedAt": "2025-06-01T12:00:00.123Z", "finishedAt": "…", "durationSecs": 1.5,
//!      "rows": {"read": 1000, "delivered": 950, "filtered": 38, "unchanged": 0,
//!               "deadLettered": 12, "deadLetteredByStage": {"plugin": 12}},
//!      "recordsDelivered": 950, "filesSkipped": 0, "filesResumed": 1,
//!      "fatalError": null, "watermarks": {"Customer": "2025-05-31T23:59:59Z"},
//!      "watermarksFromStoppedRun": false}      // plus "interrupted": "SIGINT" when it was
//!   ],
//!   "stages": [
//!     {"stageId": "0123456789abcdef",
//!      "stage": "s3://bucket/unload/",          // null if only dead letters name it
//!      "files": {"done": 2, "partial": 0, "claimed": 1, "pending": 1, "damaged": 0,
//!                "total": 4},
//!      "claimed": [{"key": "…", "owner": "host:pid:run-id",
//!                   "expiresAt": "…", "expiresAtMs": 1748779260000}],
//!      "listed": 4,                             // files in the stage's listing (--source)
//!      "notListed": 0,                          // state documents of files not listed
//!      "deadLetters": {"total": 15,
//!                      "byReason": {"endpoint/http-400": 3, "plugin/rejected": 12},
//!                      "byMessage": {"plugin/rejected": {   // the top 5 messages of each
//!                        "messages": [{"message": "CUSTOMER_ID is null", "rows": 12,
//!                                      "example": {"file": "unload/a.parquet", "row": 3,
//!                                                  "message": "CUSTOMER_ID is null"}}],
//!                        "otherRows": 0, "otherMessages": 0}, …}},
//!      "pendingErrors": [{"key": "unload/sub//x.parquet",  // event keys `serve` or
//!                         "reason": "the key has an empty path segment (`//`): …",
//!                         "receivedAt": "…", "eventId": "…"}]}   // `run --event` refused
//!   ],
//!   "deadLetters": {"total": 15, "byReason": {"endpoint/http-400": 3, "plugin/rejected": 12}},
//!   "damaged": [{"path": "files/0123456789abcdef/….json",
//!                "reason": "not a state document: EOF while parsing …"}]
//! }
//! ```
//!
//! `listed` and `notListed` are `null` unless a stage listing was given. Files count as:
//! `done`; `claimed` (unfinished, with a live lease); `partial` (some segments
//! acknowledged, no live lease); `pending` (nothing acknowledged and no live lease, or,
//! with a listing, a listed file with no state document or one describing another version
//! of it); `damaged` (its document cannot be read: also in `damaged`).
//!
//! Pending errors are the objects storage events named whose key cannot be read
//! (`pending-errors/<stage-id>/`, see `crate::state::pending`); they stay until removed.
//!
//! Dead letters are counted once per row: a row dead-lettered by several runs (key,
//! file version, row) counts with the reason of its newest chunk, as `retry` sees it.
//!
//! Damaged: a file state document that
//! [`FileState::parse`](crate::state::files::FileState::parse) refuses; a run report that
//! is not JSON with `runId`, `startedAt` and `rows`; a dead-letter chunk that is empty,
//! whose last line is cut short, or with a line that is not a dead letter naming its key
//! and file version (the rules of `retry`; the readable lines of such a chunk still
//! count). Nothing damaged is counted as empty or absent: a listed file whose document is
//! damaged is `damaged`, not `pending`.
//!
//! This module owns the options and [`collect`], which gathers the documents of every stage
//! shown; the parts: `view` (the typed status), `run_summary` ([`RunSummary`], a run
//! report as `status` reads it), `stage` (a stage's files by status), `letters` (dead
//! letters by reason).

mod letters;
mod run_summary;
mod stage;
mod view;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use run_summary::{RunReportProblem, RunSummary};
pub use view::{
    ClaimedFile, Damaged, FileCounts, PendingErrorView, QueueDeadLetterView, ReasonCounts,
    StageStatus, Status,
};

use super::files;
use super::{StateError, StateStore};
use crate::deadletter::reasons::{MessageTally, TOP_MESSAGES};
use crate::queue::dead_letter::{
    QUEUE_DEAD_LETTERS_ROOT, QueueDeadLetter, queue_dead_letters_prefix,
};
use crate::source::StageFile;
use crate::state::pending::{PENDING_ERRORS_ROOT, PendingError, pending_errors_prefix};

/// The queue dead letters' paths by stage id.
fn queue_letter_paths(
    store: &StateStore,
    options: &StatusOptions,
) -> Result<BTreeMap<String, Vec<String>>, StateError> {
    let paths = match &options.stage {
        Some(stage) => store.list(&queue_dead_letters_prefix(&stage.url))?,
        None => store.list(QUEUE_DEAD_LETTERS_ROOT)?,
    };
    let mut by_stage: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in paths {
        match path_parts(&path)[..] {
            [_, stage_id, name] if name.ends_with(".json") => {
                by_stage.entry(stage_id.to_string()).or_default().push(path)
            }
            _ => tracing::debug!(%path, "status: not a queue dead letter"),
        }
    }
    Ok(by_stage)
}

/// The `format` of the `--json` output.
pub const STATUS_FORMAT: &str = "stagepush-status/1";
/// Runs shown by default.
pub const DEFAULT_RUNS: usize = 5;

const FILES_ROOT: &str = "files/";
const DEAD_LETTERS_ROOT: &str = "dead-letters/";

/// A stage whose files are compared with the state.
#[derive(Debug, Clone)]
pub struct ListedStage {
    /// The stage's state key, as the run names it (`Stage::state_key()`).
    pub url: String,
    /// Its listing (`Stage::list()`).
    pub files: Vec<StageFile>,
}

/// What to show.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// How many of the last runs.
    pub runs: usize,
    /// Only this stage, and compare the state with its listing.
    pub stage: Option<ListedStage>,
    /// Now, milliseconds since 1970 (a lease is live until it expires).
    pub now_ms: u64,
}

/// Reads the state. A damaged document is in [`Status::damaged`]; an error is a store
/// that cannot be read at all.
pub fn collect(store: &StateStore, options: &StatusOptions) -> Result<Status, StateError> {
    let mut damaged = Vec::new();
    let (runs_total, runs) = run_summary::collect_runs(store, options.runs, &mut damaged)?;

    // The documents of every stage shown, by stage id.
    let (file_paths, letter_paths) = match &options.stage {
        Some(stage) => (
            store.list(&files::files_prefix(&stage.url))?,
            store.list(&files::dead_letters_prefix(&stage.url))?,
        ),
        None => (store.list(FILES_ROOT)?, store.list(DEAD_LETTERS_ROOT)?),
    };
    let mut stage_files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in file_paths {
        match path_parts(&path)[..] {
            [_, stage_id, name] if name.ends_with(".json") => {
                stage_files
                    .entry(stage_id.to_string())
                    .or_default()
                    .push(path);
            }
            _ => tracing::debug!(%path, "status: not a file state document"),
        }
    }
    // Stage id → file id → chunk paths (sorted: chunk names start with their time).
    let mut stage_letters: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for path in letter_paths {
        match path_parts(&path)[..] {
            [_, stage_id, file_id, name] if name.ends_with(".ndjson") => stage_letters
                .entry(stage_id.to_string())
                .or_default()
                .entry(file_id.to_string())
                .or_default()
                .push(path),
            _ => tracing::debug!(%path, "status: not a dead-letter chunk"),
        }
    }
    let error_paths = match &options.stage {
        Some(stage) => store.list(&pending_errors_prefix(&stage.url))?,
        None => store.list(PENDING_ERRORS_ROOT)?,
    };
    let mut stage_errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in error_paths {
        match path_parts(&path)[..] {
            [_, stage_id, name] if name.ends_with(".json") => stage_errors
                .entry(stage_id.to_string())
                .or_default()
                .push(path),
            _ => tracing::debug!(%path, "status: not a pending error"),
        }
    }
    let mut stage_queue_letters = queue_letter_paths(store, options)?;
    let mut stage_ids: BTreeSet<String> = stage_files.keys().cloned().collect();
    stage_ids.extend(stage_letters.keys().cloned());
    stage_ids.extend(stage_errors.keys().cloned());
    stage_ids.extend(stage_queue_letters.keys().cloned());
    if let Some(stage) = &options.stage {
        stage_ids.insert(files::stage_id(&stage.url));
    }

    let mut stages = Vec::new();
    let mut dead_letters = ReasonCounts::default();
    let mut all_messages = MessageTally::default();
    for stage_id in stage_ids {
        let mut status = stage::stage_status(
            store,
            &stage_id,
            stage_files.remove(&stage_id).unwrap_or_default(),
            options,
            &mut damaged,
        )?;
        let mut messages = MessageTally::default();
        for chunks in stage_letters.remove(&stage_id).unwrap_or_default().values() {
            letters::count_letters(
                store,
                chunks,
                &mut status.dead_letters,
                &mut messages,
                &mut damaged,
            )?;
        }
        status.dead_letters.by_message = messages.top(TOP_MESSAGES);
        all_messages.merge(&messages);
        for path in stage_errors.remove(&stage_id).unwrap_or_default() {
            let Some(stored) = store.get(&path)? else {
                continue; // removed since the listing
            };
            match PendingError::parse(&path, &stored) {
                Ok(error) => status.pending_errors.push(PendingErrorView {
                    key: error.key,
                    reason: error.reason,
                    received_at: error.received_at,
                    event_id: error.event_id,
                }),
                Err(StateError::Damaged { path, reason }) => {
                    damaged.push(Damaged { path, reason });
                }
                Err(e) => return Err(e),
            }
        }
        status
            .pending_errors
            .sort_by(|a, b| a.received_at.cmp(&b.received_at));
        for path in stage_queue_letters.remove(&stage_id).unwrap_or_default() {
            let Some(stored) = store.get(&path)? else {
                continue;
            };
            match QueueDeadLetter::parse(&path, &stored) {
                Ok(l) => status.queue_dead_letters.push(QueueDeadLetterView {
                    queue: l.queue,
                    message_id: l.message_id,
                    receive_count: l.receive_count,
                    reason: l.reason,
                    received_at: l.received_at,
                }),
                Err(StateError::Damaged { path, reason }) => {
                    damaged.push(Damaged { path, reason });
                }
                Err(e) => return Err(e),
            }
        }
        status
            .queue_dead_letters
            .sort_by(|a, b| a.received_at.cmp(&b.received_at));
        for (reason, n) in &status.dead_letters.by_reason {
            dead_letters.add(reason, *n);
        }
        stages.push(status);
    }
    dead_letters.by_message = all_messages.top(TOP_MESSAGES);

    Ok(Status {
        format: STATUS_FORMAT,
        state: store.location().to_string(),
        runs_total,
        runs,
        stages,
        dead_letters,
        damaged,
    })
}

fn path_parts(path: &str) -> Vec<&str> {
    path.split('/').collect()
}
