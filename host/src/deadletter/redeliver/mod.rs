//! `stagepush retry` (and `run --retry-rejected`): the dead letters kept in the delivery
//! state, sent again.
//!
//! 1. Every chunk under `dead-letters/<stage-id>/` is read; each line is a
//!    [`DeadLetter`] naming its object key, file version (`identity`) and row. A line that
//!    does not parse is an error naming the chunk and line (nothing is changed then). The
//!    same row may be in several chunks (a crash between writing a new chunk and deleting
//!    the old ones): the newest chunk wins (names start with the time they were written).
//! 2. Per key, the file as it is now: another version than the letters' → the letters are
//!    *superseded* (dropped: `run` delivers the new version whole); no file → the letters
//!    stay (*file gone*).
//! 3. Every other row is read again (just that row, adjacent rows together), transformed
//!    by the plugin given (a new version, say) and its records sent. A row whose every
//!    record was stored, or that the plugin now filters, leaves the dead letters; a row
//!    rejected again stays, with the new reason.
//! 4. Per file, one new chunk with what remains is written, then the chunks read are
//!    deleted: a crash in between leaves duplicates, which step 1 collapses. The rows
//!    rejected again are appended to the local `dead-letters.ndjson` too.
//! 5. The file's state document gets its counts moved (dead-lettered → delivered or
//!    filtered) when no worker holds the file; a conflict is retried, a lease skips it.
//!
//! A fatal sink error (401, 403, 404, retries exhausted) stops the retry: the files done
//! before it keep their result, the file in progress keeps its dead letters as they were.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use arrow_array::RecordBatch;

use crate::bindings::types::{ColumnSchema, SourceFile};
use crate::deadletter::input_json::row_json;
use crate::deadletter::{DeadLetter, DeadLetterWriter};
use crate::pipeline::{PluginReport, Receipt, display_name, now_rfc3339};
use crate::plugin::{Plugin, PluginError, Runner};
use crate::sink::{Batch, Batcher, CluedInSink, RowRef, SinkError};
use crate::source::parquet::ReadOptions;
use crate::source::{Stage, StageError, StageFile, StageSource, StoreKind};
use crate::state::files::{self, FileState};
use crate::state::{PutMode, StateError, StateStore};
use crate::transform::{ArrowInput, Encoder, RowStage};
use crate::wire::Shape;
use crate::wire::time::now_ms;

/// Attempts at updating a file's state document when others write it at the same time.
const COUNT_UPDATE_ATTEMPTS: usize = 5;

/// What a retry needs besides the sink.
#[derive(Clone)]
pub struct RetryOptions {
    pub stage: Stage,
    /// The plugin to transform the rows with (`--plugin`: possibly a new version).
    pub plugin: Arc<Plugin>,
    pub plugin_config: Vec<(String, String)>,
    /// Rows per plugin call (adjacent rows are read and transformed together).
    pub batch_rows: usize,
    pub shape: Shape,
    pub state: StateStore,
    /// Where the human-readable `dead-letters.ndjson` log is (appended to).
    pub dead_letter_dir: PathBuf,
}

/// Why a retry could not be done. A fatal sink error is not one of these: it ends the
/// retry with [`RetryReport::fatal_error`] set, after the files finished before it.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// A dead-letter chunk of the state cannot be read as dead letters.
    #[error(
        "dead-letter chunk {chunk} of the state is damaged ({reason}); move it out of the state to retry the others"
    )]
    Damaged { chunk: String, reason: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("dead-letter output {path}: {source}")]
    DeadLetters {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

/// Rows by what the retry did with them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryCounts {
    /// Rows read, transformed and sent again (`delivered + filtered + stillRejected`).
    pub retried: u64,
    /// Every record of the row was stored: the row left the dead letters.
    pub delivered: u64,
    /// The plugin now filters the row out: it left the dead letters.
    pub filtered: u64,
    /// Rejected again (by the plugin, the encoder, the endpoint or the file): kept, with the
    /// new reason.
    pub still_rejected: u64,
    /// The file was replaced since: dropped (`run` delivers the new version).
    pub superseded: u64,
    /// The file no longer exists: kept.
    pub file_gone: u64,
}

