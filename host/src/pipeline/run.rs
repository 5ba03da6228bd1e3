//! [`run`]: starts a run (schema, plugin check, dead letters, checkpointer), starts the
//! sink and the workers, collects the endpoint's outcomes until both are done, then
//! finishes the state and writes the report.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::sink::{CluedInSink, Payload, PayloadOutcome, SinkError, SinkStats};
use crate::state::checkpoint::{CheckpointConfig, Checkpointer};
use crate::state::files::{self as state_files, FileStatus};
use crate::sync::lock;
use crate::watermark::Watermarks;
use crate::wire::time::now_rfc3339;

use super::claims::FileQueue;
use super::collect::Collector;
use super::letters::Letters;
use super::only_changed::OnlyChanged;
use super::report::Totals;
use super::state::{FileBook, RunState};
use super::stop::Stop;
use super::tally::Tally;
use super::transformer::Transformer;
use super::worker::worker;
use super::{FileOutcome, PipelineError, Progress, RunOptions, RunReport};

/// Request bodies waiting for the sink, per worker.
const BODIES_IN_QUEUE_PER_WORKER: usize = 4;

/// Worker threads of the runtime that delivers bodies.
const SINK_THREADS: usize = 2;

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
    let total_rows: u64 = options
        .files
        .iter()
        .filter_map(|file| options.stage.open_footer(file).ok())
        .filter_map(|source| source.num_rows())
        .sum();
    progress.rows_total.store(total_rows, Ordering::Relaxed);
    let schema =
        crate::bad_file::stage_schema(&options.stage, &options.files, options.on_bad_file)?;
    if !options.files.is_empty() {
        // Fail fast on a refused schema or configuration, before any worker starts.
        Transformer::start(&options.transform, schema.clone(), options.shape)?;
    }
    let letters = Letters::open(&options.dead_letter_dir)?;
    let stage_url = options.stage.state_key().to_owned();
    // A full refresh's generation, if the stage had one: files of another are sent again.
    let generation =
        crate::state::refresh::current(&options.state, &stage_url)?.map(|g| g.generation);
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
            group: Default::default(),
            generation,
            plugin_sha256: Some(options.transform.digest()),
        },
    );
    checkpointer.sync_letters_with(crate::deadletter::letter_sync(letters.writer()));
    let run = Arc::new(RunState {
        checkpointer,
        stop: Stop::new(options.cancel.clone()),
        tally: Tally::default(),
        letters,
        in_flight: Mutex::default(),
        only_changed: options.fingerprints.clone().map(OnlyChanged::new),
        watermarks: Watermarks::default(),
        files: Mutex::new(FileBook::default()),
        plugin: Mutex::new(options.transform.report()),
        plugin_digest: options.transform.digest(),
        progress,
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SINK_THREADS)
        .enable_all()
        .thread_name("stagepush-sink")
        .build()
        .map_err(PipelineError::Runtime)?;
    // An empty stage (Snowflake writes no file for an empty result) starts no worker.
    let workers = options.workers.max(1).min(options.files.len());
    let (batch_tx, batch_rx) =
        mpsc::channel::<Payload>((workers * BODIES_IN_QUEUE_PER_WORKER).max(1));
    let (outcome_tx, mut outcome_rx) = mpsc::channel::<PayloadOutcome>(64);
    let sink_task = {
        let sink = sink.clone();
        runtime.spawn(async move { sink.run(batch_rx, outcome_tx).await })
    };
    // A cancel stops the workers and the sink at once (the task ends with the runtime).
    if let Some(cancel) = options.cancel.clone() {
        let (run, sink) = (run.clone(), sink.clone());
        runtime.spawn(async move {
            cancel.cancelled().await;
            tracing::info!(
                "{}: stopping at the next batch; what CluedIn acknowledged is recorded",
                cancel.reason().unwrap_or_default()
            );
            run.halt();
            sink.stop();
        });
    }

    let mut collector = Collector::new(&options.stage, &options.files);
    // Workers take files in order from one queue.
    let queue = FileQueue::new(&options.files, options.lease);
    let sink_stats = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for w in 0..workers {
            let (run, options, schema, queue, sink) = (&*run, &options, &schema, &queue, &sink);
            let batch_tx = batch_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("stagepush-worker-{w}"))
                .spawn_scoped(scope, move || {
                    if let Err(e) = worker(run, options, schema, queue, sink, &batch_tx) {
                        run.fail(e);
                    }
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // The workers started stop at their next batch; what they sent is
                    // collected below, so none of them waits forever.
                    run.fail(PipelineError::SpawnWorker(e));
                    break;
                }
            }
        }
        drop(batch_tx);
        // Collect outcomes until every worker is done and the sink has drained.
        let collected = runtime.block_on(async {
            while let Some(outcome) = outcome_rx.recv().await {
                if let Err(e) = collector.outcome(&run, outcome) {
                    run.fail(e);
                    sink.stop();
                }
            }
            sink_task.await
        });
        // The sink's cause first (workers blocked on it stop now), then the workers.
        let stats = sink_stats(&run, &sink, collected);
        for handle in handles {
            if handle.join().is_err() {
                run.fail(PipelineError::WorkerPanicked);
            }
        }
        stats
    });
    run.letters.flush()?;
    if let Err(e) = run.checkpointer.finish() {
        run.fail(PipelineError::StateFinish(e));
    }
    let mut report = finish(
        run_id, started_at, started, &run, &options, &stage_url, collector, sink_stats,
    );
    report.concurrency = sink.concurrency_stats();
    Ok(report)
}

