//! The run report's schema (`--report FILE`, the state's `runs/`): written by `run`
//! ([`crate::pipeline`] fills it), read back by `status` (`state::status`). Declared once,
//! here; fields added since the first version default when an older report is read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::deadletter::reasons::TopMessages;
use crate::sink::concurrency::ConcurrencyStats;

/// Counts of rows by outcome: `read = delivered + filtered + unchanged + dead_lettered`.
/// `read` counts every row the run accounted for, including the unread rows of a bad file
/// (from its footer); a file whose footer cannot be read has an unknown number of rows and
/// gets one dead letter, counted as one row.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowCounts {
    pub read: u64,
    pub delivered: u64,
    pub filtered: u64,
    /// `--only-changed`: rows whose every record CluedIn already had.
    #[serde(default)]
    pub unchanged: u64,
    pub dead_lettered: u64,
    /// Dead-lettered rows by stage (`read`, `plugin`, `encode`, `endpoint`).
    #[serde(default)]
    pub dead_lettered_by_stage: BTreeMap<String, u64>,
    /// Dead-lettered rows by reason, `stage/kind` (`read/corrupt-file`, `plugin/rejected`,
    /// `endpoint/http-400`, …), as `stagepush status` counts them.
    #[serde(default)]
    pub dead_lettered_by_reason: BTreeMap<String, u64>,
    /// The most frequent messages of each reason, with counts and an example row (see
    /// `crate::deadletter::reasons`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dead_lettered_by_message: BTreeMap<String, TopMessages>,
}

/// A request the endpoint stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub endpoint: String,
    pub receipt_id: Option<String>,
    pub request_id: String,
    pub records: usize,
}

/// A warning in an endpoint's 2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    pub file: Option<String>,
    pub row: Option<u64>,
    pub property: Option<String>,
    pub message_id: Option<String>,
    pub message: Option<String>,
}

/// What happened to one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PossibleDuplicates {
    pub segments: u64,
    pub records: u64,
}

/// The run report (`--report FILE`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub run_id: String,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub duration_secs: f64,
    #[serde(default)]
    pub plugin: PluginReport,
    pub rows: RowCounts,
    #[serde(default)]
    pub records_encoded: u64,
    #[serde(default)]
    pub records_delivered: u64,
    #[serde(default)]
    pub records_rejected: u64,
    /// `--only-changed`: records not sent because CluedIn already had them.
    #[serde(default)]
    pub records_unchanged: u64,
    #[serde(default)]
    pub possible_duplicates: PossibleDuplicates,
    /// Files done by earlier runs (not read).
    #[serde(default)]
    pub files_skipped: u64,
    /// Files this run resumed after an earlier run delivered part of them.
    #[serde(default)]
    pub files_resumed: u64,
    /// Of `files_skipped`, those delivered by another plugin: its SHA-256 → files (a
    /// rebuilt plugin does not resend them; `run --full-refresh` does).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_skipped_other_plugin: BTreeMap<String, u64>,
    /// The latest record timestamp per entity type (RFC 3339) among the records CluedIn
    /// acknowledged (see `crate::watermark`): where the next incremental unload can start
    /// (`… WHERE UPDATED_AT > '<watermark>'`).
    #[serde(default)]
    pub watermarks: BTreeMap<String, String>,
    /// The run stopped before the end (a fatal error, or interrupted): its watermarks cover
    /// only what was acknowledged before the stop; rerun before using them.
    #[serde(default)]
    pub watermarks_from_stopped_run: bool,
    /// The delivery state location.
    #[serde(default)]
    pub state: String,
    /// Where the state keeps this stage's dead letters (for `retry`).
    #[serde(default)]
    pub state_dead_letters: String,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub retries: u64,
    #[serde(default)]
    pub bytes_uncompressed: u64,
    #[serde(default)]
    pub bytes_sent: u64,
    #[serde(default)]
    pub status: BTreeMap<u16, u64>,
    /// 2xx answers whose body was not CluedIn's JSON (counted delivered; see `sink`).
    #[serde(default)]
    pub responses_not_cluedin_json: u64,
    /// What the request concurrency did (adaptive or pinned; limit, changes, round trips).
    #[serde(default)]
    pub concurrency: ConcurrencyStats,
    #[serde(default)]
    pub rows_per_second: f64,
    /// CPU seconds of the whole process (user + system), when the OS tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Peak resident memory of the process, bytes, when the OS tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    #[serde(default)]
    pub receipts: Vec<Receipt>,
    #[serde(default)]
    pub warnings: Vec<Warning>,
    #[serde(default)]
    pub files: Vec<FileReport>,
    #[serde(default)]
    pub dead_letters: PathBuf,
    /// Set when the run stopped before the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal_error: Option<String>,
    /// Set when the run was cancelled (`RunOptions::cancel`): `SIGINT`, `SIGTERM`
    /// or `shutdown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// `run --queue`: what happened to the queue's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueCounts>,
}

