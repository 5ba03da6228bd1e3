//! The runs `status` shows: [`RunSummary`], what `status` reads of a run report
//! (`runs/<started>-<run-id>.json`, written by `run`), and why a report cannot be read.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Damaged;
use crate::run_report::{RowCounts, RunReport};
use crate::state::files::RUNS_PREFIX;
use crate::state::{StateError, StateStore};

/// One run as `status` shows it: what it prints of the run's report (whose schema is
/// [`RunReport`], declared once), and where the report is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The report's path in the state.
    pub path: String,
    pub run_id: String,
    /// The stage the run delivered (from the report's dead-letter location).
    pub stage_id: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    pub rows: RowCounts,
    pub records_delivered: u64,
    pub files_skipped: u64,
    pub files_resumed: u64,
    pub fatal_error: Option<String>,
    /// The signal (or `shutdown`) that stopped the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    pub watermarks: BTreeMap<String, String>,
    /// The run stopped before the end: its watermarks cover only what was acknowledged.
    pub watermarks_from_stopped_run: bool,
}

impl RunSummary {
    /// The summary of `report`, kept at `path`.
    pub fn of(path: &str, report: RunReport) -> Self {
        // `<state>/dead-letters/<stage-id>/`
        let stage_id = report
            .state_dead_letters
            .trim_end_matches('/')
            .rsplit_once('/')
            .filter(|(rest, id)| rest.ends_with("dead-letters") && !id.is_empty())
            .map(|(_, id)| id.to_string());
        RunSummary {
            path: path.to_string(),
            run_id: report.run_id,
            stage_id,
            started_at: report.started_at,
            finished_at: report.finished_at,
            duration_secs: report.duration_secs,
            rows: report.rows,
            records_delivered: report.records_delivered,
            files_skipped: report.files_skipped,
            files_resumed: report.files_resumed,
            fatal_error: report.fatal_error,
            interrupted: report.interrupted,
            watermarks: report.watermarks,
            watermarks_from_stopped_run: report.watermarks_from_stopped_run,
        }
    }

    /// Whether the run stopped before the end (reports written before
    /// `watermarksFromStoppedRun` existed say so by a fatal error).
    pub fn stopped(&self) -> bool {
        self.watermarks_from_stopped_run || self.fatal_error.is_some()
    }
}

/// Why a run report cannot be read (its [`Damaged`] reason).
#[derive(Debug, thiserror::Error)]
pub enum RunReportProblem {
    /// Nothing was written (a torn write).
    #[error("it is empty (a torn write?)")]
    Empty,
    /// Not JSON, or without `runId`, `startedAt` and `rows`.
    #[error("not a run report: {0}")]
    NotAReport(serde_json::Error),
}

/// The last `n` run reports, newest first, and how many there are.
pub(super) fn collect_runs(
    store: &StateStore,
    n: usize,
    damaged: &mut Vec<Damaged>,
) -> Result<(u64, Vec<RunSummary>), StateError> {
    let mut paths: Vec<String> = store
        .list(RUNS_PREFIX)?
        .into_iter()
        .filter(|p| p.ends_with(".json"))
        .collect();
    // `runs/<started>-<run-id>.json`: the names sort by start time.
    paths.sort();
    let total = paths.len() as u64;
    let mut runs = Vec::new();
    for path in paths.iter().rev().take(n) {
        let Some(stored) = store.get(path)? else {
            continue; // deleted since the listing
        };
        match parse_run(path, &stored.bytes) {
            Ok(run) => runs.push(run),
            Err(problem) => damaged.push(Damaged {
                path: path.clone(),
                reason: problem.to_string(),
            }),
        }
    }
    Ok((total, runs))
}

/// Reads the run report at `path`.
fn parse_run(path: &str, bytes: &[u8]) -> Result<RunSummary, RunReportProblem> {
    if bytes.is_empty() {
        return Err(RunReportProblem::Empty);
    }
    let report: RunReport = serde_json::from_slice(bytes).map_err(RunReportProblem::NotAReport)?;
    Ok(RunSummary::of(path, report))
}
