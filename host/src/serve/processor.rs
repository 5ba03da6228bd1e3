//! The processor: one thread that delivers the pending files, one pipeline run at a time
//! (the run itself uses the configured `workers` and sink concurrency).
//!
//! A round lists `pending/<stage-id>/`, resolves each entry's URL to the file as it is now
//! (a file gone since is dropped with a warning), runs the pipeline over them, and removes
//! the entries whose file the delivery state then has as done (in the report: `done`,
//! `skipped`, `done-elsewhere` or `bad-file`; the state document, not the report, decides,
//! since a run stopped by a fatal error can report a file as read to the end whose last
//! bodies were refused). Others stay for the next round, which comes after a back-off when the round failed (1 s
//! doubling to 60 s). The thread also starts with a round, so entries left by an earlier
//! process are delivered (restart recovery).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::job::Job;
use crate::pipeline::{FileOutcome, Progress, display_name};
use crate::source::{StageError, StageFile};
use crate::state::files::{self, FileState, FileStatus};
use crate::state::{StateError, Version};

use super::metrics::Metrics;
use crate::state::pending::{PendingEntry, pending_prefix, remove_if_unchanged};

/// First back-off after a failed round.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often an idle processor lists the pending entries anyway (entries written by
/// another `serve` sharing the state).
pub const IDLE_RESCAN: Duration = Duration::from_secs(60);

/// Wakes the processor (new entries) and stops it (shutdown).
#[derive(Debug, Default)]
pub struct Signal {
    flags: Mutex<Flags>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Flags {
    woken: bool,
    stopped: bool,
    /// The processor thread ended (stopped, or panicked).
    ended: bool,
}

/// Marks the processor ended when dropped (also when its thread panics).
struct Ended<'a>(&'a Signal);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.lock().ended = true;
    }
}

impl Signal {
    /// New pending entries: start a round when idle.
    pub fn wake(&self) {
        self.lock().woken = true;
        self.changed.notify_all();
    }

