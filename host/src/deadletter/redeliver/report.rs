//! What a redelivery reports: rows by what was done with them, per file and in all
//! (`--report FILE`; the JSON field names are those of `stagepush retry`'s report).

use std::path::PathBuf;

use serde::Serialize;

use crate::pipeline::{PluginReport, Receipt};

/// Rows by what the redelivery did with them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeliveryCounts {
    /// Rows read, transformed and sent again (`delivered + filtered + stillRejected`).
    #[serde(rename = "retried")]
    pub redelivered: u64,
    /// Every record of the row was stored: the row left the dead letters.
    pub delivered: u64,
    /// The plugin now filters the row out: it left the dead letters.
    pub filtered: u64,
    /// Rejected again (by the plugin, the encoder, the endpoint or the file): kept, with the
    /// new reason.
    pub still_rejected: u64,
    /// The file was replaced since: dropped (`run` delivers the new version).
    pub superseded: u64,
    /// The file no longer exists: kept.
    pub file_gone: u64,
}

/// What happened to the dead letters of one file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeliveryFileReport {
    /// The file as dead letters name it (its path for local stages, its URL otherwise).
    pub file: String,
    pub key: String,
    /// `retried`, `superseded`, `file-gone` or `not-finished` (a fatal error stopped the
    /// redelivery in this file: its dead letters are as they were).
    pub outcome: &'static str,
    pub rows: RedeliveryCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The redelivery report (`stagepush retry --report FILE`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeliveryReport {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    pub stage: String,
    /// The delivery state location.
    pub state: String,
    /// Where the state keeps this stage's dead letters.
    pub state_dead_letters: String,
    pub plugin: PluginReport,
    /// Dead-letter chunks read.
    pub chunks: u64,
    /// Distinct dead-lettered rows found (after collapsing duplicates).
    pub letters: u64,
    /// Lines that repeated a row of a newer chunk (left behind by an interrupted redelivery).
    pub duplicates: u64,
    pub rows: RedeliveryCounts,
    /// Dead letters of the stage left in the state.
    pub remaining: u64,
    pub records_sent: u64,
    pub records_delivered: u64,
    pub records_rejected: u64,
    pub requests: u64,
    /// HTTP retries of the sink.
    pub retries: u64,
    pub bytes_sent: u64,
    /// 2xx answers whose body was not CluedIn's JSON (counted delivered; see `sink`).
    pub responses_not_cluedin_json: u64,
    pub receipts: Vec<Receipt>,
    pub files: Vec<RedeliveryFileReport>,
    /// The local dead-letter log the rows rejected again were appended to.
    pub dead_letters: PathBuf,
    /// Set when a fatal error stopped the redelivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal_error: Option<String>,
}

impl RedeliveryReport {
    /// `retry: N rows retried: D delivered, F filtered, R still rejected, S superseded, G
    /// file gone`.
    pub fn summary(&self) -> String {
        let r = &self.rows;
        format!(
            "retry: {} rows retried: {} delivered, {} filtered, {} still rejected, {} superseded, {} file gone",
            r.redelivered, r.delivered, r.filtered, r.still_rejected, r.superseded, r.file_gone
        )
    }
}

/// Adds the counts of `rows` to `total`.
pub(super) fn add(total: &mut RedeliveryCounts, rows: &RedeliveryCounts) {
    total.redelivered += rows.redelivered;
    total.delivered += rows.delivered;
    total.filtered += rows.filtered;
    total.still_rejected += rows.still_rejected;
    total.superseded += rows.superseded;
    total.file_gone += rows.file_gone;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_field_by_field() {
        let mut total = RedeliveryCounts {
            redelivered: 1,
            delivered: 2,
            filtered: 3,
            still_rejected: 4,
            superseded: 5,
            file_gone: 6,
        };
        let rows = RedeliveryCounts {
            redelivered: 10,
            delivered: 20,
            filtered: 30,
            still_rejected: 40,
            superseded: 50,
            file_gone: 60,
        };
        add(&mut total, &rows);
        assert_eq!(
            total,
            RedeliveryCounts {
                redelivered: 11,
                delivered: 22,
                filtered: 33,
                still_rejected: 44,
                superseded: 55,
                file_gone: 66,
            }
        );
    }

    #[test]
    fn counts_serialize_with_the_report_field_names() {
        let json = serde_json::to_value(RedeliveryCounts::default()).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "delivered",
                "fileGone",
                "filtered",
                "retried",
                "stillRejected",
                "superseded"
            ]
        );
    }
}
