//! `stagepush run`: files → transform workers (one plugin instance each) → request bodies
//! → the CluedIn sink, accounting for every row.
//!
//! Threads: `workers` CPU threads each take whole files (files are the unit of
//! parallelism), decode, transform, encode and cut request bodies (framing and gzip run
//! there too); a tokio runtime delivers up to `concurrency` bodies at once; the calling
//! thread collects outcomes. Every hand-off is a bounded channel, so memory stays flat.
//! Bodies are cut per file, in row order, so "batch N of file F" is always the same rows.
//!
//! Every input row ends in exactly one of: delivered, filtered by the plugin, or written
//! to the dead letters (stage `read`, `plugin`, `encode` or `endpoint`) with its reason.
//! A fatal error (the endpoint refused the token, retries exhausted, a plugin that cannot
//! be restarted) stops the run; rows not yet delivered then belong to the next run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::bindings::types::ColumnSchema;
use crate::deadletter::{DeadLetter, DeadLetterWriter};
use crate::plugin::{Plugin, PluginError, Runner};
use crate::rowjson::{read_rows, row_json};
use crate::sink::{Batch, BatchOutcome, CluedInSink, RowRef, SinkError, SinkStats};
use crate::source::parquet::{ReadOptions, SourceError};
use crate::source::{Stage, StageError, StageFile};
use crate::transform::{ArrowInput, EncodedBatch, Encoder, RowStage};
use crate::wire::Shape;

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
    pub shape: Shape,
    pub workers: usize,
    pub dead_letter_dir: PathBuf,
}

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
    #[error("dead-letter output {path}: {source}")]
    DeadLetters {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

/// Counts of rows by outcome.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowCounts {
    pub read: u64,
    pub delivered: u64,
    pub filtered: u64,
    pub dead_lettered: u64,
    /// Dead-lettered rows by stage (`read`, `plugin`, `encode`, `endpoint`).
    pub dead_lettered_by_stage: BTreeMap<String, u64>,
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
    /// `done`, `bad-file` or `not-finished`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    pub requests: u64,
    pub retries: u64,
    pub bytes_uncompressed: u64,
    pub bytes_sent: u64,
    pub status: BTreeMap<u16, u64>,
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
    dead_letters: Mutex<DeadLetterWriter>,
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
}

impl Shared {
    fn dead_letter(&self, letter: DeadLetter) -> Result<(), PipelineError> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.dead_lettered += 1;
        *counts
            .dead_lettered_by_stage
            .entry(stage_name(letter.stage).to_string())
            .or_default() += 1;
        drop(counts);
        let mut writer = self.dead_letters.lock().unwrap_or_else(|p| p.into_inner());
        writer
            .write(&letter)
            .map_err(|source| PipelineError::DeadLetters {
                path: self.dead_letter_path.clone(),
                source,
            })
    }

    fn fail(&self, message: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if fatal.is_none() {
            *fatal = Some(message);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

fn stage_name(stage: RowStage) -> &'static str {
    match stage {
        RowStage::Read => "read",
        RowStage::Plugin => "plugin",
        RowStage::Encode => "encode",
        RowStage::Endpoint => "endpoint",
    }
}

/// Runs the pipeline to the end (or to a fatal error, which is in the report's
/// `fatal_error`). Errors before the first row (plugin refused the schema, unreadable
/// first file) are returned as `Err`.
pub fn run(
    options: RunOptions,
    sink: CluedInSink,
    progress: Arc<Progress>,
) -> Result<RunReport, PipelineError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let run_id = uuid::Uuid::new_v4().to_string();

    // The stage schema is the first file's; the plugin sees it once, before any row, so a
    // refusal stops the run here.
    let mut total_rows = 0;
    for file in &options.files {
        if let Ok(source) = options.stage.open_footer(file) {
            total_rows += source.num_rows();
        }
    }
    progress.rows_total.store(total_rows, Ordering::Relaxed);
    let schema = match options.files.first() {
        Some(first) => options.stage.open_footer(first)?.contract_schema()?,
        None => Vec::new(),
    };
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
    let info = options.plugin.info();
    let shared = Arc::new(Shared {
        dead_letter_path: writer.path().to_path_buf(),
        dead_letters: Mutex::new(writer),
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
    for handle in handles {
        if handle.join().is_err() {
            shared.fail("a worker thread panicked".into());
        }
    }
    let sink_stats = match collect {
        Ok(Ok(stats)) => stats,
        Ok(Err(e)) => {
            shared.fail(e.to_string());
            sink.stats()
        }
        Err(e) => {
            shared.fail(format!("the sink task failed: {e}"));
            sink.stats()
        }
    };
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
    files.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(report(
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
    ))
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
        requests: sink.requests,
        retries: sink.retries,
        bytes_uncompressed: sink.bytes_uncompressed,
        bytes_sent: sink.bytes_sent,
        status: sink.status,
        receipts,
        warnings,
        files,
        dead_letters: shared.dead_letter_path.clone(),
        fatal_error,
    }
}

fn collect_outcome(
    shared: &Shared,
    (stage, files): (&Stage, &HashMap<String, StageFile>),
    outcome: BatchOutcome,
    receipts: &mut Vec<Receipt>,
    warnings: &mut Vec<Warning>,
    rejected_rows: &mut BTreeSet<RowRef>,
) -> Result<(), PipelineError> {
    let endpoint = outcome.endpoint.url.to_string();
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
        return Ok(());
    }
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
        })?;
    }
    Ok(())
}