    /// Shutdown: the processor ends after the current round.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Whether the processor thread ended before a shutdown asked it to (it panicked):
    /// `/healthz` then fails, so that the server is restarted.
    pub fn processor_failed(&self) -> bool {
        let flags = self.lock();
        flags.ended && !flags.stopped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Flags> {
        self.flags.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Clears the wake flag (a round is starting and will see what was written).
    fn take_wake(&self) {
        self.lock().woken = false;
    }

    /// Waits up to `timeout`; `wakeable`: a wake ends the wait too. `false` once stopped.
    fn wait(&self, timeout: Duration, wakeable: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut flags = self.lock();
        loop {
            if flags.stopped {
                return false;
            }
            if wakeable && flags.woken {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            flags = self
                .changed
                .wait_timeout(flags, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// How a round went.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// Nothing pending.
    Idle,
    /// Every file was finished (or replaced by a newer event: go again at once).
    Done,
    /// Something stays pending because of an error: back off.
    Failed,
}

/// The processor thread's body: rounds until `signal` stops it. `cancel` is the run's
/// cancel flag (set by the shutdown, so that a run in progress stops at its next batch).
pub fn run(job: Arc<Job>, metrics: Arc<Metrics>, signal: Arc<Signal>, cancel: Cancel) {
    let _ended = Ended(&signal);
    let mut backoff: Option<Duration> = None;
    while !signal.is_stopped() {
        signal.take_wake();
        let round = round(&job, &metrics, &cancel);
        if signal.is_stopped() {
            break;
        }
        match round {
            Round::Idle => {
                backoff = None;
                if !signal.wait(IDLE_RESCAN, true) {
                    break;
                }
            }
            Round::Done => backoff = None,
            Round::Failed => {
                let delay = backoff.map_or(FIRST_BACKOFF, |d| (d * 2).min(MAX_BACKOFF));
                backoff = Some(delay);
                tracing::warn!(
                    "files stay pending; next attempt in {} s",
                    delay.as_secs_f64()
                );
                if !signal.wait(delay, false) {
                    break;
                }
            }
        }
    }
    tracing::info!("processor stopped");
}

/// One pending entry as read.
struct Item {
    path: String,
    version: Version,
    entry: PendingEntry,
}

/// Whether the state says `file` (this version of it) is done: every row delivered,
/// filtered or dead-lettered, or the file dead-lettered as bad.
pub(crate) fn file_done(job: &Job, stage_url: &str, file: &StageFile) -> Result<bool, StateError> {
    let path = files::file_path(stage_url, &file.key);
    let Some(stored) = job.state.get(&path)? else {
        return Ok(false);
    };
    let doc = FileState::parse(&path, &stored)?;
    Ok(doc.status == FileStatus::Done && doc.identity == files::identity(file))
}

fn round(job: &Job, metrics: &Metrics, cancel: &Cancel) -> Round {
    let stage_url = job.stage.state_key().to_owned();
    let paths = match job.state.list(&pending_prefix(&stage_url)) {
        Ok(paths) => paths,
        Err(e) => {
            tracing::error!("cannot list the pending files: {e}");
            return Round::Failed;
        }
    };
    metrics.set_queue_depth(paths.len());
    if paths.is_empty() {
        return Round::Idle;
    }
    let mut failed = false;
    let mut items = Vec::new();
    for path in paths {
        match job.state.get(&path) {
            Ok(None) => {}
            Ok(Some(stored)) => match PendingEntry::parse(&path, &stored) {
                Ok(entry) => items.push(Item {
                    path,
                    version: stored.version,
                    entry,
                }),
                Err(e) => tracing::warn!("{e}; it is left alone"),
            },
            Err(e) => {
                tracing::error!("cannot read the pending entry {path}: {e}");
                failed = true;
            }
        }
    }
    // Resolve each entry to the file as it is now; several entries can name one file only
    // through different URLs of the same key, so group by the name the report uses.
    let mut files: Vec<StageFile> = Vec::new();
    let mut resolved: BTreeMap<String, StageFile> = BTreeMap::new();
    let mut waiting: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    let mut removed = 0usize;
    for item in items {
        match job.stage.file(&item.entry.url) {
            Ok(file) => {
                let name = display_name(&file);
                if !waiting.contains_key(&name) {
                    files.push(file.clone());
                    resolved.insert(name.clone(), file);
                }
                waiting.entry(name).or_default().push(item);
            }
            Err(e @ (StageError::NotFound { .. } | StageError::Vanished { .. })) => {
                tracing::warn!(
                    "{}: {e}; dropping its pending entry (deleted since the event?)",
                    item.entry.url
                );
                match remove_if_unchanged(&job.state, &item.path, &item.version) {
                    Ok(true) => removed += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!("cannot remove the pending entry {}: {e}", item.path);
                        failed = true;
                    }
                }
            }
            Err(e) => {
                tracing::error!("{}: {e}; it stays pending", item.entry.url);
                failed = true;
            }
        }
    }
    let total = waiting.values().map(Vec::len).sum::<usize>() + removed;
    if files.is_empty() {
        metrics.set_queue_depth(total - removed);
        return if failed { Round::Failed } else { Round::Idle };
    }
    tracing::info!("delivering {} pending files", files.len());
    let outcome = job.run(files, Arc::new(Progress::default()), Some(cancel.clone()));
    let cancelled = cancel.is_cancelled();
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            metrics.add_failed_run();
            tracing::error!("the run stopped: {e}; its files stay pending");
            metrics.set_queue_depth(total - removed);
            return Round::Failed;
        }
    };
    metrics.add_run(&report);
    if let Some(error) = &report.fatal_error {
        tracing::error!("run {} stopped: {error}", report.run_id);
        failed = true;
    }
    let outcomes: BTreeMap<&str, FileOutcome> = report
        .files
        .iter()
        .map(|f| (f.file.as_str(), f.outcome))
        .collect();
    let mut finished = 0usize;
    let mut kept = 0usize;
    for (name, file) in &resolved {
        let items = &waiting[name];
        let outcome = outcomes.get(name.as_str()).copied();
        // The file's state document decides, not the report: a run that stopped on a
        // fatal error may report a file whose last bodies were refused as read to the end.
        let done = match file_done(job, &stage_url, file) {
            Ok(done) => done,
            Err(e) => {
                tracing::error!("{name}: cannot read its delivery state: {e}");
                false
            }
        };
        if !done {
            kept += items.len();
            if !cancelled {
                tracing::warn!(
                    "{name}: {}; it stays pending",
                    outcome.map_or("not reached", |o| if o.finished() {
                        "not acknowledged"
                    } else {
                        o.as_str()
                    })
                );
                failed = true;
            }
            continue;
        }
        finished += 1;
        for item in items {
            match remove_if_unchanged(&job.state, &item.path, &item.version) {
                Ok(true) => removed += 1,
                // Named again since: the next round looks at it (a rerun skips it when the
                // file is unchanged).
                Ok(false) => kept += 1,
                Err(e) => {
                    tracing::error!("cannot remove the pending entry {}: {e}", item.path);
                    kept += 1;
                    failed = true;
                }
            }
        }
    }
    metrics.set_queue_depth(total - removed);
    tracing::info!(
        "run {}: {finished} files finished, {kept} pending entries kept; {} rows delivered, {} filtered, {} dead-lettered; {} records delivered",
        report.run_id,
        report.rows.delivered,
        report.rows.filtered,
        report.rows.dead_lettered,
        report.records_delivered
    );
    if failed && !cancelled {
        Round::Failed
    } else {
        Round::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_ends_every_wait_and_a_wake_only_wakeable_ones() {
        let signal = Arc::new(Signal::default());
        signal.wake();
        let started = Instant::now();
        assert!(signal.wait(Duration::from_secs(30), true));
        assert!(started.elapsed() < Duration::from_secs(5));
        // A wake does not cut a back-off short.
        assert!(signal.wait(Duration::from_millis(50), false));
        let stopper = Arc::clone(&signal);
        let thread = std::thread::spawn(move || stopper.wait(Duration::from_secs(30), false));
        signal.stop();
        assert!(!thread.join().unwrap());
        assert!(signal.is_stopped());
    }

    #[test]
    fn a_processor_that_ends_unasked_is_a_failure() {
        let signal = Signal::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ended = Ended(&signal);
            panic!("boom");
        }));
        assert!(panicked.is_err());
        assert!(signal.processor_failed());
        let signal = Signal::default();
        signal.stop();
        drop(Ended(&signal));
        assert!(!signal.processor_failed());
    }
}
