//! The typed status `collect` returns (and `--json` serializes): the whole [`Status`],
//! one stage's [`StageStatus`] with its [`FileCounts`] and [`ClaimedFile`]s, dead letters
//! by reason ([`ReasonCounts`]), pending errors and [`Damaged`] documents. The run
//! summaries are in `run_summary`. Rendering for people is `stagepush status`'s (in `cli/`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::RunSummary;
use crate::deadletter::reasons::TopMessages;

/// The whole status (see the module docs for its JSON).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub format: &'static str,
    /// The state location (no credentials).
    pub state: String,
    /// Run reports in the state.
    pub runs_total: u64,
    /// The last runs, newest first.
    pub runs: Vec<RunSummary>,
    pub stages: Vec<StageStatus>,
    /// Over every stage shown.
    pub dead_letters: ReasonCounts,
    /// Documents that cannot be read.
    pub damaged: Vec<Damaged>,
}

impl Status {
    /// Whether every document could be read.
    pub fn is_healthy(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// One stage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    pub stage_id: String,
    /// The stage URL (from `--source` or its state documents), when known.
    pub stage: Option<String>,
    pub files: FileCounts,
    /// Unfinished files with a live lease.
    pub claimed: Vec<ClaimedFile>,
    /// Files in the stage's listing (with a listing only).
    pub listed: Option<u64>,
    /// State documents of files that are not in the listing (with a listing only).
    pub not_listed: Option<u64>,
    pub dead_letters: ReasonCounts,
    /// Objects events named whose key cannot be read, oldest first.
    pub pending_errors: Vec<PendingErrorView>,
    /// Queue messages that can never be delivered (deleted from their queue), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queue_dead_letters: Vec<QueueDeadLetterView>,
}

/// A queue dead letter (`crate::queue::dead_letter`), without its body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDeadLetterView {
    pub queue: String,
    pub message_id: String,
    pub receive_count: Option<u32>,
    pub reason: String,
    pub received_at: String,
}

/// A pending error: an object an event named whose key cannot be read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingErrorView {
    pub key: String,
    pub reason: String,
    pub received_at: String,
    pub event_id: Option<String>,
}

/// Files of a stage by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCounts {
    pub done: u64,
    pub partial: u64,
    pub claimed: u64,
    pub pending: u64,
    pub damaged: u64,
    pub total: u64,
}

/// A file some worker holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedFile {
    pub key: String,
    pub owner: String,
    pub expires_at: String,
    pub expires_at_ms: u64,
}

/// Dead-lettered rows by reason (`<stage>/<kind>`, e.g. `plugin/rejected`), and each
/// reason's most frequent messages (`crate::deadletter::reasons`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCounts {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_message: BTreeMap<String, TopMessages>,
}

impl ReasonCounts {
    pub(super) fn add(&mut self, reason: &str, n: u64) {
        self.total += n;
        *self.by_reason.entry(reason.to_string()).or_default() += n;
    }
}

/// A document that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damaged {
    pub path: String,
    pub reason: String,
}
