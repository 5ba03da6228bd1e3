//! `stagepush status`: what the delivery state says. The last runs, the files of every
//! stage by status, the dead letters by reason, and every document that cannot be read.
//!
//! [`collect`] reads the state (and, given a stage's listing, compares it with the state);
//! [`render_text`] writes the human form; the [`Status`] value serializes to the `--json`
//! form:
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
//!                      "byReason": {"endpoint/http-400": 3, "plugin/rejected": 12}},
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
//! (`pending-errors/<stage-id>/`, see `crate::serve::pending`); they stay until removed.
//!
//! Dead letters are counted once per row: a row dead-lettered by several runs (key,
//! file version, row) counts with the reason of its newest chunk, as `retry` sees it.
//!
//! Damaged: a file state document that [`FileState::parse`] refuses; a run report that is
//! not JSON with `runId`, `startedAt` and `rows`; a dead-letter chunk that is empty, whose
//! last line is cut short, or with a line that is not a dead letter naming its key and
//! file version (the rules of `retry`; the readable lines of such a chunk still count).
//! Nothing damaged is counted as empty or absent: a listed file whose document is damaged
//! is `damaged`, not `pending`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::files::{self, FileState, FileStatus, RUNS_PREFIX};
use super::{StateError, StateStore};
use crate::serve::pending::{PENDING_ERRORS_ROOT, PendingError, pending_errors_prefix};
use crate::source::StageFile;

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

/// The whole status (see the module docs for its JSON).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub format: &'static str,
    /// The state location (no credentials).
    pub state: String,
    /// Run reports in the state.
    pub runs_total: u64,
    /// The last runs, newest first.
    pub runs: Vec<RunSummary>,
    pub stages: Vec<StageStatus>,
    /// Over every stage shown.
    pub dead_letters: ReasonCounts,
    /// Documents that cannot be read.
    pub damaged: Vec<Damaged>,
}

impl Status {
    /// Whether every document could be read.
    pub fn is_healthy(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// One run, from its report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The report's path in the state.
    #[serde(default)]
    pub path: String,
    pub run_id: String,
    /// The stage the run delivered (from the report's dead-letter location).
    #[serde(default)]
    pub stage_id: Option<String>,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub duration_secs: f64,
    pub rows: RunRows,
    #[serde(default)]
    pub records_delivered: u64,
    #[serde(default)]
    pub files_skipped: u64,
    #[serde(default)]
    pub files_resumed: u64,
    #[serde(default)]
    pub fatal_error: Option<String>,
    /// The signal (or `shutdown`) that stopped the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    #[serde(default)]
    pub watermarks: BTreeMap<String, String>,
    /// The run stopped before the end: its watermarks cover only what was acknowledged.
    #[serde(default)]
    pub watermarks_from_stopped_run: bool,
}

impl RunSummary {
    /// Whether the run stopped before the end (reports written before
    /// `watermarksFromStoppedRun` existed say so by a fatal error).
    pub fn stopped(&self) -> bool {
        self.watermarks_from_stopped_run || self.fatal_error.is_some()
    }
}

/// Row counts of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRows {
    pub read: u64,
    pub delivered: u64,
    pub filtered: u64,
    #[serde(default)]
    pub unchanged: u64,
    pub dead_lettered: u64,
    #[serde(default)]
    pub dead_lettered_by_stage: BTreeMap<String, u64>,
}

/// The fields of a run report read besides [`RunSummary`]'s.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunExtra {
    #[serde(default)]
    state_dead_letters: String,
}

/// One stage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    pub stage_id: String,
    /// The stage URL (from `--source` or its state documents), when known.
    pub stage: Option<String>,
    pub files: FileCounts,
    /// Unfinished files with a live lease.
    pub claimed: Vec<ClaimedFile>,
    /// Files in the stage's listing (with a listing only).
    pub listed: Option<u64>,
    /// State documents of files that are not in the listing (with a listing only).
    pub not_listed: Option<u64>,
    pub dead_letters: ReasonCounts,
    /// Objects events named whose key cannot be read, oldest first.
    pub pending_errors: Vec<PendingErrorView>,
}

/// A pending error: an object an event named whose key cannot be read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingErrorView {
    pub key: String,
    pub reason: String,
    pub received_at: String,
    pub event_id: Option<String>,
}