/// One transform worker: takes files until none are left or the run stops.
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
        if shared.stopped() {
            break Ok(());
        }
        let index = next_file.fetch_add(1, Ordering::SeqCst) as usize;
        let Some(stage_file) = options.files.get(index) else {
            break Ok(());
        };
        let name: Arc<str> = display_name(stage_file).into();
        let file = FileJob {
            shared,
            options,
            schema,
            batch_schema: &batch_schema,
            projection: projection.clone(),
            name: name.clone(),
            file: stage_file,
        };
        match file.process(&mut runner, &mut encoder, &mut batcher, bodies) {
            Ok(rows) => file.finished(
                rows,
                if shared.stopped() {
                    "not-finished"
                } else {
                    "done"
                },
                None,
            ),
            Err(FileError::Bad(e)) if options.on_bad_file == OnBadFile::Skip => {
                tracing::error!(file = %name, "skipping the file: {e}");
                file.unread(&e)?;
            }
            Err(FileError::Bad(e)) => {
                file.finished(0, "bad-file", Some(e.clone()));
                break Err(PipelineError::Internal(format!(
                    "{name}: {e} (the run stops on a bad file: --on-bad-file fail)"
                )));
            }
            Err(FileError::Fatal(e)) => break Err(e),
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

enum FileError {
    /// The file cannot be used (unreadable, corrupt, other schema): its rows are dead
    /// letters and the run goes on.
    Bad(String),
    /// The run must stop.
    Fatal(PipelineError),
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
        FileError::Bad(e.to_string())
    } else {
        FileError::Fatal(e.into())
    }
}

