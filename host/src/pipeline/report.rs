//! What a run tells: the run report (`--report FILE`, the state's `runs/`), its row counts,
//! receipts, warnings and per-file outcomes, and the plugin's statistics (also used by
//! `retry`'s report).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::plugin::Runner;
use crate::sink::SinkStats;
use crate::wire::time::now_rfc3339;

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
    pub outcome: FileOutcome,
    /// The segment this run started at, when an earlier run had delivered part of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_at_segment: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a file ended in a run (the report's `files[].outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileOutcome {
    /// Every row delivered, filtered or dead-lettered, as the state records.
    Done,
    /// Done by an earlier run (not read).
    Skipped,
    /// Finished by another worker while this run waited for it.
    DoneElsewhere,
    /// Unusable: its rows are dead-lettered as unread.
    BadFile,
    /// The run stopped before the file was done.
    NotFinished,
    /// Another worker took the file over (this run's lease lapsed).
    LeaseLost,
}

impl FileOutcome {
    /// The outcome as the report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FileOutcome::Done => "done",
            FileOutcome::Skipped => "skipped",
            FileOutcome::DoneElsewhere => "done-elsewhere",
            FileOutcome::BadFile => "bad-file",
            FileOutcome::NotFinished => "not-finished",
            FileOutcome::LeaseLost => "lease-lost",
        }
    }

    /// Whether the run got to the end of the file (the watermarks cover it).
    pub fn finished(self) -> bool {
        matches!(
            self,
            FileOutcome::Done
                | FileOutcome::Skipped
                | FileOutcome::DoneElsewhere
                | FileOutcome::BadFile
        )
    }
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
    /// Set when the run was cancelled ([`super::RunOptions::cancel`]): `SIGINT`, `SIGTERM`
    /// or `shutdown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

/// The plugin's part of a report: which plugin, and what its calls cost.
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

impl PluginReport {
    /// A report of no calls yet.
    pub fn new(plugin: &crate::plugin::Plugin) -> Self {
        PluginReport {
            name: plugin.name().to_string(),
            version: plugin.info().version.clone(),
            sha256: plugin.digest().to_string(),
            calls: 0,
            faults: 0,
            rebuilds: 0,
            seconds_in_plugin: 0.0,
        }
    }

    /// Adds a runner's calls, faults, rebuilds and time (when it is done).
    pub fn add(&mut self, runner: &Runner) {
        let stats = runner.stats();
        self.calls += stats.calls;
        self.faults += stats.faults;
        self.rebuilds += stats.rebuilds;
        self.seconds_in_plugin += stats.time_in_plugin.as_secs_f64();
    }
}

/// What the run's accounting hands to the report.
pub(super) struct Totals {
    pub(super) run_id: String,
    pub(super) started_at: String,
    pub(super) duration: Duration,
    pub(super) plugin: PluginReport,
    pub(super) rows: RowCounts,
    pub(super) records_encoded: u64,
    pub(super) records_unchanged: u64,
    pub(super) possible_duplicates: PossibleDuplicates,
    pub(super) files_skipped: u64,
    pub(super) files_resumed: u64,
    pub(super) watermarks: BTreeMap<String, String>,
    pub(super) receipts: Vec<Receipt>,
    pub(super) warnings: Vec<Warning>,
    pub(super) files: Vec<FileReport>,
    pub(super) dead_letters: PathBuf,
    pub(super) fatal_error: Option<String>,
}

impl RunReport {
    /// The report of a run's totals and its sink's statistics; `state`, `interrupted` and
    /// `watermarks_from_stopped_run` are set by the caller.
    pub(super) fn new(totals: Totals, sink: SinkStats) -> RunReport {
        let secs = totals.duration.as_secs_f64();
        RunReport {
            run_id: totals.run_id,
            started_at: totals.started_at,
            finished_at: now_rfc3339(),
            duration_secs: secs,
            plugin: totals.plugin,
            rows_per_second: if secs > 0.0 {
                totals.rows.read as f64 / secs
            } else {
                0.0
            },
            cpu_seconds: crate::procstat::cpu_seconds(),
            peak_rss_bytes: crate::procstat::peak_rss_bytes(),
            rows: totals.rows,
            records_encoded: totals.records_encoded,
            records_delivered: sink.records_delivered,
            records_rejected: sink.records_rejected,
            records_unchanged: totals.records_unchanged,
            possible_duplicates: totals.possible_duplicates,
            files_skipped: totals.files_skipped,
            files_resumed: totals.files_resumed,
            watermarks: totals.watermarks,
            watermarks_from_stopped_run: false,
            state: String::new(),
            state_dead_letters: String::new(),
            requests: sink.requests,
            retries: sink.retries,
            bytes_uncompressed: sink.bytes_uncompressed,
            bytes_sent: sink.bytes_sent,
            status: sink.status,
            responses_not_cluedin_json: sink.responses_not_cluedin_json,
            receipts: totals.receipts,
            warnings: totals.warnings,
            files: totals.files,
            dead_letters: totals.dead_letters,
            fatal_error: totals.fatal_error,
            interrupted: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_outcomes_are_written_as_before() {
        let names: Vec<String> = [
            FileOutcome::Done,
            FileOutcome::Skipped,
            FileOutcome::DoneElsewhere,
            FileOutcome::BadFile,
            FileOutcome::NotFinished,
            FileOutcome::LeaseLost,
        ]
        .iter()
        .map(|o| {
            let json = serde_json::to_string(o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
            json
        })
        .collect();
        assert_eq!(
            names,
            [
                "\"done\"",
                "\"skipped\"",
                "\"done-elsewhere\"",
                "\"bad-file\"",
                "\"not-finished\"",
                "\"lease-lost\""
            ]
        );
    }

    #[test]
    fn only_the_ends_of_a_file_count_as_finished() {
        assert!(FileOutcome::Done.finished());
        assert!(FileOutcome::BadFile.finished());
        assert!(!FileOutcome::NotFinished.finished());
        assert!(!FileOutcome::LeaseLost.finished());
    }
}