/// What happened to the dead letters of one file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryFileReport {
    /// The file as dead letters name it (its path for local stages, its URL otherwise).
    pub file: String,
    pub key: String,
    /// `retried`, `superseded`, `file-gone` or `not-finished` (a fatal error stopped the
    /// retry in this file: its dead letters are as they were).
    pub outcome: &'static str,
    pub rows: RetryCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The retry report (`--report FILE`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryReport {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    pub stage: String,
    /// The delivery state location.
    pub state: String,
    /// Where the state keeps this stage's dead letters.
    pub state_dead_letters: String,
    pub plugin: PluginReport,
    /// Dead-letter chunks read.
    pub chunks: u64,
    /// Distinct dead-lettered rows found (after collapsing duplicates).
    pub letters: u64,
    /// Lines that repeated a row of a newer chunk (left behind by an interrupted retry).
    pub duplicates: u64,
    pub rows: RetryCounts,
    /// Dead letters of the stage left in the state.
    pub remaining: u64,
    pub records_sent: u64,
    pub records_delivered: u64,
    pub records_rejected: u64,
    pub requests: u64,
    pub retries: u64,
    pub bytes_sent: u64,
    /// 2xx answers whose body was not CluedIn's JSON (counted delivered; see `sink`).
    pub responses_not_cluedin_json: u64,
    pub receipts: Vec<Receipt>,
    pub files: Vec<RetryFileReport>,
    /// The local dead-letter log the rows rejected again were appended to.
    pub dead_letters: PathBuf,
    /// Set when a fatal error stopped the retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal_error: Option<String>,
}

impl RetryReport {
    /// `retry: N rows retried: D delivered, F filtered, R still rejected, S superseded, G
    /// file gone`.
    pub fn summary(&self) -> String {
        let r = &self.rows;
        format!(
            "retry: {} rows retried: {} delivered, {} filtered, {} still rejected, {} superseded, {} file gone",
            r.retried, r.delivered, r.filtered, r.still_rejected, r.superseded, r.file_gone
        )
    }
}

/// The dead letters of one `dead-letters/<stage-id>/<file-id>/` folder.
#[derive(Default)]
struct Folder {
    /// Its chunks, oldest first.
    chunks: Vec<String>,
    /// The newest letter of every (key, identity, row).
    letters: BTreeMap<(String, String, u64), DeadLetter>,
    /// Lines that repeated a row.
    duplicates: u64,
}

/// A fatal sink error in the middle of a file.
struct Stopped(String);

/// What retrying the rows of one file gave.
#[derive(Default)]
struct FileResult {
    /// Rows rejected again, with their new letters.
    still: Vec<DeadLetter>,
    delivered: u64,
    filtered: u64,
    records_delivered: u64,
    receipts: Vec<String>,
}

/// The state of one row being retried.
struct Row {
    /// The letter it had.
    letter: DeadLetter,
    /// Its new letter, once rejected again.
    failed: Option<DeadLetter>,
    /// The input row as read now (projected columns).
    input: Option<serde_json::Value>,
    /// Whether it was read and transformed.
    transformed: bool,
    records: u64,
    stored: u64,
}

/// Retries the dead letters of `options.stage` kept in `options.state`, through `sink`.
/// Call from a plain thread (not inside a tokio runtime): it runs its own.
pub fn retry(options: &RetryOptions, sink: &CluedInSink) -> Result<RetryReport, RetryError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let run_id = uuid::Uuid::new_v4().to_string();
    let stage_url = options.stage.state_key().to_owned();
    let prefix = files::dead_letters_prefix(&stage_url);
    let folders = load(&options.state, &prefix)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RetryError::Internal(format!("cannot start the HTTP runtime: {e}")))?;
    let info = options.plugin.info();
    let mut job = Job {
        options,
        sink,
        runtime: &runtime,
        run_id: run_id.clone(),
        stage_url: stage_url.clone(),
        runner: None,
        encoder: Encoder::new(options.shape),
        log: None,
        plugin: PluginReport {
            name: options.plugin.name().to_string(),
            version: info.version.clone(),
            sha256: options.plugin.digest().to_string(),
            calls: 0,
            faults: 0,
            rebuilds: 0,
            seconds_in_plugin: 0.0,
        },
        receipts: Vec::new(),
    };

    let chunks = folders.values().map(|f| f.chunks.len() as u64).sum();
    let letters: u64 = folders.values().map(|f| f.letters.len() as u64).sum();
    let duplicates = folders.values().map(|f| f.duplicates).sum();
    let mut counts = RetryCounts::default();
    let mut reports = Vec::new();
    let mut fatal_error = None;
    let outcome = (|| -> Result<(), RetryError> {
        for (folder_name, folder) in &folders {
            let stopped = job.folder(&prefix, folder_name, folder, &mut counts, &mut reports)?;
            if let Some(Stopped(message)) = stopped {
                fatal_error = Some(message);
                break;
            }
        }
        Ok(())
    })();
    job.finish_runner();
    if let Some(log) = job.log.as_mut() {
        log.flush().map_err(|source| RetryError::DeadLetters {
            path: job.options.dead_letter_dir.clone(),
            source,
        })?;
    }
    outcome?;

    let stats = sink.stats();
    let remaining = letters - counts.delivered - counts.filtered - counts.superseded;
    let secs = started.elapsed().as_secs_f64();
    Ok(RetryReport {
        run_id,
        started_at,
        finished_at: now_rfc3339(),
        duration_secs: secs,
        stage: stage_url.clone(),
        state: options.state.location().to_string(),
        state_dead_letters: format!(
            "{}/{}",
            options.state.location().trim_end_matches('/'),
            prefix
        ),
        plugin: job.plugin.clone(),
        chunks,
        letters,
        duplicates,
        rows: counts,
        remaining,
        records_sent: stats.records_delivered + stats.records_rejected,
        records_delivered: stats.records_delivered,
        records_rejected: stats.records_rejected,
        requests: stats.requests,
        retries: stats.retries,
        bytes_sent: stats.bytes_sent,
        responses_not_cluedin_json: stats.responses_not_cluedin_json,
        receipts: job.receipts,
        files: reports,
        dead_letters: options
            .dead_letter_dir
            .join(crate::deadletter::DEAD_LETTER_FILE),
        fatal_error,
    })
}

