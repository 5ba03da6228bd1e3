//! What a run's threads share, grouped by owner: the checkpointer (delivery state), the
//! stop, the tally, the dead letters, the bodies in flight, `--only-changed`, watermarks,
//! per-file reports and the plugin's statistics. Each group guards itself; no lock is held
//! while another is taken, except the tally's inside a letter's write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::state::checkpoint::{Checkpointer, FileRef};
use crate::sync::lock;
use crate::watermark::Watermarks;

use super::letters::Letters;
use super::only_changed::OnlyChanged;
use super::stop::Stop;
use super::tally::Tally;
use super::{FileReport, PipelineError, PluginReport, PossibleDuplicates, Progress};

/// See the module docs.
pub(super) struct RunState {
    pub(super) checkpointer: Checkpointer,
    pub(super) stop: Stop,
    pub(super) tally: Tally,
    pub(super) letters: Letters,
    /// Request bodies in flight: body id → its file and segment.
    pub(super) in_flight: Mutex<HashMap<u64, (FileRef, u64)>>,
    pub(super) only_changed: Option<OnlyChanged>,
    pub(super) watermarks: Watermarks,
    pub(super) files: Mutex<FileBook>,
    pub(super) plugin: Mutex<PluginReport>,
    /// The plugin's SHA-256 (recorded in the files it delivers).
    pub(super) plugin_digest: String,
    pub(super) progress: Arc<Progress>,
}

/// Per-file facts for the report.
#[derive(Default)]
pub(super) struct FileBook {
    pub(super) reports: Vec<FileReport>,
    /// Files done by earlier runs.
    pub(super) skipped: u64,
    /// Files resumed after an earlier run delivered part of them.
    pub(super) resumed: u64,
    /// Of `skipped`, those delivered by another plugin: its digest → files.
    pub(super) skipped_other_plugin: std::collections::BTreeMap<String, u64>,
    pub(super) duplicates: PossibleDuplicates,
}

impl RunState {
    /// Stops the run with `cause` (the first cause stays) and wakes every wait.
    pub(super) fn fail(&self, cause: PipelineError) {
        self.stop.fail(cause);
        self.checkpointer.interrupt();
    }

    /// Stops the run (its cause, if any, is recorded elsewhere) and wakes every wait:
    /// workers stop at their next batch, those waiting for acknowledgements stop waiting.
    pub(super) fn halt(&self) {
        self.stop.halt();
        self.checkpointer.interrupt();
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.stopped()
    }

    /// Applies the watermarks and fingerprints of an acknowledged segment.
    pub(super) fn segment_acked(&self, file: FileRef, segment: u64) {
        self.watermarks.segment_acked(file, segment);
        if let Some(only_changed) = &self.only_changed {
            only_changed.segment_acked(file, segment);
        }
    }

    pub(super) fn report_file(&self, report: FileReport) {
        lock(&self.files).reports.push(report);
    }
}