impl FileJob<'_> {
    /// Transforms and queues every row of the file; returns the rows read.
    fn process(
        &self,
        runner: &mut Runner,
        encoder: &mut Encoder,
        batcher: &mut crate::sink::Batcher,
        bodies: &mpsc::Sender<Batch>,
    ) -> Result<u64, FileError> {
        let source = self.options.stage.open(self.file).map_err(classify)?;
        let schema = source.contract_schema().map_err(classify)?;
        if schema != self.schema {
            return Err(FileError::Bad(format!(
                "its schema differs from the stage's first file ({})",
                describe_difference(self.schema, &schema)
            )));
        }
        let file = self.file.source_file();
        let read = ReadOptions {
            batch_rows: self.options.batch_rows,
            projection: self.projection.clone(),
            start_row: 0,
        };
        let mut rows = 0;
        let batches = source.batches(&read).map_err(classify)?;
        for batch in batches {
            if self.shared.stopped() {
                return Ok(rows);
            }
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) if e.is_bad_file() && self.options.on_bad_file == OnBadFile::Skip => {
                    // Rows already queued stay queued; the rest of the file is unread.
                    self.unread_from(rows, source.num_rows(), &e.to_string())?;
                    return Ok(source.num_rows());
                }
                Err(e) => return Err(classify(e)),
            };
            let input = ArrowInput {
                file: &file,
                first_row: batch.first_row,
                batch: &batch.batch,
                schema: self.batch_schema,
                projection: None,
            };
            let encoded = encoder
                .transform(runner, &input)
                .map_err(|e| FileError::Fatal(e.into()))?;
            rows += encoded.rows;
            self.shared
                .progress
                .rows_read
                .fetch_add(encoded.rows, Ordering::Relaxed);
            self.account(&encoded, &batch.batch, batch.first_row, runner)?;
            for record in &encoded.records {
                let origin = RowRef {
                    file: self.name.clone(),
                    row: record.row,
                };
                if let Some(body) = batcher
                    .push_json(origin, &record.entity_type, encoded.record_json(record))
                    .map_err(|e| FileError::Fatal(e.into()))?
                {
                    self.queue(bodies, body)?;
                }
            }
        }
        for body in batcher.flush().map_err(|e| FileError::Fatal(e.into()))? {
            self.queue(bodies, body)?;
        }
        Ok(rows)
    }

    fn queue(&self, bodies: &mpsc::Sender<Batch>, body: Batch) -> Result<(), FileError> {
        bodies.blocking_send(body).map_err(|_| {
            // The sink stopped (its fatal error is reported by the collector).
            self.shared.stop.store(true, Ordering::SeqCst);
            FileError::Fatal(PipelineError::Internal("the sink stopped".into()))
        })
    }

    /// Counts a batch's outcomes and dead-letters its failed rows.
    fn account(
        &self,
        encoded: &EncodedBatch,
        batch: &arrow_array::RecordBatch,
        first_row: u64,
        runner: &Runner,
    ) -> Result<(), FileError> {
        let failed = encoded.failures.len() as u64;
        let with_records = encoded.rows - encoded.filtered - failed;
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
            tracing::debug!(file = %self.name, row = failure.row, stage = stage_name(failure.stage), "dead letter: {}", failure.message);
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
            })?;
        }
        Ok(())
    }

    /// Dead-letters every row of an unusable file as unread.
    fn unread(&self, reason: &str) -> Result<(), PipelineError> {
        let rows = self
            .options
            .stage
            .open_footer(self.file)
            .map(|s| s.num_rows())
            .unwrap_or(0);
        if rows == 0 {
            // Not even a footer: one dead letter for the file, so it is not lost silently.
            self.shared.dead_letter(self.unread_letter(None, reason))?;
        }
        self.unread_from(0, rows, reason)?;
        self.finished(rows, "bad-file", Some(reason.to_string()));
        Ok(())
    }

    fn unread_from(&self, from: u64, to: u64, reason: &str) -> Result<(), PipelineError> {
        {
            let mut counts = self.shared.counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.read += to.saturating_sub(from);
        }
        for row in from..to {
            self.shared
                .dead_letter(self.unread_letter(Some(row), reason))?;
        }
        Ok(())
    }

    fn unread_letter(&self, row: Option<u64>, reason: &str) -> DeadLetter {
        DeadLetter {
            file: self.name.to_string(),
            row: row.unwrap_or(0),
            stage: RowStage::Read,
            kind: "unreadable-file".into(),
            message: reason.to_string(),
            plugin: None,
            status: None,
            receipt_id: None,
            entity_type: None,
            record: None,
            input: serde_json::Value::Null,
        }
    }

    fn finished(&self, rows: u64, outcome: &'static str, error: Option<String>) {
        self.shared
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(FileReport {
                file: self.name.to_string(),
                rows,
                outcome,
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

/// The current time as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = Vec::new();
    crate::wire::time::write_timestamp(
        &mut out,
        now.as_millis() as i64,
        crate::bindings::types::TimeUnit::Millis,
    );
    String::from_utf8(out).unwrap_or_default()
}
