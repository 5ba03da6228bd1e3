//! A redelivery's working set, folder by folder: the letters of each file sent again or
//! set aside, the folder's chunks rewritten, the local log appended to, and the file's
//! counts moved in its state document.

use std::collections::BTreeMap;

use crate::deadletter::{DeadLetter, DeadLetterWriter};
use crate::pipeline::transformer::TransformerSlot;
use crate::pipeline::{PluginReport, Receipt, display_name, now_rfc3339};
use crate::plugin::PluginError;
use crate::sink::{CluedInSink, SinkError};
use crate::source::{StageError, StageFile};
use crate::state::files::{self, FileState};
use crate::state::{PutMode, StateError};
use crate::wire::time::now_ms;

use super::report::{RedeliveryCounts, RedeliveryFileReport, add};
use super::select::{Folder, chunk_time, current_file};
use super::{RedeliverError, RedeliverOptions};

/// Attempts at updating a file's state document when others write it at the same time.
const COUNT_UPDATE_ATTEMPTS: usize = 5;

/// What stops a redelivery in the middle of a file (the report's `fatalError`, the file's
/// `error`): the storage unreachable, the plugin unable to run, a fatal sink error.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stopped {
    #[error(transparent)]
    Stage(StageError),
    #[error(transparent)]
    Plugin(PluginError),
    /// The mapping does not fit the file's schema.
    #[error(transparent)]
    Mapping(crate::mapping::MappingError),
    #[error(transparent)]
    Sink(SinkError),
}

/// The redelivery's working set.
pub(super) struct Redelivery<'a> {
    pub(super) options: &'a RedeliverOptions,
    pub(super) sink: &'a CluedInSink,
    pub(super) runtime: &'a tokio::runtime::Runtime,
    pub(super) run_id: String,
    pub(super) stage_url: String,
    /// The plugin instance of the schema last seen (files of one stage share theirs).
    pub(super) transformer: TransformerSlot,
    /// The local dead-letter log, opened at the first row rejected again.
    pub(super) log: Option<DeadLetterWriter>,
    pub(super) plugin: PluginReport,
    pub(super) receipts: Vec<Receipt>,
}

impl Redelivery<'_> {
    /// Redelivers the letters of one folder and rewrites it. `Some` when a fatal sink error
    /// stopped the redelivery (the folder is left as it was).
    pub(super) fn folder(
        &mut self,
        prefix: &str,
        folder_name: &str,
        folder: &Folder,
        counts: &mut RedeliveryCounts,
        reports: &mut Vec<RedeliveryFileReport>,
    ) -> Result<Option<Stopped>, RedeliverError> {
        let mut by_key: BTreeMap<&str, Vec<&DeadLetter>> = BTreeMap::new();
        for ((key, _, _), letter) in &folder.letters {
            by_key.entry(key.as_str()).or_default().push(letter);
        }
        let mut remaining: Vec<DeadLetter> = Vec::new();
        let mut changed = folder.duplicates > 0;
        let mut updates = Vec::new();
        let mut folder_counts = RedeliveryCounts::default();
        let mut folder_reports = Vec::new();
        for (key, letters) in by_key {
            let shown = letters
                .first()
                .map(|l| l.file.clone())
                .unwrap_or_else(|| key.to_string());
            let mut rows = RedeliveryCounts::default();
            let Some(file) = current_file(&self.options.stage, key)? else {
                tracing::warn!(file = %shown, rows = letters.len(), "the file no longer exists: its dead letters are kept");
                rows.file_gone = letters.len() as u64;
                remaining.extend(letters.into_iter().cloned());
                add(&mut folder_counts, &rows);
                folder_reports.push(RedeliveryFileReport {
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
                    Err(stopped) => {
                        reports.push(RedeliveryFileReport {
                            file: display_name(&file),
                            key: key.to_string(),
                            outcome: "not-finished",
                            rows: RedeliveryCounts::default(),
                            error: Some(stopped.to_string()),
                        });
                        return Ok(Some(stopped));
                    }
                };
                rows.delivered = result.delivered;
                rows.filtered = result.filtered;
                rows.still_rejected = result.still.len() as u64;
                rows.redelivered = rows.delivered + rows.filtered + rows.still_rejected;
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
            folder_reports.push(RedeliveryFileReport {
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
    ) -> Result<(), RedeliverError> {
        let state = &self.options.state;
        if !remaining.is_empty() {
            let mut bytes = Vec::new();
            for letter in remaining {
                serde_json::to_writer(&mut bytes, letter).map_err(RedeliverError::EncodeLetter)?;
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
    fn log_letters(&mut self, letters: &[DeadLetter]) -> Result<(), RedeliverError> {
        if letters.is_empty() {
            return Ok(());
        }
        let dir = &self.options.dead_letter_dir;
        let error = |source| RedeliverError::DeadLetters {
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

    /// Adds the statistics of the current plugin instance to the report and drops it.
    pub(super) fn finish_transformer(&mut self) {
        self.transformer.finish(&mut self.plugin);
    }

    /// Moves the file's counts in its state document: `delivered` and `filtered` rows are
    /// no longer dead letters. Skipped (with a note in the log) when a worker holds the
    /// file or the document describes another version; never fails the redelivery.
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
            doc.add_receipts(receipts.iter().cloned());
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

impl From<crate::pipeline::transformer::StartError> for Stopped {
    fn from(e: crate::pipeline::transformer::StartError) -> Self {
        match e {
            crate::pipeline::transformer::StartError::Plugin(e) => Stopped::Plugin(e),
            crate::pipeline::transformer::StartError::Mapping(e) => Stopped::Mapping(e),
        }
    }
}