/// Reads every dead-letter chunk under `prefix`, by folder.
fn load(state: &StateStore, prefix: &str) -> Result<BTreeMap<String, Folder>, RetryError> {
    let mut folders: BTreeMap<String, Folder> = BTreeMap::new();
    for path in state.list(prefix)? {
        let rest = &path[prefix.len()..];
        match rest.split_once('/') {
            Some((folder, name))
                if !folder.is_empty() && !name.contains('/') && name.ends_with(".ndjson") =>
            {
                folders
                    .entry(folder.to_string())
                    .or_default()
                    .chunks
                    .push(path.clone());
            }
            _ => tracing::warn!(path = %path, "not a dead-letter chunk: ignored"),
        }
    }
    for folder in folders.values_mut() {
        // Oldest first, so that a newer line of the same row replaces an older one.
        folder
            .chunks
            .sort_by(|a, b| chunk_name(a).cmp(chunk_name(b)));
        let mut kept = Vec::with_capacity(folder.chunks.len());
        for chunk in &folder.chunks {
            let Some(stored) = state.get(chunk)? else {
                // Deleted since the listing (another retry): its letters went with it.
                continue;
            };
            for letter in parse_chunk(chunk, &stored.bytes)? {
                // parse_chunk checked that both are there.
                let key = letter.key.clone().unwrap_or_default();
                let identity = letter.identity.clone().unwrap_or_default();
                if folder
                    .letters
                    .insert((key, identity, letter.row), letter)
                    .is_some()
                {
                    folder.duplicates += 1;
                }
            }
            kept.push(chunk.clone());
        }
        folder.chunks = kept;
    }
    folders.retain(|_, f| !f.chunks.is_empty());
    Ok(folders)
}