/// Files of a stage by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCounts {
    pub done: u64,
    pub partial: u64,
    pub claimed: u64,
    pub pending: u64,
    pub damaged: u64,
    pub total: u64,
}

/// A file some worker holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedFile {
    pub key: String,
    pub owner: String,
    pub expires_at: String,
    pub expires_at_ms: u64,
}

/// Dead-lettered rows by reason (`<stage>/<kind>`, e.g. `plugin/rejected`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCounts {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
}

impl ReasonCounts {
    fn add(&mut self, reason: &str, n: u64) {
        self.total += n;
        *self.by_reason.entry(reason.to_string()).or_default() += n;
    }
}

/// A document that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damaged {
    pub path: String,
    pub reason: String,
}

/// The parts of a dead letter that `status` needs (the rest is skipped, not kept).
#[derive(Deserialize)]
struct Letter {
    file: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    identity: Option<String>,
    row: u64,
    stage: String,
    kind: String,
}

/// Reads the state. A damaged document is in [`Status::damaged`]; an error is a store
/// that cannot be read at all.
pub fn collect(store: &StateStore, options: &StatusOptions) -> Result<Status, StateError> {
    let mut damaged = Vec::new();
    let (runs_total, runs) = collect_runs(store, options.runs, &mut damaged)?;

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
    let mut stage_ids: BTreeSet<String> = stage_files.keys().cloned().collect();
    stage_ids.extend(stage_letters.keys().cloned());
    stage_ids.extend(stage_errors.keys().cloned());
    if let Some(stage) = &options.stage {
        stage_ids.insert(files::stage_id(&stage.url));
    }

    let mut stages = Vec::new();
    let mut dead_letters = ReasonCounts::default();
    for stage_id in stage_ids {
        let mut status = stage_status(
            store,
            &stage_id,
            stage_files.remove(&stage_id).unwrap_or_default(),
            options,
            &mut damaged,
        )?;
        for chunks in stage_letters.remove(&stage_id).unwrap_or_default().values() {
            count_letters(store, chunks, &mut status.dead_letters, &mut damaged)?;
        }
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
        for (reason, n) in &status.dead_letters.by_reason {
            dead_letters.add(reason, *n);
        }
        stages.push(status);
    }

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

/// The last `n` run reports, newest first, and how many there are.
fn collect_runs(
    store: &StateStore,
    n: usize,
    damaged: &mut Vec<Damaged>,
) -> Result<(u64, Vec<RunSummary>), StateError> {
    let mut paths: Vec<String> = store
        .list(RUNS_PREFIX)?
        .into_iter()
        .filter(|p| p.ends_with(".json"))
        .collect();
    // `runs/<started>-<run-id>.json`: the names sort by start time.
    paths.sort();
    let total = paths.len() as u64;
    let mut runs = Vec::new();
    for path in paths.iter().rev().take(n) {
        let Some(stored) = store.get(path)? else {
            continue; // deleted since the listing
        };
        match parse_run(path, &stored.bytes) {
            Ok(run) => runs.push(run),
            Err(reason) => damaged.push(Damaged {
                path: path.clone(),
                reason,
            }),
        }
    }
    Ok((total, runs))
}

fn parse_run(path: &str, bytes: &[u8]) -> Result<RunSummary, String> {
    if bytes.is_empty() {
        return Err("it is empty (a torn write?)".into());
    }
    let mut run: RunSummary =
        serde_json::from_slice(bytes).map_err(|e| format!("not a run report: {e}"))?;
    let extra: RunExtra =
        serde_json::from_slice(bytes).map_err(|e| format!("not a run report: {e}"))?;
    run.path = path.to_string();
    // `<state>/dead-letters/<stage-id>/`
    run.stage_id = extra
        .state_dead_letters
        .trim_end_matches('/')
        .rsplit_once('/')
        .filter(|(rest, id)| rest.ends_with("dead-letters") && !id.is_empty())
        .map(|(_, id)| id.to_string());
    Ok(run)
}

/// The files of one stage.
fn stage_status(
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
    })
}

