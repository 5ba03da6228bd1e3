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
//!    filtered) when no worker holds the file; a conflict is tried again, a lease skips it.
//!
//! A fatal sink error (401, 403, 404, retries exhausted) stops the redelivery: the files done
//! before it keep their result, the file in progress keeps its dead letters as they were.

mod job;
mod report;
mod rows;
mod select;

use std::path::PathBuf;
use std::time::Instant;

use crate::pipeline::now_rfc3339;
use crate::pipeline::transformer::TransformSpec;
use crate::sink::CluedInSink;
use crate::source::{Stage, StageError};
use crate::state::files;
use crate::state::{StateError, StateStore};
use crate::wire::Shape;

use job::Redelivery;
pub use report::{RedeliveryCounts, RedeliveryFileReport, RedeliveryReport};
use select::load;

/// What a redelivery needs besides the sink.
#[derive(Clone)]
pub struct RedeliverOptions {
    pub stage: Stage,
    /// The plugin (`--plugin`: possibly a new version) or mapping to transform the rows with.
    pub transform: TransformSpec,
    /// Rows per plugin call (adjacent rows are read and transformed together).
    pub batch_rows: usize,
    pub shape: Shape,
    pub state: StateStore,
    /// Where the human-readable `dead-letters.ndjson` log is (appended to).
    pub dead_letter_dir: PathBuf,
}

/// Why a redelivery could not be done. A fatal sink error is not one of these: it ends the
/// redelivery with [`RedeliveryReport::fatal_error`] set, after the files finished before it.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
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
    /// The runtime the sink's requests run on could not be started.
    #[error("cannot start the HTTP runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A dead letter left to keep could not be encoded for the state.
    #[error("cannot encode a dead letter: {0}")]
    EncodeLetter(#[source] serde_json::Error),
}

/// Redelivers the dead letters of `options.stage` kept in `options.state`, through `sink`.
/// Call from a plain thread (not inside a tokio runtime): it runs its own.
pub fn redeliver(
    options: &RedeliverOptions,
    sink: &CluedInSink,
) -> Result<RedeliveryReport, RedeliverError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let run_id = uuid::Uuid::new_v4().to_string();
    let stage_url = options.stage.state_key().to_owned();
    let prefix = files::dead_letters_prefix(&stage_url);
    let folders = load(&options.state, &prefix)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RedeliverError::Runtime)?;
    let mut job = Redelivery {
        options,
        sink,
        runtime: &runtime,
        run_id: run_id.clone(),
        stage_url: stage_url.clone(),
        transformer: Default::default(),
        log: None,
        plugin: options.transform.report(),
        receipts: Vec::new(),
    };

    let chunks = folders.values().map(|f| f.chunks.len() as u64).sum();
    let letters: u64 = folders.values().map(|f| f.letters.len() as u64).sum();
    let duplicates = folders.values().map(|f| f.duplicates).sum();
    let mut counts = RedeliveryCounts::default();
    let mut reports = Vec::new();
    let mut fatal_error = None;
    let outcome = (|| -> Result<(), RedeliverError> {
        for (folder_name, folder) in &folders {
            let stopped = job.folder(&prefix, folder_name, folder, &mut counts, &mut reports)?;
            if let Some(stopped) = stopped {
                fatal_error = Some(stopped.to_string());
                break;
            }
        }
        Ok(())
    })();
    job.finish_transformer();
    if let Some(log) = job.log.as_mut() {
        log.flush().map_err(|source| RedeliverError::DeadLetters {
            path: job.options.dead_letter_dir.clone(),
            source,
        })?;
    }
    outcome?;

    let stats = sink.stats();
    let remaining = letters - counts.delivered - counts.filtered - counts.superseded;
    let secs = started.elapsed().as_secs_f64();
    Ok(RedeliveryReport {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_keep_their_messages_and_say_the_cause_once() {
        let runtime = RedeliverError::Runtime(std::io::Error::other("no threads"));
        assert_eq!(
            runtime.to_string(),
            "cannot start the HTTP runtime: no threads"
        );
        assert_eq!(
            crate::errors::one_line(&runtime),
            "cannot start the HTTP runtime: no threads"
        );
        assert!(std::error::Error::source(&runtime).is_some());

        let cause = serde_json::from_str::<u8>("x").unwrap_err();
        let said = cause.to_string();
        let encode = RedeliverError::EncodeLetter(cause);
        assert_eq!(
            encode.to_string(),
            format!("cannot encode a dead letter: {said}")
        );
        assert_eq!(crate::errors::one_line(&encode), encode.to_string());
    }
}
