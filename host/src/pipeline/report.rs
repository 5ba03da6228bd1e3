//! Filling the run report (its schema is [`crate::run_report`], shared with `status`): a
//! run's totals and its sink's statistics, and the plugin's statistics (also used by
//! `retry`'s report).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::run_report::{
    FaultCount, FileOutcome, FileReport, PluginReport, PossibleDuplicates, Receipt, RowCounts,
    RunReport, Warning,
};

use crate::deadletter::reasons::cut;
use crate::plugin::{Runner, RunnerStats};
use crate::sink::SinkStats;
use crate::sink::concurrency::ConcurrencyStats;
use crate::wire::time::now_rfc3339;

impl PluginReport {
    /// A report of no calls yet.
    pub fn new(plugin: &crate::plugin::Plugin) -> Self {
        PluginReport {
            name: plugin.name().to_string(),
            version: plugin.info().version.clone(),
            sha256: plugin.digest().to_string(),
            calls: 0,
            faults: 0,
            faults_by_kind: BTreeMap::new(),
            rebuilds: 0,
            seconds_in_plugin: 0.0,
            never_set: None,
            init_warnings: Vec::new(),
        }
    }

    /// A report of no calls yet for a native mapping: its name (`mapping` or
    /// `pass-through`), this stagepush's version, and the digest of what it says.
    pub fn for_mapping(spec: &crate::mapping::MappingSpec) -> Self {
        PluginReport {
            name: spec.name().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            sha256: spec.digest(),
            ..PluginReport::default()
        }
    }

    /// Adds a runner's calls, faults, rebuilds and time (when it is done).
    pub fn add(&mut self, runner: &Runner) {
        self.add_stats(runner.stats());
    }

    /// Adds calls, faults, rebuilds and time.
    pub fn add_stats(&mut self, stats: RunnerStats) {
        self.calls += stats.calls;
        self.faults += stats.faults;
        for (kind, faults) in stats.faults_by_kind {
            let count = self.faults_by_kind.entry(kind.to_string()).or_default();
            if count.example.is_empty() {
                count.example = cut(&faults.example);
            }
            count.count += faults.count;
        }
        self.rebuilds += stats.rebuilds;
        self.seconds_in_plugin += stats.time_in_plugin.as_secs_f64();
        for warning in stats.init_warnings {
            if !self.init_warnings.contains(&warning) {
                self.init_warnings.push(warning);
            }
        }
        self.init_warnings.sort();
    }

    /// Keeps the declared properties that neither this instance nor any before it set.
    pub fn merge_never_set(&mut self, never_set: Vec<String>) {
        self.never_set = Some(match self.never_set.take() {
            None => never_set,
            Some(before) => before
                .into_iter()
                .filter(|p| never_set.contains(p))
                .collect(),
        });
    }

    /// One warning per declared property no record had.
    pub fn never_set_warnings(&self) -> Vec<Warning> {
        self.never_set
            .iter()
            .flatten()
            .map(|property| Warning {
                file: None,
                row: None,
                property: Some(property.clone()),
                message_id: Some(NEVER_SET.to_string()),
                message: Some(format!(
                    "the mapping's property {property} was not set on any record (its value was null in every row)"
                )),
            })
            .collect()
    }
}

/// The `messageId` of the warning for a mapping property no record had.
pub const NEVER_SET: &str = "mapping-property-never-set";

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
    pub(super) files_skipped_other_plugin: BTreeMap<String, u64>,
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
            files_skipped_other_plugin: totals.files_skipped_other_plugin,
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
            concurrency: ConcurrencyStats::default(),
            receipts: totals.receipts,
            warnings: totals.warnings,
            files: totals.files,
            dead_letters: totals.dead_letters,
            fatal_error: totals.fatal_error,
            interrupted: None,
            queue: None,
        }
    }
}