/// The sink's statistics, its fatal cause recorded.
fn sink_stats(
    run: &RunState,
    sink: &CluedInSink,
    collected: Result<Result<SinkStats, SinkError>, tokio::task::JoinError>,
) -> SinkStats {
    match collected {
        Ok(Ok(stats)) => stats,
        // Stopped by this run (a cancel, or a failure recorded already).
        Ok(Err(SinkError::Stopped)) if run.stopped() => sink.stats(),
        Ok(Err(e)) => {
            run.fail(e.into());
            sink.stats()
        }
        Err(e) => {
            run.fail(PipelineError::SinkTask(e));
            sink.stats()
        }
    }
}

/// The report of a run that ended.
#[allow(clippy::too_many_arguments)]
fn finish(
    run_id: String,
    started_at: String,
    started: Instant,
    run: &RunState,
    options: &RunOptions,
    stage_url: &str,
    collector: Collector<'_>,
    sink_stats: SinkStats,
) -> RunReport {
    let counts = run.tally.counts(
        collector.rejected_rows.len() as u64,
        run.stopped(),
        sink_stats.records_delivered,
    );
    let book = std::mem::take(&mut *lock(&run.files));
    let mut files = book.reports;
    // A file is done when the state says so: its bodies may all have been sent and yet
    // not acknowledged when the run stopped.
    for f in files.iter_mut() {
        if let Some(claimed) = run.letters.claimed_file(&f.file)
            && matches!(f.outcome, FileOutcome::Done | FileOutcome::BadFile)
            && run.checkpointer.document(claimed.file).status != FileStatus::Done
        {
            f.outcome = FileOutcome::NotFinished;
        }
    }
    files.sort_by(|a, b| a.file.cmp(&b.file));
    let plugin = lock(&run.plugin).clone();
    let mut warnings = collector.warnings;
    warnings.extend(plugin.never_set_warnings());
    let totals = Totals {
        run_id,
        started_at,
        duration: started.elapsed(),
        plugin,
        rows: counts,
        records_encoded: run.tally.records_encoded(),
        records_unchanged: run.tally.records_unchanged(),
        possible_duplicates: book.duplicates,
        files_skipped: book.skipped,
        files_resumed: book.resumed,
        files_skipped_other_plugin: book.skipped_other_plugin,
        watermarks: run.watermarks.report(),
        receipts: collector.receipts,
        warnings,
        files,
        dead_letters: run.letters.path().to_path_buf(),
        fatal_error: run.stop.cause(),
    };
    let mut report = RunReport::new(totals, sink_stats);
    report.interrupted = run.stop.interrupted();
    // Stopped before the end: a fatal error, or interrupted before every file finished.
    report.watermarks_from_stopped_run = report.fatal_error.is_some()
        || (report.interrupted.is_some()
            && report.files.iter().filter(|f| f.outcome.finished()).count() < options.files.len());
    report.state = options.state.location().to_string();
    report.state_dead_letters = format!(
        "{}/{}",
        options.state.location().trim_end_matches('/'),
        state_files::dead_letters_prefix(stage_url)
    );
    report
}
