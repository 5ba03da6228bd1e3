//! `stagepush run`: files → transform workers (one plugin instance each) → request bodies
//! → the CluedIn sink, accounting for every row.
//!
//! Threads: `workers` CPU threads each take whole files (files are the unit of
//! parallelism), decode, transform, encode and cut request bodies (framing and gzip run
//! there too); a tokio runtime delivers up to `concurrency` bodies at once; the calling
//! thread collects outcomes. Every hand-off is a bounded channel, so memory stays flat.
//! Bodies are cut per file, in row order, so "batch N of file F" is always the same rows.
//!
//! Every input row ends in exactly one of: delivered, filtered by the plugin, unchanged
//! (`--only-changed`: CluedIn already has every record of it), or written to the dead
//! letters (stage `read`, `plugin`, `encode` or `endpoint`) with its reason. A fatal error
//! (the endpoint refused the token, retries exhausted, a plugin that cannot be restarted)
//! stops the run; rows not yet delivered then belong to the next run. A stop (a fatal error,
//! or [`RunOptions::cancel`]) ends every wait at once: the workers stop at their next batch
//! (also while waiting for acknowledgements), the sink sends nothing more and gives the
//! requests already sent a short grace for their answers, what was acknowledged is
//! checkpointed and the leases are released.
//!
//! Delivery state (`crate::state`): a worker claims a file before reading it (a lease in
//! the state), skips files already done, and reads a partly delivered file from its first
//! unacknowledged segment; request bodies never mix segments, and a segment is recorded as
//! acknowledged once all its records are stored or dead-lettered.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::bad_file::BadFile;
use crate::bindings::types::ColumnSchema;
use crate::cancel::Cancel;
use crate::deadletter::input_json::{read_rows, row_json};
use crate::deadletter::{DeadLetter, DeadLetterWriter};
use crate::plugin::{Plugin, PluginError, Runner};
use crate::sink::{Batch, BatchOutcome, CluedInSink, RowRef, SinkError, SinkStats};
use crate::source::parquet::{ReadOptions, SourceError};
use crate::source::{Stage, StageError, StageFile};
use crate::state::checkpoint::{
    CheckpointConfig, Checkpointer, Claim, FileRef, ResumePlan, SegmentCounts, WaitError,
};
use crate::state::fingerprints::{self, Fingerprints};
use crate::state::{StateError, StateStore, files as state_files};
use crate::transform::{ArrowInput, EncodedBatch, Encoder, RowStage};
use crate::watermark::Watermarks;
use crate::wire::Shape;
use crate::wire::time::now_ms;
pub use crate::wire::time::now_rfc3339;

/// How often a worker looks again at a file another worker holds (to see it done, or its
/// lease lapse): one read of its state document.
const WAIT_POLL: Duration = Duration::from_secs(1);

/// Request bodies waiting for the sink, per worker.
const BODIES_IN_QUEUE_PER_WORKER: usize = 4;

/// What to do with a file that cannot be used (vanished, truncated, corrupt, another
/// schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OnBadFile {
    /// Dead-letter its rows as unread and go on with the other files.
    #[default]
    Skip,
    /// Stop the run.
    Fail,
}

/// What a run needs besides the sink.
pub struct RunOptions {
    pub stage: Stage,
    /// The stage's files, in the order to process them.
    pub files: Vec<StageFile>,
    pub on_bad_file: OnBadFile,
    pub plugin: Arc<Plugin>,
    pub plugin_config: Vec<(String, String)>,
    /// Rows per plugin call.
    pub batch_rows: usize,
    /// Bytes of input rows per plugin call (a larger row goes alone); read batches are
    /// sized to about this too.
    pub batch_bytes: usize,
    pub shape: Shape,
    pub workers: usize,
    pub dead_letter_dir: PathBuf,
    /// Where the delivery state lives.
    pub state: StateStore,
    /// Rows per segment (the unit of acknowledgement) of files new to the state.
    pub segment_rows: u64,
    /// How long a claim on a file lasts without renewal.
    pub lease: Duration,
    /// `--only-changed`: the fingerprints of what CluedIn already has.
    pub fingerprints: Option<Arc<Fingerprints>>,
    /// Set to stop the run early (SIGINT/SIGTERM, `serve`'s shutdown): workers stop at the
    /// next batch, nothing more is sent, what was acknowledged is checkpointed and leases
    /// are released. Its reason is the report's `interrupted`.
    pub cancel: Option<Cancel>,
}

/// Default rows per segment: one full request body at the default batch size.
pub const DEFAULT_SEGMENT_ROWS: u64 = crate::sink::config::DEFAULT_BATCH_MAX_ROWS as u64;

/// Live counters, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub rows_total: AtomicU64,
    pub rows_read: AtomicU64,
    pub records_delivered: AtomicU64,
    pub bytes_sent: AtomicU64,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("fingerprints: {0}")]
    Fingerprints(String),
    #[error("none of the {files} files of the stage can be read; the first: {reason}")]
    NoReadableFile { files: usize, reason: String },
    #[error("dead-letter output {path}: {source}")]
    DeadLetters {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

/// Counts of rows by outcome: `read = delivered + filtered + unchanged + dead_lettered`.
/// `read` counts every row the run accounted for, including the unread rows of a bad file
/// (from its footer); a file whose footer cannot be read has an unknown number of rows and
/// gets one dead letter, counted as one row.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowCounts {
    pub read: u64,
    pub delivered: u64,
    pub filtered: u64,
    /// `--only-changed`: rows whose every record CluedIn already had.
    pub unchanged: u64,
    pub dead_lettered: u64,
    /// Dead-lettered rows by stage (`read`, `plugin`, `encode`, `endpoint`).
    pub dead_lettered_by_stage: BTreeMap<String, u64>,
    /// Dead-lettered rows by reason, `stage/kind` (`read/corrupt-file`, `plugin/rejected`,
    /// `endpoint/http-400`, …), as `stagepush status` counts them.
    pub dead_lettered_by_reason: BTreeMap<String, u64>,
}

/// A request the endpoint stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub endpoint: String,
    pub receipt_id: Option<String>,
    pub request_id: String,
    pub records: usize,
}