/// Counts the dead letters of one file (its chunks, oldest first): each (key, file
/// version, row) once, with the reason of its newest letter.
fn count_letters(
    store: &StateStore,
    chunks: &[String],
    counts: &mut ReasonCounts,
    damaged: &mut Vec<Damaged>,
) -> Result<(), StateError> {
    let mut rows: HashMap<(String, Option<String>, u64), String> = HashMap::new();
    for path in chunks {
        let Some(stored) = store.get(path)? else {
            continue; // removed by `retry` since the listing
        };
        let mut problem = None;
        let mut lines = 0u64;
        for (n, line) in stored.bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines += 1;
            match serde_json::from_slice::<Letter>(line) {
                Ok(letter) => {
                    if letter.key.is_none() || letter.identity.is_none() {
                        // `retry` cannot use it; counted still, by its file name.
                        problem.get_or_insert_with(|| {
                            format!("line {} names no object key or file version", n + 1)
                        });
                    }
                    let reason = format!("{}/{}", letter.stage, letter.kind);
                    let key = letter.key.unwrap_or(letter.file);
                    rows.insert((key, letter.identity, letter.row), reason);
                }
                Err(e) => {
                    problem
                        .get_or_insert_with(|| format!("line {} is not a dead letter: {e}", n + 1));
                }
            }
        }
        if lines == 0 {
            problem.get_or_insert_with(|| "it is empty (a torn write?)".into());
        } else if !stored.bytes.ends_with(b"\n") {
            problem.get_or_insert_with(|| "its last line is cut short".into());
        }
        if let Some(reason) = problem {
            damaged.push(Damaged {
                path: path.clone(),
                reason,
            });
        }
    }
    for reason in rows.into_values() {
        counts.add(&reason, 1);
    }
    Ok(())
}

/// The human form of `status`.
pub fn render_text(status: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "state: {}", status.state);
    let _ = writeln!(out);
    if status.runs.is_empty() {
        let _ = writeln!(out, "runs: {} (none shown)", status.runs_total);
    } else {
        let _ = writeln!(
            out,
            "runs: last {} of {}, newest first",
            status.runs.len(),
            status.runs_total
        );
    }
    for run in &status.runs {
        let _ = writeln!(
            out,
            "  run {} started {}, took {}{}",
            run.run_id,
            run.started_at,
            duration_text(run.duration_secs),
            match &run.stage_id {
                Some(id) => format!(", stage {id}"),
                None => String::new(),
            }
        );
        let r = &run.rows;
        let _ = writeln!(
            out,
            "    rows: {} read, {} delivered, {} filtered, {} unchanged, {} dead-lettered",
            r.read, r.delivered, r.filtered, r.unchanged, r.dead_lettered
        );
        let _ = writeln!(
            out,
            "    records delivered: {}; files: {} skipped, {} resumed",
            run.records_delivered, run.files_skipped, run.files_resumed
        );
        for (entity_type, mark) in &run.watermarks {
            let note = if run.stopped() {
                " (from a run that stopped before the end: it covers only what CluedIn acknowledged)"
            } else {
                ""
            };
            let _ = writeln!(out, "    watermark {entity_type}: {mark}{note}");
        }
        if let Some(error) = &run.fatal_error {
            let _ = writeln!(out, "    fatal error: {error}");
        }
        if let Some(signal) = &run.interrupted {
            let _ = writeln!(out, "    interrupted by {signal}");
        }
    }
    for stage in &status.stages {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "stage {} (id {})",
            stage.stage.as_deref().unwrap_or("?"),
            stage.stage_id
        );
        let f = &stage.files;
        let _ = write!(
            out,
            "  files: {} done, {} partial, {} claimed, {} pending",
            f.done, f.partial, f.claimed, f.pending
        );
        if f.damaged > 0 {
            let _ = write!(out, ", {} damaged", f.damaged);
        }
        if let Some(listed) = stage.listed {
            let _ = write!(out, "; {listed} in the stage listing");
        }
        if let Some(n) = stage.not_listed.filter(|n| *n > 0) {
            let _ = write!(out, ", {n} in the state but no longer listed");
        }
        let _ = writeln!(out);
        for claim in &stage.claimed {
            let _ = writeln!(
                out,
                "  claimed: {} by {} until {}",
                claim.key, claim.owner, claim.expires_at
            );
        }
        render_reasons(&mut out, "  dead letters", &stage.dead_letters);
        if !stage.pending_errors.is_empty() {
            let _ = writeln!(
                out,
                "  pending errors (event keys that cannot be delivered): {}",
                stage.pending_errors.len()
            );
            for error in &stage.pending_errors {
                let _ = writeln!(
                    out,
                    "    {}: {} (received {})",
                    crate::events::show(&error.key),
                    error.reason,
                    error.received_at
                );
            }
        }
    }
    let _ = writeln!(out);
    render_reasons(&mut out, "dead letters in total", &status.dead_letters);
    if !status.damaged.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "damaged documents: {}", status.damaged.len());
        for d in &status.damaged {
            let _ = writeln!(out, "  damaged: {}: {}", d.path, d.reason);
        }
    }
    out
}

