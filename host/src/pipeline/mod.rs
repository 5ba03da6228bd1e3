//! The pipeline core: files → transform workers (one plugin instance each) → request bodies
//! → the CluedIn sink → accounting, for every row.
//!
//! `stagepush run` (and `run --event`, `serve`'s processor) drive it through [`run`];
//! `retry` and the relay reuse its pieces ([`transformer`] for plugin runners and their
//! statistics, [`outcome`] for dead letters and a row's fate from its records' fates,
//! [`report`] for receipts and plugin statistics).
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
//!
//! Modules: [`run`](run()) (start, wait, finish), `worker` (one thread's loop over claimed
//! files), `file_run` (one file's journey from claim to done), `claims` (which file next),
//! `collect` (the endpoint's outcomes → state, receipts, dead letters), `only_changed`,
//! `tally` (row counts), `stop` (the first fatal cause; every wait ends), `letters` (the
//! run's dead-letter output), [`outcome`], [`transformer`], [`report`], [`error`],
//! [`dry_run`] (`run --dry-run`: the bodies a run would send, without sending or state).

mod claims;
mod collect;
pub mod dry_run;
pub mod error;
mod file_run;
mod letters;
mod only_changed;
pub mod outcome;
pub mod report;
mod run;
mod state;
mod stop;
mod tally;
pub mod transformer;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::source::{Stage, StageFile};
use crate::state::StateStore;
use crate::state::fingerprints::Fingerprints;
use crate::wire::Shape;

pub use crate::wire::time::now_rfc3339;
pub use error::PipelineError;
pub use report::{
    FileOutcome, FileReport, PluginReport, PossibleDuplicates, Receipt, RowCounts, RunReport,
    Warning,
};
pub use run::run;

/// What to do with a file that cannot be used (vanished, truncated, corrupt, another
/// schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
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
    /// The plugin (and its configuration) or the mapping that transforms the rows.
    pub transform: transformer::TransformSpec,
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
