//! The runs `status` shows: [`RunSummary`], what `status` reads of a run report
//! (`runs/<started>-<run-id>.json`, written by `run`), and why a report cannot be read.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;

use super::Damaged;
use crate::state::files::RUNS_PREFIX;
use crate::state::{StateError, StateStore};

/// One run, from its report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The report's path in the state.
    #[serde(default)]
    pub path: String,
    pub run_id: String,
    /// The stage the run delivered (from the report's dead-letter location).
    #[serde(default)]
    pub stage_id: Option<String>,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub duration_secs: f64,
    pub rows: RunRows,
    #[serde(default)]
    pub records_delivered: u64,
    #[serde(default)]
    pub files_skipped: u64,
    #[serde(default)]
    pub files_resumed: u64,
    #[serde(default)]
    pub fatal_error: Option<String>,
    /// The signal (or `shutdown`) that stopped the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    #[serde(default)]
    pub watermarks: BTreeMap<String, String>,
    /// The run stopped before the end: its watermarks cover only what was acknowledged.
    #[serde(default)]
    pub watermarks_from_stopped_run: bool,
}

impl RunSummary {
    /// Whether the run stopped before the end (reports written before
    /// `watermarksFromStoppedRun` existed say so by a fatal error).
    pub fn stopped(&self) -> bool {
        self.watermarks_from_stopped_run || self.fatal_error.is_some()
    }
}

/// Row counts of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRows {
    pub read: u64,
    pub delivered: u64,
    pub filtered: u64,
    #[serde(default)]
    pub unchanged: u64,
    pub dead_lettered: u64,
    #[serde(default)]
    pub dead_lettered_by_stage: BTreeMap<String, u64>,
}

/// The fields of a run report read besides [`RunSummary`]'s.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunExtra {
    #[serde(default)]
    state_dead_letters: String,
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
    let mut run: RunSummary =
        serde_json::from_slice(bytes).map_err(RunReportProblem::NotAReport)?;
    let extra: RunExtra = serde_json::from_slice(bytes).map_err(RunReportProblem::NotAReport)?;
    run.path = path.to_string();
    // `<state>/dead-letters/<stage-id>/`
    run.stage_id = extra
        .state_dead_letters
        .trim_end_matches('/')
        .rsplit_once('/')
        .filter(|(rest, id)| rest.ends_with("dead-letters") && !id.is_empty())
        .map(|(_, id)| id.to_string());
    Ok(run)
}