/// `850 ms`, `12.3 s`, `2 h 5 min`.
fn duration_text(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".into();
    }
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round() as u64);
    }
    if secs < 600.0 {
        return format!("{secs:.1} s");
    }
    let minutes = (secs / 60.0).round() as u64;
    match minutes {
        0..120 => format!("{minutes} min"),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

fn render_reasons(out: &mut String, title: &str, counts: &ReasonCounts) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "{title}: {}", counts.total);
    let indent = " ".repeat(title.len() - title.trim_start().len() + 2);
    for (reason, n) in &counts.by_reason {
        let _ = writeln!(out, "{indent}{reason}: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PutMode;
    use crate::state::files::{FileCounts as DocCounts, Lease};
    use crate::storage::StageConfig;

    fn store() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(
            dir.path().join("state").to_str().unwrap(),
            &StageConfig::default(),
        )
        .unwrap();
        (dir, store)
    }

    fn doc(stage: &str, key: &str, status: FileStatus, acked: Vec<[u64; 2]>) -> FileState {
        FileState {
            format: crate::state::STATE_FORMAT.into(),
            stage: stage.into(),
            key: key.into(),
            identity: format!("etag:{key}"),
            size: 1,
            status,
            outcome: None,
            error: None,
            segment_rows: 10,
            segments: Some(3),
            acked,
            dispatch_limit: 0,
            receipts: Vec::new(),
            counts: DocCounts::default(),
            lease: None,
            run_id: "r".into(),
            updated_at: "t".into(),
            resent_segments: 0,
        }
    }

    fn put_doc(store: &StateStore, d: &FileState) {
        store
            .put(
                &files::file_path(&d.stage, &d.key),
                &d.to_json(),
                PutMode::Overwrite,
            )
            .unwrap();
    }

    fn letter(key: &str, row: u64, stage: &str, kind: &str) -> String {
        serde_json::json!({"file": key, "key": key, "identity": format!("etag:{key}"),
            "row": row, "stage": stage, "kind": kind, "message": "m", "input": {}})
        .to_string()
    }

    #[test]
    fn counts_files_leases_and_deduplicated_dead_letters() {
        let (_dir, store) = store();
        let stage = "s3://bucket/unload/";
        put_doc(&store, &doc(stage, "a", FileStatus::Done, vec![[0, 3]]));
        put_doc(&store, &doc(stage, "b", FileStatus::Partial, vec![[0, 1]]));
        put_doc(&store, &doc(stage, "c", FileStatus::Partial, vec![]));
        let mut held = doc(stage, "d", FileStatus::Partial, vec![]);
        held.lease = Some(Lease {
            owner: "h:1:r".into(),
            expires_at_ms: 2_000,
            expires_at: "later".into(),
        });
        put_doc(&store, &held);
        let prefix = files::file_dead_letters_prefix(stage, "a");
        let old = [
            letter("a", 1, "plugin", "rejected"),
            letter("a", 2, "endpoint", "http-400"),
        ]
        .join("\n")
            + "\n";
        store
            .put(
                &format!("{prefix}0000000000001-r1-000000.ndjson"),
                old.as_bytes(),
                PutMode::Create,
            )
            .unwrap();
        // A later run dead-lettered row 2 again, for another reason: the newest wins.
        let new = letter("a", 2, "plugin", "trap") + "\n";
        store
            .put(
                &format!("{prefix}0000000000002-r2-000000.ndjson"),
                new.as_bytes(),
                PutMode::Create,
            )
            .unwrap();

        let status = collect(
            &store,
            &StatusOptions {
                runs: 5,
                stage: None,
                now_ms: 1_000,
            },
        )
        .unwrap();
        assert!(status.is_healthy(), "{:?}", status.damaged);
        assert_eq!(status.stages.len(), 1);
        let s = &status.stages[0];
        assert_eq!(s.stage.as_deref(), Some(stage));
        assert_eq!(
            s.files,
            FileCounts {
                done: 1,
                partial: 1,
                claimed: 1,
                pending: 1,
                damaged: 0,
                total: 4
            }
        );
        assert_eq!(s.claimed.len(), 1);
        assert_eq!(s.claimed[0].owner, "h:1:r");
        assert_eq!(s.dead_letters.total, 2);
        assert_eq!(s.dead_letters.by_reason["plugin/rejected"], 1);
        assert_eq!(s.dead_letters.by_reason["plugin/trap"], 1);
        assert_eq!(status.dead_letters, s.dead_letters);

        // The lease has lapsed: the file is pending again.
        let later = collect(
            &store,
            &StatusOptions {
                runs: 5,
                stage: None,
                now_ms: 3_000,
            },
        )
        .unwrap();
        assert_eq!(later.stages[0].files.pending, 2);
        assert!(later.stages[0].claimed.is_empty());
        let text = render_text(&later);
        assert!(
            text.contains("files: 1 done, 1 partial, 0 claimed, 2 pending"),
            "{text}"
        );
        assert!(text.contains("    plugin/trap: 1"), "{text}");
    }

    #[test]
    fn damaged_documents_are_reported_not_empty() {
        let (_dir, store) = store();
        let stage = "s3://bucket/unload/";
        let d = doc(stage, "a", FileStatus::Done, vec![[0, 3]]);
        let bytes = d.to_json();
        let path = files::file_path(stage, "a");
        store
            .put(&path, &bytes[..bytes.len() / 2], PutMode::Create)
            .unwrap();
        store
            .put(
                "runs/20250101T000000000Z-r.json",
                b"{\"runId\":",
                PutMode::Create,
            )
            .unwrap();
        let chunk = format!(
            "{}0000000000001-r-000000.ndjson",
            files::file_dead_letters_prefix(stage, "a")
        );
        let text = letter("a", 1, "plugin", "rejected") + "\n{\"file\":";
        store.put(&chunk, text.as_bytes(), PutMode::Create).unwrap();
        let status = collect(
            &store,
            &StatusOptions {
                runs: 5,
                stage: None,
                now_ms: 0,
            },
        )
        .unwrap();
        let paths: Vec<&str> = status.damaged.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "runs/20250101T000000000Z-r.json",
                path.as_str(),
                chunk.as_str()
            ]
        );
        assert!(!status.is_healthy());
        assert_eq!(status.runs_total, 1);
        assert!(status.runs.is_empty());
        assert_eq!(status.stages[0].files.damaged, 1);
        assert_eq!(status.stages[0].files.total, 1);
        // The readable lines still count.
        assert_eq!(status.dead_letters.total, 1);
        let text = render_text(&status);
        assert!(
            text.contains(&format!("damaged: {path}: not a state document")),
            "{text}"
        );
    }

    #[test]
    fn pending_errors_are_shown_with_their_stage() {
        let (_dir, store) = store();
        let stage = "s3://bucket/unload/";
        put_doc(
            &store,
            &doc(stage, "unload/a", FileStatus::Done, vec![[0, 3]]),
        );
        let unusable = crate::trigger::UnusableKey {
            key: "unload/sub//x.parquet".into(),
            event_id: Some("ev-1".into()),
            reason: "the key has an empty path segment (`//`)".into(),
        };
        crate::serve::pending::record_error(&store, stage, &unusable).unwrap();
        // Another stage with nothing but a pending error is shown too.
        crate::serve::pending::record_error(&store, "s3://bucket/other/", &unusable).unwrap();
        let status = collect(
            &store,
            &StatusOptions {
                runs: 5,
                stage: None,
                now_ms: 0,
            },
        )
        .unwrap();
        assert!(status.is_healthy(), "{:?}", status.damaged);
        assert_eq!(status.stages.len(), 2);
        let s = status
            .stages
            .iter()
            .find(|s| s.stage_id == files::stage_id(stage))
            .unwrap();
        assert_eq!(s.files.done, 1);
        assert_eq!(s.pending_errors.len(), 1);
        assert_eq!(s.pending_errors[0].key, unusable.key);
        assert_eq!(s.pending_errors[0].event_id.as_deref(), Some("ev-1"));
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json["pendingErrors"][0]["reason"], unusable.reason);
        let text = render_text(&status);
        assert!(
            text.contains("pending errors (event keys that cannot be delivered): 1")
                && text.contains(
                    "\"unload/sub//x.parquet\": the key has an empty path segment (`//`)"
                ),
            "{text}"
        );
    }
}