/// The messages of a queue consumer (`run --queue`, `serve --queue`): received, deleted
/// (done), visibility extensions (heartbeats), left in the queue (not done; visible again at
/// once), and dead-lettered (can never be delivered: deleted with a dead letter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueCounts {
    pub received: u64,
    pub deleted: u64,
    pub extended: u64,
    pub left: u64,
    pub dead_lettered: u64,
}

/// The plugin's part of a report: which plugin, and what its calls cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginReport {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub calls: u64,
    pub faults: u64,
    /// The faults by kind (`timeout`, `memory-limit`, `trap`, `invalid-output`), each with
    /// an example (file, rows of the call, message). A fault rebuilds the instance and
    /// reruns the call's rows; only a row that faults alone is dead-lettered.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub faults_by_kind: BTreeMap<String, FaultCount>,
    pub rebuilds: u64,
    pub seconds_in_plugin: f64,
    /// A mapping's declared properties (`Type.property`) that no record had; `None` for
    /// plugins. Reported as `warnings`, not kept here.
    #[serde(skip)]
    pub never_set: Option<Vec<String>>,
    /// The warnings the plugin logged during `init`, each once however many workers
    /// started it (a column it looked for that the stage does not have, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_warnings: Vec<String>,
}

/// The faults of one kind (the report's `plugin.faultsByKind`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultCount {
    pub count: u64,
    /// The first one: `FILE rows A to B: MESSAGE` (cut at `deadletter::reasons::MAX_MESSAGE_CHARS`).
    pub example: String,
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

    #[test]
    fn a_report_of_the_first_version_reads_with_defaults_and_a_non_report_does_not() {
        let old = r#"{"runId":"r1","startedAt":"2025-06-01T12:00:00Z",
            "rows":{"read":3,"delivered":2,"filtered":0,"deadLettered":1},
            "fatalError":"the endpoint refused the token"}"#;
        let report: RunReport = serde_json::from_str(old).unwrap();
        assert_eq!(report.rows.read, 3);
        assert_eq!(report.rows.unchanged, 0);
        assert!(report.files.is_empty() && report.watermarks.is_empty());
        assert!(!report.watermarks_from_stopped_run);
        assert_eq!(
            report.fatal_error.as_deref(),
            Some("the endpoint refused the token")
        );
        let error = serde_json::from_str::<RunReport>(r#"{"rows":{}}"#).unwrap_err();
        assert!(error.to_string().contains("missing field"), "{error}");
    }

    #[test]
    fn a_report_reads_back_as_it_was_written() {
        let report = RunReport {
            run_id: "r2".into(),
            started_at: "2025-06-01T12:00:00Z".into(),
            rows: RowCounts {
                read: 5,
                delivered: 5,
                ..RowCounts::default()
            },
            files: vec![FileReport {
                file: "a.parquet".into(),
                rows: 5,
                outcome: FileOutcome::DoneElsewhere,
                resumed_at_segment: Some(1),
                error: None,
            }],
            ..serde_json::from_str(r#"{"runId":"","startedAt":"","rows":{"read":0,"delivered":0,"filtered":0,"deadLettered":0}}"#).unwrap()
        };
        let json = serde_json::to_string(&report).unwrap();
        let back: RunReport = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.files[0].outcome, FileOutcome::DoneElsewhere);
    }
}
