//! Row accounting of a run: every row read ends delivered, filtered, unchanged or
//! dead-lettered, and the counts say so (`read = delivered + filtered + unchanged +
//! dead_lettered`). Delivered rows are known only at the end: rows that produced records,
//! minus those with a record the endpoint rejected, and never more than the endpoint
//! acknowledged when the run stopped early.

use std::sync::Mutex;

use crate::deadletter::DeadLetter;
use crate::deadletter::reasons::{MessageTally, TOP_MESSAGES};
use crate::sync::lock;

use super::RowCounts;

/// See the module docs.
#[derive(Default)]
pub(super) struct Tally {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    rows: RowCounts,
    /// Rows that produced at least one record (delivered unless one is rejected).
    rows_with_records: u64,
    records_encoded: u64,
    /// `--only-changed`: records not sent.
    records_unchanged: u64,
    /// Dead letters by reason and message.
    messages: MessageTally,
}

impl Tally {
    /// A plugin call's rows: `failed` of them are dead-lettered (counted by
    /// [`Tally::dead_lettered`] as their letters are written), `filtered` produced nothing,
    /// the rest produced `records` records between them.
    pub(super) fn transformed(&self, rows: u64, filtered: u64, failed: u64, records: u64) {
        let mut c = lock(&self.counts);
        c.rows.read += rows;
        c.rows.filtered += filtered;
        c.rows_with_records += rows - filtered - failed;
        c.records_encoded += records;
    }

    /// Rows of a bad file that are dead-lettered without being read.
    pub(super) fn unread(&self, rows: u64) {
        lock(&self.counts).rows.read += rows;
    }

    /// One dead letter written, by its stage, kind and message (row `row` of `file`).
    pub(super) fn dead_lettered(&self, letter: &DeadLetter) {
        let reason = format!("{}/{}", letter.stage.as_str(), letter.kind);
        let mut c = lock(&self.counts);
        c.rows.dead_lettered += 1;
        *c.rows
            .dead_lettered_by_stage
            .entry(letter.stage.as_str().to_string())
            .or_default() += 1;
        c.messages
            .add(&reason, &letter.message, &letter.file, letter.row);
        *c.rows.dead_lettered_by_reason.entry(reason).or_default() += 1;
    }

    /// `--only-changed`: `rows` rows whose every record CluedIn had, `records` records not
    /// sent.
    pub(super) fn unchanged(&self, rows: u64, records: u64) {
        let mut c = lock(&self.counts);
        c.rows.unchanged += rows;
        c.rows_with_records = c.rows_with_records.saturating_sub(rows);
        c.records_unchanged += records;
    }

    pub(super) fn records_encoded(&self) -> u64 {
        lock(&self.counts).records_encoded
    }

    pub(super) fn records_unchanged(&self) -> u64 {
        lock(&self.counts).records_unchanged
    }

    /// The final counts: `rejected_rows` rows had a record the endpoint rejected (they are
    /// dead letters); a run that stopped counts no more rows delivered than the endpoint
    /// acknowledged records (`acknowledged`).
    pub(super) fn counts(&self, rejected_rows: u64, stopped: bool, acknowledged: u64) -> RowCounts {
        let c = lock(&self.counts);
        let mut rows = c.rows.clone();
        rows.dead_lettered_by_message = c.messages.top(TOP_MESSAGES);
        rows.delivered = c.rows_with_records.saturating_sub(rejected_rows);
        if stopped {
            rows.delivered = rows.delivered.min(acknowledged);
        }
        rows.unchanged = rows.unchanged.min(rows.read);
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::RowStage;

    fn letter(stage: RowStage, kind: &str, message: &str) -> DeadLetter {
        DeadLetter::new("a.parquet", 1, stage, kind, message)
    }

    fn sum(c: &RowCounts) -> u64 {
        c.delivered + c.filtered + c.unchanged + c.dead_lettered
    }

    #[test]
    fn every_row_read_is_accounted_for() {
        let tally = Tally::default();
        // 10 rows: 2 filtered, 1 failed in the plugin, 7 with records (9 records).
        tally.transformed(10, 2, 1, 9);
        tally.dead_lettered(&letter(RowStage::Plugin, "rejected", "CUSTOMER_ID is null"));
        // 3 rows of a bad file, never read.
        tally.unread(3);
        for _ in 0..3 {
            tally.dead_lettered(&letter(RowStage::Read, "corrupt-file", "no footer"));
        }
        // 2 rows unchanged (3 records), 1 row rejected by the endpoint.
        tally.unchanged(2, 3);
        tally.dead_lettered(&letter(RowStage::Endpoint, "http-400", "bad property"));
        let c = tally.counts(1, false, 0);
        assert_eq!(c.read, 13);
        assert_eq!(c.delivered, 4);
        assert_eq!(c.filtered, 2);
        assert_eq!(c.unchanged, 2);
        assert_eq!(c.dead_lettered, 5);
        assert_eq!(sum(&c), c.read);
        assert_eq!(c.dead_lettered_by_stage["read"], 3);
        assert_eq!(c.dead_lettered_by_reason["endpoint/http-400"], 1);
        let read = &c.dead_lettered_by_message["read/corrupt-file"].messages[0];
        assert_eq!((read.message.as_str(), read.rows), ("no footer", 3));
        assert_eq!(tally.records_encoded(), 9);
        assert_eq!(tally.records_unchanged(), 3);
    }

    #[test]
    fn a_stopped_run_counts_only_acknowledged_rows_as_delivered() {
        let tally = Tally::default();
        tally.transformed(100, 0, 0, 100);
        assert_eq!(tally.counts(0, false, 40).delivered, 100);
        assert_eq!(tally.counts(0, true, 40).delivered, 40);
    }
}