/// A warning in an endpoint's 2xx answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    pub file: Option<String>,
    pub row: Option<u64>,
    pub property: Option<String>,
    pub message_id: Option<String>,
    pub message: Option<String>,
}

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    pub file: String,
    pub rows: u64,
    /// `done`, `skipped` (done by an earlier run), `done-elsewhere` (finished by another
    /// worker while this run waited), `bad-file`, `not-finished` or `lease-lost`.
    pub outcome: &'static str,
    /// The segment this run started at, when an earlier run had delivered part of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_at_segment: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Records this run sent that may have reached the endpoint twice: those of segments an
/// earlier run sent but whose acknowledgement it never recorded (in flight at a crash).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PossibleDuplicates {
    pub segments: u64,
    pub records: u64,
}

/// The run report (`--report FILE`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    pub plugin: PluginReport,
    pub rows: RowCounts,
    pub records_encoded: u64,
    pub records_delivered: u64,
    pub records_rejected: u64,
    /// `--only-changed`: records not sent because CluedIn already had them.
    pub records_unchanged: u64,
    pub possible_duplicates: PossibleDuplicates,
    /// Files done by earlier runs (not read).
    pub files_skipped: u64,
    /// Files this run resumed after an earlier run delivered part of them.
    pub files_resumed: u64,
    /// The latest record timestamp per entity type (RFC 3339) among the records CluedIn
    /// acknowledged (see [`crate::watermark`]): where the next incremental unload can start
    /// (`… WHERE UPDATED_AT > '<watermark>'`).
    pub watermarks: BTreeMap<String, String>,
    /// The run stopped before the end (a fatal error, or interrupted): its watermarks cover
    /// only what was acknowledged before the stop; rerun before using them.
    pub watermarks_from_stopped_run: bool,
    /// The delivery state location.
    pub state: String,
    /// Where the state keeps this stage's dead letters (for `retry`).
    pub state_dead_letters: String,
    pub requests: u64,
    pub retries: u64,
    pub bytes_uncompressed: u64,
    pub bytes_sent: u64,
    pub status: BTreeMap<u16, u64>,
    /// 2xx answers whose body was not CluedIn's JSON (counted delivered; see `sink`).
    pub responses_not_cluedin_json: u64,
    pub rows_per_second: f64,
    /// CPU seconds of the whole process (user + system), when the OS tells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Peak resident memory of the process, bytes, when the OS tells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    pub receipts: Vec<Receipt>,
    pub warnings: Vec<Warning>,
    pub files: Vec<FileReport>,
    pub dead_letters: PathBuf,
    /// Set when the run stopped before the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal_error: Option<String>,
    /// Set when the run was cancelled ([`RunOptions::cancel`]): `SIGINT`, `SIGTERM` or
    /// `shutdown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginReport {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub calls: u64,
    pub faults: u64,
    pub rebuilds: u64,
    pub seconds_in_plugin: f64,
}

/// State shared by the workers and the outcome collector.
struct Shared {
    /// The local dead-letter file; also flushed by the checkpointer before it writes dead
    /// letters to the state (see `letter_sync`).
    dead_letters: Arc<Mutex<DeadLetterWriter>>,
    dead_letter_path: PathBuf,
    counts: Mutex<RowCounts>,
    records_encoded: AtomicU64,
    /// Rows that produced at least one record (delivered unless one is rejected).
    rows_with_records: AtomicU64,
    stop: AtomicBool,
    fatal: Mutex<Option<String>>,
    plugin_stats: Mutex<PluginReport>,
    files: Mutex<Vec<FileReport>>,
    progress: Arc<Progress>,
    checkpointer: Checkpointer,
    /// Request bodies in flight: batch id → its file and segment.
    bodies: Mutex<HashMap<u64, (FileRef, u64)>>,
    /// Display name → claimed file (for endpoint dead letters).
    claimed: Mutex<HashMap<Arc<str>, (FileRef, String, String)>>,
    /// `--only-changed`: fingerprints of the records of open segments, applied when the
    /// segment is acknowledged (without the records the endpoint rejected).
    pending_fps: Mutex<HashMap<(FileRef, u64), SegmentFingerprints>>,
    records_unchanged: AtomicU64,
    duplicates: Mutex<PossibleDuplicates>,
    files_resumed: AtomicU64,
    files_skipped: AtomicU64,
    watermarks: Watermarks,
    /// Files another worker held when this run reached them: (index, lease expiry ms).
    waiting: Mutex<Vec<(usize, u64)>>,
    cancel: Option<Cancel>,
}

#[derive(Default)]
struct SegmentFingerprints {
    updates: Vec<(
        u64,
        Arc<str>,
        fingerprints::Key,
        Option<fingerprints::Digest>,
    )>,
    rejected: BTreeSet<(u64, Arc<str>)>,
}

impl Shared {
    /// Writes a dead letter to the output folder and, for a claimed file, to the state.
    fn dead_letter(&self, mut letter: DeadLetter) -> Result<(), PipelineError> {
        let claimed = self
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(letter.file.as_str())
            .cloned();
        if let Some((_, key, identity)) = &claimed {
            letter.key = Some(key.clone());
            letter.identity = Some(identity.clone());
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.dead_lettered += 1;
        *counts
            .dead_lettered_by_stage
            .entry(letter.stage.as_str().to_string())
            .or_default() += 1;
        *counts
            .dead_lettered_by_reason
            .entry(format!("{}/{}", letter.stage.as_str(), letter.kind))
            .or_default() += 1;
        drop(counts);
        let mut line = serde_json::to_vec(&letter)
            .map_err(|e| PipelineError::Internal(format!("cannot encode a dead letter: {e}")))?;
        line.push(b'\n');
        // The local file first: the checkpointer flushes it before it writes the letter to
        // the state, so the file always holds every dead letter the state holds.
        self.dead_letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_line(&line)
            .map_err(|source| PipelineError::DeadLetters {
                path: self.dead_letter_path.clone(),
                source,
            })?;
        if let Some((file, _, _)) = claimed {
            self.checkpointer.dead_letter(file, &line[..line.len() - 1]);
        }
        Ok(())
    }

    /// Applies the watermarks and fingerprints of an acknowledged segment.
    fn segment_acked(&self, fps: Option<&Fingerprints>, file: FileRef, segment: u64) {
        self.watermarks.segment_acked(file, segment);
        let Some(fps) = fps else { return };
        let Some(pending) = self
            .pending_fps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(file, segment))
        else {
            return;
        };
        let updates: Vec<_> = pending
            .updates
            .into_iter()
            .filter(|(row, t, _, _)| !pending.rejected.contains(&(*row, t.clone())))
            .map(|(_, _, key, digest)| (key, digest))
            .collect();
        if let Err(e) = fps.apply(&updates) {
            // Not fatal for delivery: the records were delivered; they will be sent
            // again next time.
            tracing::warn!("cannot record fingerprints: {e}");
        }
    }