/// The file name of a chunk path.
fn chunk_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The time (ms since 1970) a chunk's name starts with, if it does.
fn chunk_time(path: &str) -> Option<u64> {
    let name = chunk_name(path);
    let digits = name.split('-').next()?;
    (digits.len() == 13 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The dead letters of a chunk; anything else is [`RetryError::Damaged`] naming it.
fn parse_chunk(chunk: &str, bytes: &[u8]) -> Result<Vec<DeadLetter>, RetryError> {
    let damaged = |reason: String| RetryError::Damaged {
        chunk: chunk.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(damaged("it is empty".into()));
    }
    if !bytes.ends_with(b"\n") {
        return Err(damaged("its last line is cut short".into()));
    }
    let mut letters = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = index + 1;
        let letter: DeadLetter = serde_json::from_slice(line)
            .map_err(|e| damaged(format!("line {number} is not a dead letter: {e}")))?;
        if letter.key.is_none() || letter.identity.is_none() {
            return Err(damaged(format!(
                "line {number} names no object key or file version"
            )));
        }
        letters.push(letter);
    }
    Ok(letters)
}

/// The file at object key `key` as the stage has it now; `None` when it is gone.
fn current_file(stage: &Stage, key: &str) -> Result<Option<StageFile>, StageError> {
    let name = match stage.kind() {
        StoreKind::Local => key.to_string(),
        _ => stage.stage_url().object_url(key),
    };
    match stage.file(&name) {
        Ok(file) => Ok(Some(file)),
        Err(StageError::NotFound { .. } | StageError::Vanished { .. }) => Ok(None),
        // A stage URL naming one object: look at the listing instead.
        Err(StageError::Selection { .. }) => match stage.list() {
            Ok(files) => Ok(files.into_iter().find(|f| f.key == key)),
            Err(StageError::NotFound { .. } | StageError::Vanished { .. }) => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The retry's working set.
struct Job<'a> {
    options: &'a RetryOptions,
    sink: &'a CluedInSink,
    runtime: &'a tokio::runtime::Runtime,
    run_id: String,
    stage_url: String,
    /// The runner of the schema last seen (files of one stage share theirs).
    runner: Option<(Vec<ColumnSchema>, Runner)>,
    encoder: Encoder,
    /// The local dead-letter log, opened at the first row rejected again.
    log: Option<DeadLetterWriter>,
    plugin: PluginReport,
    receipts: Vec<Receipt>,
}

impl Job<'_> {
    /// Retries the letters of one folder and rewrites it. `Some` when a fatal sink error
    /// stopped the retry (the folder is left as it was).
    fn folder(
        &mut self,
        prefix: &str,
        folder_name: &str,
        folder: &Folder,
        counts: &mut RetryCounts,
        reports: &mut Vec<RetryFileReport>,
    ) -> Result<Option<Stopped>, RetryError> {
        let mut by_key: BTreeMap<&str, Vec<&DeadLetter>> = BTreeMap::new();
        for ((key, _, _), letter) in &folder.letters {
            by_key.entry(key.as_str()).or_default().push(letter);
        }
        let mut remaining: Vec<DeadLetter> = Vec::new();
        let mut changed = folder.duplicates > 0;
        let mut updates = Vec::new();
        let mut folder_counts = RetryCounts::default();
        let mut folder_reports = Vec::new();
        for (key, letters) in by_key {
            let shown = letters
                .first()
                .map(|l| l.file.clone())
                .unwrap_or_else(|| key.to_string());
            let mut rows = RetryCounts::default();
            let Some(file) = current_file(&self.options.stage, key)? else {
                tracing::warn!(file = %shown, rows = letters.len(), "the file no longer exists: its dead letters are kept");
                rows.file_gone = letters.len() as u64;
                remaining.extend(letters.into_iter().cloned());
                add(&mut folder_counts, &rows);
                folder_reports.push(RetryFileReport {
                    file: shown,
                    key: key.to_string(),
                    outcome: "file-gone",
                    rows,
                    error: None,
                });
                continue;
            };
            let identity = files::identity(&file);
            let (current, old): (Vec<&DeadLetter>, Vec<&DeadLetter>) = letters
                .into_iter()
                .partition(|l| l.identity.as_deref() == Some(identity.as_str()));
            if !old.is_empty() {
                tracing::info!(file = %shown, rows = old.len(), "the file was replaced since: its dead letters are superseded (`run` delivers the new version)");
                rows.superseded = old.len() as u64;
                changed = true;
            }
            let mut outcome = "superseded";
            if !current.is_empty() {
                changed = true;
                outcome = "retried";
                let result = match self.file(&file, current) {
                    Ok(result) => result,
                    Err(Stopped(message)) => {
                        reports.push(RetryFileReport {
                            file: display_name(&file),
                            key: key.to_string(),
                            outcome: "not-finished",
                            rows: RetryCounts::default(),
                            error: Some(message.clone()),
                        });
                        return Ok(Some(Stopped(message)));
                    }
                };
                rows.delivered = result.delivered;
                rows.filtered = result.filtered;
                rows.still_rejected = result.still.len() as u64;
                rows.retried = rows.delivered + rows.filtered + rows.still_rejected;
                self.log_letters(&result.still)?;
                remaining.extend(result.still);
                if result.delivered + result.filtered > 0 {
                    updates.push((
                        file.clone(),
                        result.delivered,
                        result.filtered,
                        result.records_delivered,
                        result.receipts,
                    ));
                }
            }
            add(&mut folder_counts, &rows);
            folder_reports.push(RetryFileReport {
                file: display_name(&file),
                key: key.to_string(),
                outcome,
                rows,
                error: None,
            });
        }
        if changed {
            self.rewrite(prefix, folder_name, folder, &remaining)?;
        }
        add(counts, &folder_counts);
        reports.extend(folder_reports);
        for (file, delivered, filtered, records, receipts) in updates {
            self.update_counts(&file, delivered, filtered, records, receipts);
        }
        Ok(None)
    }

    /// Writes one chunk with `remaining` (if any), then deletes the chunks read.
    fn rewrite(
        &self,
        prefix: &str,
        folder_name: &str,
        folder: &Folder,
        remaining: &[DeadLetter],
    ) -> Result<(), RetryError> {
        let state = &self.options.state;
        if !remaining.is_empty() {
            let mut bytes = Vec::new();
            for letter in remaining {
                serde_json::to_writer(&mut bytes, letter).map_err(|e| {
                    RetryError::Internal(format!("cannot encode a dead letter: {e}"))
                })?;
                bytes.push(b'\n');
            }
            // Named after every chunk it replaces, so that it wins over them should they
            // outlive it (a crash before they are deleted).
            let newest = folder.chunks.iter().filter_map(|c| chunk_time(c)).max();
            let time = now_ms().max(newest.map_or(0, |t| t + 1));
            let path = format!(
                "{prefix}{folder_name}/{time:013}-{}-{:06}.ndjson",
                self.run_id, 0
            );
            state.put(&path, &bytes, PutMode::Overwrite)?;
        }
        for chunk in &folder.chunks {
            state.delete(chunk)?;
        }
        Ok(())
    }

    /// Appends rows rejected again to the local dead-letter log.
    fn log_letters(&mut self, letters: &[DeadLetter]) -> Result<(), RetryError> {
        if letters.is_empty() {
            return Ok(());
        }
        let dir = &self.options.dead_letter_dir;
        let error = |source| RetryError::DeadLetters {
            path: dir.clone(),
            source,
        };
        if self.log.is_none() {
            self.log = Some(DeadLetterWriter::open(dir).map_err(error)?);
        }
        if let Some(log) = self.log.as_mut() {
            for letter in letters {
                log.write(letter).map_err(error)?;
            }
        }
        Ok(())
    }

    /// Adds the statistics of the current runner to the report and drops it.
    fn finish_runner(&mut self) {
        if let Some((_, runner)) = self.runner.take() {
            add_stats(&mut self.plugin, &runner);
        }
    }

    /// Retries `letters` (rows of the current version of `file`). `Err` on a fatal sink
    /// error; other failures are new dead letters of the rows.
    fn file(&mut self, file: &StageFile, letters: Vec<&DeadLetter>) -> Result<FileResult, Stopped> {
        let name: Arc<str> = display_name(file).into();
        let mut rows: BTreeMap<u64, Row> = letters
            .into_iter()
            .map(|l| {
                (
                    l.row,
                    Row {
                        letter: l.clone(),
                        failed: None,
                        input: None,
                        transformed: false,
                        records: 0,
                        stored: 0,
                    },
                )
            })
            .collect();
        let mut batches = Vec::new();
        if let Err(failure) = self.transform_rows(file, &name, &mut rows, &mut batches) {
            match failure {
                ReadFailure::Unusable(reason) => {
                    // The rows not read are rejected again, as unread.
                    for row in rows.values_mut().filter(|r| !r.transformed) {
                        row.failed = Some(new_letter(
                            file,
                            &name,
                            row,
                            RowStage::Read,
                            "unreadable-file",
                            &reason,
                        ));
                    }
                }
                ReadFailure::Fatal(message) => return Err(Stopped(message)),
            }
        }
        let mut result = FileResult::default();
        for batch in batches {
            self.deliver(file, &name, batch, &mut rows, &mut result)?;
        }
        for row in rows.into_values() {
            match row.failed {
                Some(letter) => result.still.push(letter),
                None if row.records == 0 => result.filtered += 1,
                None if row.stored >= row.records => result.delivered += 1,
                None => {
                    // Cannot happen: every record is delivered or rejected.
                    let message = format!(
                        "{} of {} records were not acknowledged",
                        row.records - row.stored,
                        row.records
                    );
                    let letter = new_letter(
                        file,
                        &name,
                        &row,
                        RowStage::Endpoint,
                        "not-acknowledged",
                        &message,
                    );
                    result.still.push(letter);
                }
            }
        }
        Ok(result)
    }

    /// Reads and transforms the rows, filling request bodies.
    fn transform_rows(
        &mut self,
        file: &StageFile,
        name: &Arc<str>,
        rows: &mut BTreeMap<u64, Row>,
        batches: &mut Vec<Batch>,
    ) -> Result<(), ReadFailure> {
        let source = self
            .options
            .stage
            .open(file)
            .map_err(ReadFailure::from_stage)?;
        let schema = source.contract_schema().map_err(ReadFailure::from_stage)?;
        let total = source.num_rows();
        let batch_rows = self.options.batch_rows.max(1) as u64;
        let sink = self.sink;
        let runner = runner_for(&mut self.runner, &mut self.plugin, self.options, schema)
            .map_err(|e| ReadFailure::Fatal(e.to_string()))?;
        let (projection, batch_schema) = runner.read_plan();
        let wanted: Vec<u64> = rows.keys().copied().collect();
        for row in wanted.iter().filter(|&&r| r >= total) {
            if let Some(r) = rows.get_mut(row) {
                let message = format!("row {row} is beyond the end of the file ({total} rows)");
                r.transformed = true;
                r.failed = Some(new_letter(
                    file,
                    name,
                    r,
                    RowStage::Read,
                    "no-such-row",
                    &message,
                ));
            }
        }
        let mut reading = Reading {
            file,
            name,
            source: &source,
            source_file: file.source_file(),
            projection,
            batch_schema,
            runner,
            encoder: &mut self.encoder,
            batcher: sink.batcher(),
        };
        let read = reading.runs(runs(&wanted, total, batch_rows), rows, batches);
        if let Err(ReadFailure::Fatal(message)) = read {
            return Err(ReadFailure::Fatal(message));
        }
        // What was transformed before a read error is sent all the same.
        let rest = reading
            .batcher
            .flush()
            .map_err(|e| ReadFailure::Fatal(e.to_string()))?;
        batches.extend(rest);
        read
    }

    /// Sends one body and applies its outcome to the rows.
    fn deliver(
        &mut self,
        file: &StageFile,
        name: &Arc<str>,
        batch: Batch,
        rows: &mut BTreeMap<u64, Row>,
        result: &mut FileResult,
    ) -> Result<(), Stopped> {
        let outcome = self
            .runtime
            .block_on(self.sink.deliver(batch))
            .map_err(|e: SinkError| Stopped(e.to_string()))?;
        let endpoint = outcome.endpoint.url.to_string();
        for request in &outcome.delivered {
            for origin in &request.records {
                if let Some(r) = rows.get_mut(&origin.row) {
                    r.stored += 1;
                }
            }
            result.records_delivered += request.records.len() as u64;
            result.receipts.push(
                request
                    .receipt_id
                    .clone()
                    .unwrap_or_else(|| request.request_id.clone()),
            );
            self.receipts.push(Receipt {
                endpoint: endpoint.clone(),
                receipt_id: request.receipt_id.clone(),
                request_id: request.request_id.clone(),
                records: request.records.len(),
            });
        }
        for rejected in outcome.rejected {
            tracing::warn!(file = %rejected.origin.file, row = rejected.origin.row, status = rejected.status, "endpoint rejected a record again: {}", rejected.message);
            let Some(r) = rows.get_mut(&rejected.origin.row) else {
                continue;
            };
            if r.failed.is_some() {
                // A row with several records is one dead letter.
                continue;
            }
            let mut letter = new_letter(
                file,
                name,
                r,
                RowStage::Endpoint,
                &format!("http-{}", rejected.status),
                &rejected.message,
            );
            letter.status = Some(rejected.status);
            letter.receipt_id = rejected.receipt_id;
            letter.entity_type = Some(rejected.entity_type.to_string());
            letter.record = serde_json::from_slice(&rejected.json).ok();
            r.failed = Some(letter);
        }
        Ok(())
    }

    /// Moves the file's counts in its state document: `delivered` and `filtered` rows are
    /// no longer dead letters. Skipped (with a note in the log) when a worker holds the
    /// file or the document describes another version; never fails the retry.
    fn update_counts(
        &self,
        file: &StageFile,
        delivered: u64,
        filtered: u64,
        records: u64,
        receipts: Vec<String>,
    ) {
        let state = &self.options.state;
        let path = files::file_path(&self.stage_url, &file.key);
        let identity = files::identity(file);
        for _ in 0..COUNT_UPDATE_ATTEMPTS {
            let stored = match state.get(&path) {
                Ok(Some(stored)) => stored,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(file = %file.key, "cannot update the file's counts in the state: {e}");
                    return;
                }
            };
            let mut doc = match FileState::parse(&path, &stored) {
                Ok(doc) => doc,
                Err(e) => {
                    tracing::warn!("cannot update the file's counts in the state: {e}");
                    return;
                }
            };
            if doc.identity != identity || doc.lease.is_some() {
                tracing::debug!(file = %file.key, "the file's state is another version or held by a worker: counts left as they are");
                return;
            }
            let c = &mut doc.counts;
            c.rows_dead_lettered = c.rows_dead_lettered.saturating_sub(delivered + filtered);
            c.rows_filtered += filtered;
            c.records_delivered += records;
            doc.receipts.extend(receipts.iter().cloned());
            doc.run_id = self.run_id.clone();
            doc.updated_at = now_rfc3339();
            match state.put(&path, &doc.to_json(), PutMode::Update(stored.version)) {
                Ok(_) => return,
                Err(StateError::Conflict { .. }) => continue,
                Err(e) => {
                    tracing::warn!(file = %file.key, "cannot update the file's counts in the state: {e}");
                    return;
                }
            }
        }
        tracing::warn!(file = %file.key, "the file's state kept changing: its counts were left as they are");
    }
}

/// The runner for `schema`: the current one, or a new one when the schema differs.
fn runner_for<'s>(
    slot: &'s mut Option<(Vec<ColumnSchema>, Runner)>,
    report: &mut PluginReport,
    options: &RetryOptions,
    schema: Vec<ColumnSchema>,
) -> Result<&'s mut Runner, PluginError> {
    if slot.as_ref().is_some_and(|(s, _)| *s != schema)
        && let Some((_, old)) = slot.take()
    {
        add_stats(report, &old);
    }
    let current = match slot.take() {
        Some(current) => current,
        None => {
            let runner = Runner::start(
                options.plugin.clone(),
                schema.clone(),
                options.plugin_config.clone(),
            )?;
            (schema, runner)
        }
    };
    let (_, runner) = slot.insert(current);
    Ok(runner)
}