    /// Stops the run with `message` as its cause (the first cause stays).
    fn fail(&self, message: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if fatal.is_none() {
            *fatal = Some(message);
        }
        drop(fatal);
        self.halt();
    }

    /// Stops the run (its cause, if any, is recorded elsewhere): workers stop at their next
    /// batch, and those waiting for acknowledgements stop waiting.
    fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.checkpointer.interrupt();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.cancel.as_ref().is_some_and(Cancel::is_cancelled)
    }
}

/// Runs the pipeline to the end (or to a fatal error, which is in the report's
/// `fatal_error`). Errors before the first row (plugin refused the schema, no readable
/// file, a bad first file with `--on-bad-file fail`) are returned as `Err`.
pub fn run(
    options: RunOptions,
    sink: CluedInSink,
    progress: Arc<Progress>,
) -> Result<RunReport, PipelineError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let run_id = uuid::Uuid::new_v4().to_string();

    // The stage schema is the first readable file's; the plugin sees it once, before any
    // row, so a refusal stops the run here.
    let mut total_rows = 0;
    for file in &options.files {
        if let Ok(source) = options.stage.open_footer(file) {
            total_rows += source.num_rows();
        }
    }
    progress.rows_total.store(total_rows, Ordering::Relaxed);
    let schema =
        crate::bad_file::stage_schema(&options.stage, &options.files, options.on_bad_file)?;
    if !options.files.is_empty() {
        // Fail fast on a refused schema or configuration, before any worker starts.
        Runner::start(
            options.plugin.clone(),
            schema.clone(),
            options.plugin_config.clone(),
        )?;
    }

    let writer = DeadLetterWriter::open(&options.dead_letter_dir).map_err(|source| {
        PipelineError::DeadLetters {
            path: options.dead_letter_dir.clone(),
            source,
        }
    })?;
    let dead_letter_path = writer.path().to_path_buf();
    let writer = Arc::new(Mutex::new(writer));
    let info = options.plugin.info();
    let stage_url = options.stage.state_key().to_owned();
    let checkpointer = Checkpointer::start(
        options.state.clone(),
        CheckpointConfig {
            stage_url: stage_url.clone(),
            run_id: run_id.clone(),
            owner: format!(
                "{}:{}:{run_id}",
                crate::state::checkpoint::hostname(),
                std::process::id()
            ),
            segment_rows: options.segment_rows.max(1),
            lease: options.lease,
        },
    );
    checkpointer.sync_letters_with(crate::deadletter::letter_sync(writer.clone()));
    let shared = Arc::new(Shared {
        checkpointer,
        bodies: Mutex::new(HashMap::new()),
        claimed: Mutex::new(HashMap::new()),
        pending_fps: Mutex::new(HashMap::new()),
        records_unchanged: AtomicU64::new(0),
        duplicates: Mutex::new(PossibleDuplicates::default()),
        files_resumed: AtomicU64::new(0),
        files_skipped: AtomicU64::new(0),
        watermarks: Watermarks::default(),
        waiting: Mutex::new(Vec::new()),
        cancel: options.cancel.clone(),
        dead_letter_path,
        dead_letters: writer,
        counts: Mutex::new(RowCounts::default()),
        records_encoded: AtomicU64::new(0),
        rows_with_records: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
        plugin_stats: Mutex::new(PluginReport {
            name: options.plugin.name().to_string(),
            version: info.version.clone(),
            sha256: options.plugin.digest().to_string(),
            calls: 0,
            faults: 0,
            rebuilds: 0,
            seconds_in_plugin: 0.0,
        }),
        files: Mutex::new(Vec::new()),
        progress: progress.clone(),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("stagepush-sink")
        .build()
        .map_err(|e| PipelineError::Internal(format!("cannot start the HTTP runtime: {e}")))?;
    // An empty stage (Snowflake writes no file for an empty result) starts no worker.
    let workers = options.workers.max(1).min(options.files.len());
    let (batch_tx, batch_rx) =
        mpsc::channel::<Batch>((workers * BODIES_IN_QUEUE_PER_WORKER).max(1));
    let (outcome_tx, mut outcome_rx) = mpsc::channel::<BatchOutcome>(64);

    let sink_task = {
        let sink = sink.clone();
        runtime.spawn(async move { sink.run(batch_rx, outcome_tx).await })
    };
    // A cancel stops the workers and the sink at once (the task ends with the runtime).
    if let Some(cancel) = options.cancel.clone() {
        let (shared, sink) = (shared.clone(), sink.clone());
        runtime.spawn(async move {
            cancel.cancelled().await;
            tracing::info!(
                "{}: stopping at the next batch; what CluedIn acknowledged is recorded",
                cancel.reason().unwrap_or_default()
            );
            shared.halt();
            sink.stop();
        });
    }

    // Workers take files in order from a shared cursor.
    let next_file = Arc::new(AtomicU64::new(0));
    let options = Arc::new(options);
    let schema = Arc::new(schema);
    let mut handles = Vec::new();
    for w in 0..workers {
        let (shared, options, schema, next_file) = (
            shared.clone(),
            options.clone(),
            schema.clone(),
            next_file.clone(),
        );
        let batch_tx = batch_tx.clone();
        let sink = sink.clone();
        let handle = std::thread::Builder::new()
            .name(format!("stagepush-worker-{w}"))
            .spawn(move || {
                if let Err(e) = worker(&shared, &options, &schema, &next_file, &sink, &batch_tx) {
                    shared.fail(e.to_string());
                }
            })
            .map_err(|e| PipelineError::Internal(format!("cannot start a worker: {e}")))?;
        handles.push(handle);
    }
    drop(batch_tx);

    // Collect outcomes until every worker is done and the sink has drained.
    let mut receipts = Vec::new();
    let mut warnings = Vec::new();
    let mut rejected_rows: BTreeSet<RowRef> = BTreeSet::new();
    let by_name: HashMap<String, StageFile> = options
        .files
        .iter()
        .map(|f| (display_name(f), f.clone()))
        .collect();
    let collect = runtime.block_on(async {
        while let Some(outcome) = outcome_rx.recv().await {
            if let Err(e) = collect_outcome(
                &shared,
                (&options.stage, &by_name),
                options.fingerprints.as_deref(),
                outcome,
                &mut receipts,
                &mut warnings,
                &mut rejected_rows,
            ) {
                shared.fail(e.to_string());
                sink.stop();
            }
        }
        sink_task.await
    });
    // The sink's cause first (workers blocked on it stop now), then the workers.
    let sink_stats = match collect {
        Ok(Ok(stats)) => stats,
        // Stopped by this run (a cancel, or a failure recorded already).
        Ok(Err(SinkError::Stopped)) if shared.stopped() => sink.stats(),
        Ok(Err(e)) => {
            shared.fail(e.to_string());
            sink.stats()
        }
        Err(e) => {
            shared.fail(format!("the sink task failed: {e}"));
            sink.stats()
        }
    };
    for handle in handles {
        if handle.join().is_err() {
            shared.fail("a worker thread panicked".into());
        }
    }
    {
        let mut writer = shared
            .dead_letters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        writer
            .flush()
            .map_err(|source| PipelineError::DeadLetters {
                path: shared.dead_letter_path.clone(),
                source,
            })?;
    }
    if let Err(e) = shared.checkpointer.finish() {
        shared.fail(format!("the delivery state could not be written: {e}"));
    }

    let mut counts = shared
        .counts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let rows_with_records = shared.rows_with_records.load(Ordering::Relaxed);
    counts.delivered = rows_with_records.saturating_sub(rejected_rows.len() as u64);
    if shared.stopped() {
        // Rows in bodies that were not acknowledged are not delivered.
        counts.delivered = counts.delivered.min(sink_stats.records_delivered);
    }
    counts.unchanged = counts.unchanged.min(counts.read);
    let duration = started.elapsed();
    let fatal_error = shared
        .fatal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut files = shared
        .files
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    // A file is done when the state says so: its bodies may all have been sent and yet
    // not acknowledged when the run stopped.
    {
        let claimed = shared.claimed.lock().unwrap_or_else(|p| p.into_inner());
        for f in files.iter_mut() {
            if let Some((file, _, _)) = claimed.get(f.file.as_str())
                && matches!(f.outcome, "done" | "bad-file")
                && shared.checkpointer.document(*file).status
                    != crate::state::files::FileStatus::Done
            {
                f.outcome = "not-finished";
            }
        }
    }
    files.sort_by(|a, b| a.file.cmp(&b.file));
    let mut report = report(
        run_id,
        started_at,
        duration,
        &shared,
        counts,
        sink_stats,
        receipts,
        warnings,
        files,
        fatal_error,
    );
    report.interrupted = options.cancel.as_ref().and_then(Cancel::reason);
    // Stopped before the end: a fatal error, or interrupted before every file finished.
    let finished = |f: &FileReport| {
        matches!(
            f.outcome,
            "done" | "skipped" | "done-elsewhere" | "bad-file"
        )
    };
    report.watermarks_from_stopped_run = report.fatal_error.is_some()
        || (report.interrupted.is_some()
            && report.files.iter().filter(|f| finished(f)).count() < options.files.len());
    report.state = options.state.location().to_string();
    report.state_dead_letters = format!(
        "{}/{}",
        options.state.location().trim_end_matches('/'),
        state_files::dead_letters_prefix(&stage_url)
    );
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn report(
    run_id: String,
    started_at: String,
    duration: Duration,
    shared: &Shared,
    rows: RowCounts,
    sink: SinkStats,
    receipts: Vec<Receipt>,
    warnings: Vec<Warning>,
    files: Vec<FileReport>,
    fatal_error: Option<String>,
) -> RunReport {
    let secs = duration.as_secs_f64();
    RunReport {
        run_id,
        started_at,
        finished_at: now_rfc3339(),
        duration_secs: secs,
        plugin: shared
            .plugin_stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        rows_per_second: if secs > 0.0 {
            rows.read as f64 / secs
        } else {
            0.0
        },
        cpu_seconds: crate::procstat::cpu_seconds(),
        peak_rss_bytes: crate::procstat::peak_rss_bytes(),
        rows,
        records_encoded: shared.records_encoded.load(Ordering::Relaxed),
        records_delivered: sink.records_delivered,
        records_rejected: sink.records_rejected,
        records_unchanged: shared.records_unchanged.load(Ordering::Relaxed),
        possible_duplicates: shared
            .duplicates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        files_skipped: shared.files_skipped.load(Ordering::Relaxed),
        files_resumed: shared.files_resumed.load(Ordering::Relaxed),
        watermarks: shared.watermarks.report(),
        watermarks_from_stopped_run: false,
        state: String::new(),
        state_dead_letters: String::new(),
        requests: sink.requests,
        retries: sink.retries,
        bytes_uncompressed: sink.bytes_uncompressed,
        bytes_sent: sink.bytes_sent,
        status: sink.status,
        responses_not_cluedin_json: sink.responses_not_cluedin_json,
        receipts,
        warnings,
        files,
        dead_letters: shared.dead_letter_path.clone(),
        fatal_error,
        interrupted: None,
    }
}

fn collect_outcome(
    shared: &Shared,
    (stage, files): (&Stage, &HashMap<String, StageFile>),
    fps: Option<&Fingerprints>,
    outcome: BatchOutcome,
    receipts: &mut Vec<Receipt>,
    warnings: &mut Vec<Warning>,
    rejected_rows: &mut BTreeSet<RowRef>,
) -> Result<(), PipelineError> {
    crate::failpoint::hit("after-post");
    let endpoint = outcome.endpoint.url.to_string();
    let body = shared
        .bodies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&outcome.batch_id);
    let delivered: u64 = outcome
        .delivered
        .iter()
        .map(|r| r.records.len() as u64)
        .sum();
    let state_receipts: Vec<String> = outcome
        .delivered
        .iter()
        .map(|r| r.receipt_id.clone().unwrap_or_else(|| r.request_id.clone()))
        .collect();
    let settle = |rejected_rows: u64| {
        if let Some((file, segment)) = body
            && shared.checkpointer.body_done(
                file,
                segment,
                delivered,
                rejected_rows,
                state_receipts.clone(),
            )
        {
            shared.segment_acked(fps, file, segment);
        }
    };
    for request in &outcome.delivered {
        tracing::debug!(
            endpoint = %endpoint,
            receipt_id = request.receipt_id.as_deref().unwrap_or("-"),
            request_id = %request.request_id,
            records = request.records.len(),
            "delivered"
        );
        shared
            .progress
            .records_delivered
            .fetch_add(request.records.len() as u64, Ordering::Relaxed);
        receipts.push(Receipt {
            endpoint: endpoint.clone(),
            receipt_id: request.receipt_id.clone(),
            request_id: request.request_id.clone(),
            records: request.records.len(),
        });
        for w in &request.warnings {
            tracing::warn!(
                file = w.origin.as_ref().map(|o| &*o.file).unwrap_or("-"),
                row = w.origin.as_ref().map(|o| o.row),
                property = w.property.as_deref().unwrap_or("-"),
                "endpoint warning: {}",
                w.message.as_deref().unwrap_or("")
            );
            warnings.push(Warning {
                file: w.origin.as_ref().map(|o| o.file.to_string()),
                row: w.origin.as_ref().map(|o| o.row),
                property: w.property.clone(),
                message_id: w.message_id.clone(),
                message: w.message.clone(),
            });
        }
    }
    shared
        .progress
        .bytes_sent
        .fetch_add(outcome.stats.bytes_sent, Ordering::Relaxed);
    if outcome.rejected.is_empty() {
        settle(0);
        return Ok(());
    }
    if let Some((file, segment)) = body {
        shared.watermarks.rejected(
            file,
            segment,
            outcome
                .rejected
                .iter()
                .map(|r| (r.origin.row, &r.entity_type)),
        );
        let mut pending = shared.pending_fps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pending.get_mut(&(file, segment)) {
            for r in &outcome.rejected {
                p.rejected.insert((r.origin.row, r.entity_type.clone()));
            }
        }
    }
    let mut new_rejected_rows = 0;
    // The input rows of rejected records, read back from their files in one pass each.
    let mut wanted: HashMap<Arc<str>, BTreeSet<u64>> = HashMap::new();
    for r in &outcome.rejected {
        wanted
            .entry(r.origin.file.clone())
            .or_default()
            .insert(r.origin.row);
    }
    let inputs: HashMap<Arc<str>, BTreeMap<u64, serde_json::Value>> = wanted
        .into_iter()
        .map(|(file, rows)| {
            let found = files
                .get(&*file)
                .map(|f| read_rows(stage, f, &rows))
                .unwrap_or_default();
            (file, found)
        })
        .collect();
    for r in outcome.rejected {
        tracing::warn!(file = %r.origin.file, row = r.origin.row, status = r.status, "endpoint rejected a record: {}", r.message);
        // A row with several records counts once.
        if !rejected_rows.insert(r.origin.clone()) {
            continue;
        }
        new_rejected_rows += 1;
        let input = inputs
            .get(&r.origin.file)
            .and_then(|rows| rows.get(&r.origin.row))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        shared.dead_letter(DeadLetter {
            file: r.origin.file.to_string(),
            row: r.origin.row,
            stage: RowStage::Endpoint,
            kind: format!("http-{}", r.status),
            message: r.message,
            plugin: None,
            status: Some(r.status),
            receipt_id: r.receipt_id,
            entity_type: Some(r.entity_type.to_string()),
            record: serde_json::from_slice(&r.json).ok(),
            input,
            key: None,
            identity: None,
        })?;
    }
    settle(new_rejected_rows);
    Ok(())
}

/// One transform worker: claims files until none are left or the run stops.
fn worker(
    shared: &Shared,
    options: &RunOptions,
    schema: &[ColumnSchema],
    next_file: &AtomicU64,
    sink: &CluedInSink,
    bodies: &mpsc::Sender<Batch>,
) -> Result<(), PipelineError> {
    let mut runner = Runner::start(
        options.plugin.clone(),
        schema.to_vec(),
        options.plugin_config.clone(),
    )?;
    let (projection, batch_schema) = runner.read_plan();
    let mut encoder = Encoder::new(options.shape);
    let mut batcher = sink.batcher();
    let result = loop {
        let (stage_file, plan) = match next_claim(shared, options, next_file) {
            Ok(Some(next)) => next,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let name: Arc<str> = display_name(stage_file).into();
        shared
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                name.clone(),
                (
                    plan.file,
                    stage_file.key.clone(),
                    state_files::identity(stage_file),
                ),
            );
        if plan.resumed {
            shared.files_resumed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(file = %name, segment = plan.first_open_segment(), "resuming a partly delivered file");
        }
        let file = FileJob {
            shared,
            options,
            schema,
            batch_schema: &batch_schema,
            projection: projection.clone(),
            name: name.clone(),
            file: stage_file,
            plan: &plan,
            rows_read: Cell::new(0),
        };
        let resumed_at = plan.resumed.then(|| plan.first_open_segment());
        match file.process(&mut runner, &mut encoder, &mut batcher, bodies) {
            Ok(rows) => file.finished(
                rows,
                if shared.checkpointer.is_lost(plan.file) {
                    "lease-lost"
                } else if shared.stopped() {
                    "not-finished"
                } else {
                    "done"
                },
                resumed_at,
                None,
            ),
            Err(FileError::Bad(e)) if options.on_bad_file == OnBadFile::Skip => {
                tracing::error!(file = %name, "skipping the file: its rows are dead-lettered as unread: {e}");
                file.unread(&e)?;
            }
            Err(FileError::Bad(e)) => {
                file.finished(0, "bad-file", resumed_at, Some(e.reason.clone()));
                break Err(PipelineError::Internal(format!(
                    "{name}: {e} (the run stops on a bad file: --on-bad-file fail)"
                )));
            }
            Err(FileError::Fatal(e)) => {
                let error = Some(e.to_string());
                file.finished(file.rows_read.get(), "not-finished", resumed_at, error);
                break Err(e);
            }
            // The run is stopping; its cause is recorded by whoever stopped it.
            Err(FileError::Stopped) => {
                file.finished(file.rows_read.get(), "not-finished", resumed_at, None);
                break Ok(());
            }
        }
    };
    let stats = runner.stats();
    let mut report = shared
        .plugin_stats
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    report.calls += stats.calls;
    report.faults += stats.faults;
    report.rebuilds += stats.rebuilds;
    report.seconds_in_plugin += stats.time_in_plugin.as_secs_f64();
    result
}

/// The next file this worker may process: the next listed file it can claim, else a file
/// another worker held once its lease lapses (or it is done). `None` when no file is left.
fn next_claim<'a>(
    shared: &Shared,
    options: &'a RunOptions,
    next_file: &AtomicU64,
) -> Result<Option<(&'a StageFile, ResumePlan)>, PipelineError> {
    loop {
        if shared.stopped() {
            return Ok(None);
        }
        if let Some(e) = shared.checkpointer.error() {
            return Err(PipelineError::Internal(format!(
                "the delivery state cannot be written: {e}"
            )));
        }
        let index = next_file.fetch_add(1, Ordering::SeqCst) as usize;
        let (index, waited) = if index < options.files.len() {
            (index, false)
        } else {
            let next = {
                let mut waiting = shared.waiting.lock().unwrap_or_else(|p| p.into_inner());
                waiting.sort_by_key(|(_, expires)| std::cmp::Reverse(*expires));
                waiting.pop()
            };
            let Some((index, expires_at_ms)) = next else {
                return Ok(None);
            };
            // Look again when the lease lapses, or sooner: the holder may finish first.
            let now = now_ms();
            let poll = (options.lease / 4).clamp(Duration::from_millis(100), WAIT_POLL);
            let wait = Duration::from_millis(expires_at_ms.saturating_sub(now) + 50).min(poll);
            std::thread::sleep(wait);
            (index, true)
        };
        let stage_file = &options.files[index];
        match shared.checkpointer.claim(stage_file)? {
            Claim::Mine(plan) => return Ok(Some((stage_file, plan))),
            Claim::Done(doc) => {
                let outcome = if waited { "done-elsewhere" } else { "skipped" };
                if !waited {
                    shared.files_skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(file = %display_name(stage_file), "already delivered: skipped");
                }
                shared
                    .files
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(FileReport {
                        file: display_name(stage_file),
                        rows: doc.counts.rows,
                        outcome,
                        resumed_at_segment: None,
                        error: doc.error.clone(),
                    });
            }
            Claim::Held {
                owner,
                expires_at_ms,
            } => {
                if !waited {
                    tracing::info!(file = %display_name(stage_file), %owner, "another worker is on this file: waiting for it to finish or its lease to lapse");
                }
                shared
                    .waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((index, expires_at_ms));
            }
        }
    }
}

enum FileError {
    /// The file cannot be used (unreadable, corrupt, other schema): its rows are dead
    /// letters and the run goes on.
    Bad(BadFile),
    /// The run must stop.
    Fatal(PipelineError),
    /// The run is stopping (the sink stopped, a fatal error elsewhere, a cancel).
    Stopped,
}

impl From<PipelineError> for FileError {
    fn from(e: PipelineError) -> Self {
        FileError::Fatal(e)
    }
}

struct FileJob<'a> {
    shared: &'a Shared,
    options: &'a RunOptions,
    schema: &'a [ColumnSchema],
    batch_schema: &'a [ColumnSchema],
    projection: Option<Vec<usize>>,
    name: Arc<str>,
    file: &'a StageFile,
    plan: &'a ResumePlan,
    /// Rows read so far (for the report of a file the run stopped in).
    rows_read: Cell<u64>,
}

/// The segment a worker is filling.
struct OpenSegment {
    index: u64,
    counts: SegmentCounts,
    /// An earlier run may have sent it already.
    maybe_sent: bool,
    records_sent: u64,
}

/// How a file is named in dead letters, reports and logs: its path for local stages, its
/// URL otherwise.
pub fn display_name(file: &StageFile) -> String {
    match file.url.strip_prefix("file://") {
        Some(path) => percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned(),
        None => file.url.clone(),
    }
}