/// Adds a runner's statistics to the report.
fn add_stats(report: &mut PluginReport, runner: &Runner) {
    let stats = runner.stats();
    report.calls += stats.calls;
    report.faults += stats.faults;
    report.rebuilds += stats.rebuilds;
    report.seconds_in_plugin += stats.time_in_plugin.as_secs_f64();
}

/// The reading of one file's dead-lettered rows.
struct Reading<'r> {
    file: &'r StageFile,
    name: &'r Arc<str>,
    source: &'r StageSource,
    source_file: SourceFile,
    projection: Option<Vec<usize>>,
    batch_schema: Vec<ColumnSchema>,
    runner: &'r mut Runner,
    encoder: &'r mut Encoder,
    batcher: Batcher,
}

impl Reading<'_> {
    /// Reads the runs of rows, transforms them, and puts their records into bodies
    /// (closed bodies into `batches`).
    fn runs(
        &mut self,
        runs: Vec<Vec<u64>>,
        rows: &mut BTreeMap<u64, Row>,
        batches: &mut Vec<Batch>,
    ) -> Result<(), ReadFailure> {
        for run in runs {
            let (Some(&first), Some(&last)) = (run.first(), run.last()) else {
                continue;
            };
            let read = ReadOptions {
                batch_rows: (last - first + 1) as usize,
                projection: self.projection.clone(),
                start_row: first,
            };
            let source_batches = self
                .source
                .batches(&read)
                .map_err(ReadFailure::from_stage)?;
            for batch in source_batches {
                let batch = batch.map_err(ReadFailure::from_stage)?;
                let start = batch.first_row;
                let end = start + batch.batch.num_rows() as u64;
                let (lo, hi) = (first.max(start), (last + 1).min(end));
                if lo < hi {
                    let piece = batch.batch.slice((lo - start) as usize, (hi - lo) as usize);
                    self.piece(&piece, lo, rows, batches)?;
                }
                if end > last {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Transforms rows `first_row..` (`piece`) and puts their records into bodies.
    fn piece(
        &mut self,
        piece: &RecordBatch,
        first_row: u64,
        rows: &mut BTreeMap<u64, Row>,
        batches: &mut Vec<Batch>,
    ) -> Result<(), ReadFailure> {
        let input = ArrowInput {
            file: &self.source_file,
            first_row,
            batch: piece,
            schema: &self.batch_schema,
            projection: None,
        };
        let encoded = self
            .encoder
            .transform(self.runner, &input)
            .map_err(|e| ReadFailure::Fatal(e.to_string()))?;
        let plugin = self.runner.plugin().name().to_string();
        for offset in 0..piece.num_rows() {
            if let Some(r) = rows.get_mut(&(first_row + offset as u64)) {
                r.transformed = true;
                r.input = Some(row_json(piece, offset));
            }
        }
        for failure in &encoded.failures {
            if let Some(r) = rows.get_mut(&failure.row) {
                let mut letter = new_letter(
                    self.file,
                    self.name,
                    r,
                    failure.stage,
                    failure.kind,
                    &failure.message,
                );
                letter.plugin = Some(plugin.clone());
                r.failed = Some(letter);
            }
        }
        for record in &encoded.records {
            let Some(r) = rows.get_mut(&record.row) else {
                continue;
            };
            if r.failed.is_some() {
                continue;
            }
            r.records += 1;
            let origin = RowRef {
                file: self.name.clone(),
                row: record.row,
            };
            let closed = self
                .batcher
                .push_json(origin, &record.entity_type, encoded.record_json(record))
                .map_err(|e| ReadFailure::Fatal(e.to_string()))?;
            batches.extend(closed);
        }
        Ok(())
    }
}

/// A new dead letter of `row`: the old one's input when it had one (the same row of the
/// same file version), else the row as read now.
fn new_letter(
    file: &StageFile,
    name: &str,
    row: &Row,
    stage: RowStage,
    kind: &str,
    message: &str,
) -> DeadLetter {
    let input = if row.letter.input.is_null() {
        row.input.clone().unwrap_or(serde_json::Value::Null)
    } else {
        row.letter.input.clone()
    };
    DeadLetter {
        file: name.to_string(),
        key: Some(file.key.clone()),
        identity: Some(files::identity(file)),
        row: row.letter.row,
        stage,
        kind: kind.to_string(),
        message: message.to_string(),
        plugin: None,
        status: None,
        receipt_id: None,
        entity_type: None,
        record: None,
        input,
    }
}

/// Why the rows of a file could not all be read and transformed.
enum ReadFailure {
    /// The file cannot be used now (corrupt, truncated, changed): the rows not read stay
    /// dead letters with this reason.
    Unusable(String),
    /// The retry must stop (storage unreachable, plugin cannot run, no route).
    Fatal(String),
}

impl ReadFailure {
    fn from_stage(e: StageError) -> Self {
        if e.is_bad_file() {
            ReadFailure::Unusable(e.to_string())
        } else {
            ReadFailure::Fatal(e.to_string())
        }
    }
}

/// `rows` (sorted, below `total`) cut into runs of adjacent rows of at most `max` rows.
fn runs(rows: &[u64], total: u64, max: u64) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    for &row in rows.iter().filter(|&&r| r < total) {
        match out.last_mut() {
            Some(run)
                if run.last().is_some_and(|&last| last + 1 == row) && (run.len() as u64) < max =>
            {
                run.push(row)
            }
            _ => out.push(vec![row]),
        }
    }
    out
}

fn add(total: &mut RetryCounts, rows: &RetryCounts) {
    total.retried += rows.retried;
    total.delivered += rows.delivered;
    total.filtered += rows.filtered;
    total.still_rejected += rows.still_rejected;
    total.superseded += rows.superseded;
    total.file_gone += rows.file_gone;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(row: u64) -> String {
        format!(
            r#"{{"file":"/s/a.parquet","key":"/s/a.parquet","identity":"size:1:mtime:2","row":{row},"stage":"endpoint","kind":"http-400","message":"m","input":null}}"#
        )
    }

    #[test]
    fn chunks_parse_and_damage_is_named() {
        let good = format!("{}\n\n{}\n", letter(1), letter(2));
        let letters = parse_chunk("dead-letters/s/f/c.ndjson", good.as_bytes()).unwrap();
        assert_eq!(letters.iter().map(|l| l.row).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(letters[0].stage, RowStage::Endpoint);

        let cases = [
            (String::new(), "empty"),
            (letter(1), "cut short"),
            (format!("{}\n{{\"file\":\n", letter(1)), "line 2"),
            (
                "{\"file\":\"f\",\"row\":1,\"stage\":\"plugin\",\"kind\":\"k\",\"message\":\"m\"}\n"
                    .to_string(),
                "names no object key",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_chunk("dead-letters/s/f/c.ndjson", text.as_bytes()).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, RetryError::Damaged { .. }), "{message}");
            assert!(message.contains("dead-letters/s/f/c.ndjson"), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn rows_are_grouped_into_runs_of_adjacent_rows() {
        assert_eq!(
            runs(&[1, 2, 3, 5, 6, 9, 20], 10, 2),
            vec![vec![1, 2], vec![3], vec![5, 6], vec![9]]
        );
        assert!(runs(&[], 10, 5).is_empty());
    }

    #[test]
    fn chunk_times_come_from_their_names() {
        assert_eq!(
            chunk_time("dead-letters/a/b/1714566896789-run-000001.ndjson"),
            Some(1_714_566_896_789)
        );
        assert_eq!(chunk_time("dead-letters/a/b/x-run.ndjson"), None);
    }
}