/// Whether a stage error makes this file unusable (the run goes on) or the run stop.
fn classify(e: StageError) -> FileError {
    if e.is_bad_file() {
        FileError::Bad(BadFile::new(&e))
    } else {
        FileError::Fatal(e.into())
    }
}

impl FileJob<'_> {
    /// Transforms and queues every row of the file not acknowledged yet; returns the rows
    /// read.
    fn process(
        &self,
        runner: &mut Runner,
        encoder: &mut Encoder,
        batcher: &mut crate::sink::Batcher,
        bodies: &mpsc::Sender<Batch>,
    ) -> Result<u64, FileError> {
        let ckpt = &self.shared.checkpointer;
        let source = self.options.stage.open(self.file).map_err(classify)?;
        let schema = source.contract_schema().map_err(classify)?;
        if schema != self.schema {
            return Err(FileError::Bad(BadFile {
                kind: crate::bad_file::KIND_SCHEMA_MISMATCH,
                reason: format!(
                    "{}: its schema differs from the stage's first readable file ({})",
                    self.name,
                    describe_difference(self.schema, &schema)
                ),
            }));
        }
        let segment_rows = self.plan.segment_rows;
        let total = source.num_rows();
        let segments = total.div_ceil(segment_rows);
        ckpt.set_segments(self.plan.file, segments);
        let start = self.plan.first_open_segment();
        let file = self.file.source_file();
        let read = ReadOptions {
            batch_rows: self.options.batch_rows.min(segment_rows as usize).max(1),
            projection: self.projection.clone(),
            start_row: (start * segment_rows).min(total),
        };
        let mut rows = 0;
        let mut open: Option<OpenSegment> = None;
        let batches = source
            .batches(&read)
            .map_err(classify)?
            .max_bytes(self.options.batch_bytes);
        for batch in batches {
            if self.shared.stopped() || ckpt.is_lost(self.plan.file) {
                return Ok(rows);
            }
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) if e.is_bad_file() && self.options.on_bad_file == OnBadFile::Skip => {
                    // What was read is sent; the rest of the file is unread.
                    let bad = BadFile::new(&e);
                    let next_row = match &open {
                        Some(s) => s.index * segment_rows + s.counts.rows,
                        None => start * segment_rows,
                    };
                    let next_segment = match open.take() {
                        Some(s) => {
                            let index = s.index;
                            self.close_segment(s, batcher, bodies)?;
                            index + 1
                        }
                        None => start,
                    };
                    tracing::error!(
                        file = %self.name,
                        row = next_row,
                        "the file cannot be read from row {next_row} on: its {} remaining rows are dead-lettered as unread: {bad}",
                        total - next_row
                    );
                    self.unread_from(next_row, total, &bad)?;
                    ckpt.bad_from(
                        self.plan.file,
                        next_segment,
                        segments,
                        &bad.reason,
                        total - next_row,
                    );
                    return Ok(rows + total - next_row);
                }
                Err(e) => return Err(classify(e)),
            };
            let mut offset = 0;
            let n = batch.batch.num_rows() as u64;
            // Plugin calls are cut by bytes as well as rows (a larger row goes alone).
            let sizes = crate::batchbytes::row_bytes(&batch.batch);
            tracing::debug!(file = %self.name, first_row = batch.first_row, rows = n, bytes = sizes.iter().sum::<u64>(), "read batch");
            while offset < n {
                let row = batch.first_row + offset;
                let segment = row / segment_rows;
                let len = (n - offset).min((segment + 1) * segment_rows - row);
                let len = crate::batchbytes::rows_within(
                    &sizes,
                    offset as usize,
                    len as usize,
                    self.options.batch_bytes as u64,
                ) as u64;
                tracing::debug!(file = %self.name, first_row = row, rows = len, bytes = sizes[offset as usize..(offset + len) as usize].iter().sum::<u64>(), "plugin batch");
                let piece = batch.batch.slice(offset as usize, len as usize);
                offset += len;
                if open.as_ref().map(|s| s.index) != Some(segment) {
                    if let Some(s) = open.take() {
                        self.close_segment(s, batcher, bodies)?;
                    }
                    if self.plan.is_acked(segment) {
                        continue;
                    }
                    ckpt.wait_to_send(self.plan.file, segment)
                        .map_err(|e| match e {
                            WaitError::Stopping => FileError::Stopped,
                            e => FileError::Fatal(PipelineError::Internal(format!(
                                "{}: {e}",
                                self.name
                            ))),
                        })?;
                    open = Some(OpenSegment {
                        index: segment,
                        counts: SegmentCounts::default(),
                        maybe_sent: self.plan.maybe_sent_before(segment),
                        records_sent: 0,
                    });
                }
                let Some(seg) = open.as_mut() else { continue };
                let input = ArrowInput {
                    file: &file,
                    first_row: row,
                    batch: &piece,
                    schema: self.batch_schema,
                    projection: None,
                };
                let encoded = encoder
                    .transform(runner, &input)
                    .map_err(|e| FileError::Fatal(e.into()))?;
                rows += encoded.rows;
                self.rows_read.set(rows);
                self.shared
                    .progress
                    .rows_read
                    .fetch_add(encoded.rows, Ordering::Relaxed);
                self.account(&encoded, &piece, row, runner, seg)?;
                self.push_records(&encoded, seg, batcher, bodies)?;
            }
        }
        if let Some(s) = open.take() {
            self.close_segment(s, batcher, bodies)?;
        }
        if !self.shared.stopped() && !ckpt.is_lost(self.plan.file) {
            ckpt.dispatch_finished(self.plan.file);
        }
        Ok(rows)
    }

    /// Fingerprint check (`--only-changed`), watermarks, then into request bodies.
    fn push_records(
        &self,
        encoded: &EncodedBatch,
        seg: &mut OpenSegment,
        batcher: &mut crate::sink::Batcher,
        bodies: &mpsc::Sender<Batch>,
    ) -> Result<(), FileError> {
        let fps = self.options.fingerprints.as_deref();
        let items: Vec<(fingerprints::Key, fingerprints::Digest)> = match fps {
            Some(_) => encoded
                .records
                .iter()
                .map(|r| {
                    (
                        fingerprints::key(&r.entity_type, encoded.external_id(r)),
                        fingerprints::digest(encoded.record_json(r)),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let unchanged = match fps {
            Some(fps) => fps
                .unchanged_many(&items)
                .map_err(|e| FileError::Fatal(PipelineError::Fingerprints(e.to_string())))?,
            None => Vec::new(),
        };
        let mut updates = Vec::new();
        let mut sent_rows = 0u64;
        let mut last_sent_row = None;
        let mut row_all_unchanged: Option<(u64, bool)> = None;
        let mut unchanged_rows = 0u64;
        let mut unchanged_records = 0u64;
        self.shared.watermarks.note(
            self.plan.file,
            seg.index,
            encoded
                .records
                .iter()
                .filter_map(|r| Some((r.row, &r.entity_type, r.timestamp_ns?))),
        );
        for (i, record) in encoded.records.iter().enumerate() {
            // A row is unchanged when every record of it is.
            match row_all_unchanged {
                Some((row, _)) if row == record.row => {}
                Some((_, all)) => {
                    unchanged_rows += all as u64;
                    row_all_unchanged = Some((record.row, true));
                }
                None => row_all_unchanged = Some((record.row, true)),
            }
            let skip = !record.deleted && unchanged.get(i).copied().unwrap_or(false);
            if skip {
                unchanged_records += 1;
                continue;
            }
            if let Some((_, all)) = row_all_unchanged.as_mut() {
                *all = false;
            }
            if fps.is_some() {
                let (key, digest) = items[i];
                updates.push((
                    record.row,
                    record.entity_type.clone(),
                    key,
                    (!record.deleted).then_some(digest),
                ));
            }
            if last_sent_row != Some(record.row) {
                sent_rows += 1;
                last_sent_row = Some(record.row);
            }
            seg.records_sent += 1;
            let origin = RowRef {
                file: self.name.clone(),
                row: record.row,
            };
            if let Some(body) = batcher
                .push_json(origin, &record.entity_type, encoded.record_json(record))
                .map_err(|e| FileError::Fatal(e.into()))?
            {
                self.send(bodies, body, seg.index)?;
            }
        }
        if let Some((_, all)) = row_all_unchanged {
            unchanged_rows += all as u64;
        }
        let _ = sent_rows;
        if unchanged_records > 0 {
            self.shared
                .records_unchanged
                .fetch_add(unchanged_records, Ordering::Relaxed);
            seg.counts.unchanged += unchanged_records;
            let mut counts = self.shared.counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.unchanged += unchanged_rows;
            drop(counts);
            self.shared
                .rows_with_records
                .fetch_sub(unchanged_rows, Ordering::Relaxed);
        }
        if !updates.is_empty() {
            self.shared
                .pending_fps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((self.plan.file, seg.index))
                .or_default()
                .updates
                .extend(updates);
        }
        Ok(())
    }

    /// Flushes the segment's open bodies and records it as fully handed over.
    fn close_segment(
        &self,
        seg: OpenSegment,
        batcher: &mut crate::sink::Batcher,
        bodies: &mpsc::Sender<Batch>,
    ) -> Result<(), FileError> {
        for body in batcher.flush().map_err(|e| FileError::Fatal(e.into()))? {
            self.send(bodies, body, seg.index)?;
        }
        if seg.maybe_sent {
            let mut d = self
                .shared
                .duplicates
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            d.segments += 1;
            d.records += seg.records_sent;
            drop(d);
            self.shared.checkpointer.resent(self.plan.file, 1);
        }
        if self
            .shared
            .checkpointer
            .segment_closed(self.plan.file, seg.index, seg.counts)
        {
            self.shared.segment_acked(
                self.options.fingerprints.as_deref(),
                self.plan.file,
                seg.index,
            );
        }
        Ok(())
    }

    fn send(
        &self,
        bodies: &mpsc::Sender<Batch>,
        body: Batch,
        segment: u64,
    ) -> Result<(), FileError> {
        self.shared
            .bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(body.id(), (self.plan.file, segment));
        self.shared.checkpointer.body_sent(self.plan.file, segment);
        bodies.blocking_send(body).map_err(|_| {
            // The sink stopped: its cause is reported by the collector.
            self.shared.halt();
            FileError::Stopped
        })
    }

    /// Counts a batch's outcomes and dead-letters its failed rows.
    fn account(
        &self,
        encoded: &EncodedBatch,
        batch: &arrow_array::RecordBatch,
        first_row: u64,
        runner: &Runner,
        seg: &mut OpenSegment,
    ) -> Result<(), FileError> {
        let failed = encoded.failures.len() as u64;
        let with_records = encoded.rows - encoded.filtered - failed;
        seg.counts.rows += encoded.rows;
        seg.counts.filtered += encoded.filtered;
        seg.counts.dead_lettered += failed;
        self.shared
            .rows_with_records
            .fetch_add(with_records, Ordering::Relaxed);
        self.shared
            .records_encoded
            .fetch_add(encoded.records.len() as u64, Ordering::Relaxed);
        {
            let mut counts = self.shared.counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.read += encoded.rows;
            counts.filtered += encoded.filtered;
        }
        for failure in &encoded.failures {
            tracing::debug!(file = %self.name, row = failure.row, stage = failure.stage.as_str(), "dead letter: {}", failure.message);
            self.shared.dead_letter(DeadLetter {
                file: self.name.to_string(),
                row: failure.row,
                stage: failure.stage,
                kind: failure.kind.to_string(),
                message: failure.message.clone(),
                plugin: Some(runner.plugin().name().to_string()),
                status: None,
                receipt_id: None,
                entity_type: None,
                record: None,
                input: row_json(batch, (failure.row - first_row) as usize),
                key: None,
                identity: None,
            })?;
        }
        Ok(())
    }

    /// Dead-letters every row of an unusable file as unread.
    fn unread(&self, bad: &BadFile) -> Result<(), PipelineError> {
        let rows = self
            .options
            .stage
            .open_footer(self.file)
            .map(|s| s.num_rows())
            .unwrap_or(0);
        let segments = rows.div_ceil(self.plan.segment_rows);
        // Not even a footer (or no rows): one dead letter for the file, so it is not lost
        // silently; it counts as one row.
        let accounted = rows.max(1);
        self.unread_from(0, accounted, bad)?;
        self.shared
            .checkpointer
            .bad_from(self.plan.file, 0, segments, &bad.reason, accounted);
        self.finished(rows, "bad-file", None, Some(bad.reason.clone()));
        Ok(())
    }

    /// Dead-letters rows `from..to` as unread (and counts them as read: accounted for).
    fn unread_from(&self, from: u64, to: u64, bad: &BadFile) -> Result<(), PipelineError> {
        {
            let mut counts = self.shared.counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.read += to.saturating_sub(from);
        }
        for row in from..to {
            self.shared.dead_letter(self.unread_letter(row, bad))?;
        }
        Ok(())
    }

    fn unread_letter(&self, row: u64, bad: &BadFile) -> DeadLetter {
        DeadLetter {
            file: self.name.to_string(),
            row,
            stage: RowStage::Read,
            kind: bad.kind.into(),
            message: bad.reason.clone(),
            plugin: None,
            status: None,
            receipt_id: None,
            entity_type: None,
            record: None,
            input: serde_json::Value::Null,
            key: None,
            identity: None,
        }
    }

    fn finished(
        &self,
        rows: u64,
        outcome: &'static str,
        resumed_at_segment: Option<u64>,
        error: Option<String>,
    ) {
        self.shared
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(FileReport {
                file: self.name.to_string(),
                rows,
                outcome,
                resumed_at_segment,
                error,
            });
    }
}

fn describe_difference(expected: &[ColumnSchema], found: &[ColumnSchema]) -> String {
    let names = |s: &[ColumnSchema]| {
        s.iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if expected.len() != found.len() {
        return format!(
            "{} columns [{}] instead of {} [{}]",
            found.len(),
            names(found),
            expected.len(),
            names(expected)
        );
    }
    for (e, f) in expected.iter().zip(found) {
        if e != f {
            return format!(
                "column `{}` is {:?}, expected `{}` {:?}",
                f.name, f.type_, e.name, e.type_
            );
        }
    }
    "same columns".into()
}
