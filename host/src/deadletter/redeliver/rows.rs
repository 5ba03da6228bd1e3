//! The rows of one file redelivered: read again (adjacent rows together), transformed,
//! sent, and each row's new fate (delivered, filtered, rejected again) decided by
//! [`RowFates`], the rule every entry point shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::bad_file::KIND_UNREADABLE_ROW;
use crate::bindings::types::{ColumnSchema, SourceFile};
use crate::deadletter::DeadLetter;
use crate::deadletter::input_json::row_json;
use crate::pipeline::outcome::{RowFate, RowFates};
use crate::pipeline::transformer::Transformer;
use crate::pipeline::{Receipt, display_name};
use crate::sink::{Batcher, Payload, RowRef};
use crate::source::parquet::{ReadOptions, SourceError};
use crate::source::{StageError, StageFile, StageSource};
use crate::state::files;
use crate::transform::{ArrowInput, RowStage};

use super::job::{Redelivery, Stopped};

/// What redelivering the rows of one file gave.
#[derive(Default)]
pub(super) struct FileResult {
    /// Rows rejected again, with their new letters.
    pub(super) still: Vec<DeadLetter>,
    pub(super) delivered: u64,
    pub(super) filtered: u64,
    pub(super) records_delivered: u64,
    pub(super) receipts: Vec<String>,
}

/// The rows of a file being redelivered, and their records' fates.
pub(super) struct Rows {
    rows: BTreeMap<u64, Row>,
    fates: RowFates<DeadLetter>,
}

/// One row being redelivered.
pub(super) struct Row {
    /// The letter it had.
    pub(super) letter: DeadLetter,
    /// The input row as read now (projected columns).
    pub(super) input: Option<serde_json::Value>,
    /// Whether it was read and transformed.
    pub(super) transformed: bool,
}

impl Rows {
    /// Rejects `row` with a new letter (unless it is rejected already: a row is one letter).
    fn reject(
        &mut self,
        file: &StageFile,
        name: &str,
        row: u64,
        (stage, kind, message): (RowStage, &str, &str),
        refined: impl FnOnce(DeadLetter) -> DeadLetter,
    ) {
        if self.fates.is_rejected(row) {
            return;
        }
        if let Some(r) = self.rows.get(&row) {
            let letter = refined(new_letter(file, name, r, stage, kind, message));
            self.fates.rejected(row, letter);
        }
    }
}

impl Redelivery<'_> {
    /// Redelivers `letters` (rows of the current version of `file`). `Err` on a fatal sink
    /// error; other failures are new dead letters of the rows.
    pub(super) fn file(
        &mut self,
        file: &StageFile,
        letters: Vec<&DeadLetter>,
    ) -> Result<FileResult, Stopped> {
        let name: Arc<str> = display_name(file).into();
        let mut rows = Rows {
            rows: letters
                .into_iter()
                .map(|l| {
                    (
                        l.row,
                        Row {
                            letter: l.clone(),
                            input: None,
                            transformed: false,
                        },
                    )
                })
                .collect(),
            fates: RowFates::default(),
        };
        let mut batches = Vec::new();
        if let Err(failure) = self.transform_rows(file, &name, &mut rows, &mut batches) {
            match failure {
                ReadFailure::Unusable(cause) => {
                    let reason = cause.to_string();
                    // The rows not read are rejected again, as unread.
                    let unread: Vec<u64> = rows
                        .rows
                        .iter()
                        .filter(|(_, r)| !r.transformed)
                        .map(|(&row, _)| row)
                        .collect();
                    for row in unread {
                        let (stage, kind) = (RowStage::Read, "unreadable-file");
                        rows.reject(file, &name, row, (stage, kind, &reason), |l| l);
                    }
                }
                ReadFailure::Fatal(stopped) => return Err(stopped),
            }
        }
        let mut result = FileResult::default();
        for batch in batches {
            self.deliver(file, &name, batch, &mut rows, &mut result)?;
        }
        let Rows { rows, fates } = rows;
        let mut fates: BTreeMap<u64, RowFate<DeadLetter>> = fates.into_fates().collect();
        for (number, row) in rows {
            match fates.remove(&number).unwrap_or(RowFate::Filtered) {
                RowFate::Rejected(letter) => result.still.push(letter),
                RowFate::Filtered => result.filtered += 1,
                RowFate::Delivered { .. } => result.delivered += 1,
                RowFate::NotAcknowledged { records, stored } => {
                    // Cannot happen: every record is delivered or rejected.
                    let message = format!(
                        "{} of {records} records were not acknowledged",
                        records - stored
                    );
                    let letter = new_letter(
                        file,
                        &name,
                        &row,
                        RowStage::Endpoint,
                        "not-acknowledged",
                        &message,
                    );
                    result.still.push(letter);
                }
            }
        }
        Ok(result)
    }

    /// Reads and transforms the rows, filling request bodies.
    fn transform_rows(
        &mut self,
        file: &StageFile,
        name: &Arc<str>,
        rows: &mut Rows,
        batches: &mut Vec<Payload>,
    ) -> Result<(), ReadFailure> {
        let source = self
            .options
            .stage
            .open(file)
            .map_err(ReadFailure::from_stage)?;
        let schema = source.contract_schema().map_err(ReadFailure::from_stage)?;
        let total = source.num_rows();
        let batch_rows = self.options.batch_rows.max(1) as u64;
        let sink = self.sink;
        let options = self.options;
        let transformer = self
            .transformer
            .for_schema(
                schema,
                |schema| Transformer::start(&options.transform, schema, options.shape),
                &mut self.plugin,
            )
            .map_err(|e| ReadFailure::Fatal(e.into()))?;
        let (projection, batch_schema) = transformer.read_plan();
        let wanted: Vec<u64> = rows.rows.keys().copied().collect();
        if let Some(total) = total {
            beyond_the_end(file, name, &wanted, total, rows);
        }
        let mut reading = Reading {
            file,
            name,
            source: &source,
            source_file: file.source_file(),
            projection,
            batch_schema,
            transformer,
            batcher: sink.batcher(),
        };
        let read = match total {
            Some(total) => reading.runs(runs(&wanted, total, batch_rows), rows, batches),
            // A CSV or JSON file: one pass from the first row wanted (each read of a text
            // file starts at its beginning); its end is where the rows end.
            None => reading
                .rows(&wanted, batch_rows as usize, rows, batches)
                .map(|end| beyond_the_end(file, name, &wanted, end, rows)),
        };
        if let Err(ReadFailure::Fatal(stopped)) = read {
            return Err(ReadFailure::Fatal(stopped));
        }
        // What was transformed before a read error is sent all the same.
        let rest = reading
            .batcher
            .flush()
            .map_err(|e| ReadFailure::Fatal(Stopped::Sink(e)))?;
        batches.extend(rest);
        read
    }

    /// Sends one body and applies its outcome to the rows.
    fn deliver(
        &mut self,
        file: &StageFile,
        name: &Arc<str>,
        batch: Payload,
        rows: &mut Rows,
        result: &mut FileResult,
    ) -> Result<(), Stopped> {
        let outcome = self
            .runtime
            .block_on(self.sink.deliver(batch))
            .map_err(Stopped::Sink)?;
        let endpoint = outcome.endpoint.url.to_string();
        for request in &outcome.delivered {
            for origin in &request.records {
                if rows.rows.contains_key(&origin.row) {
                    rows.fates.stored(origin.row, request.receipt_id.as_deref());
                }
            }
            result.records_delivered += request.records.len() as u64;
            result.receipts.push(
                request
                    .receipt_id
                    .clone()
                    .unwrap_or_else(|| request.request_id.clone()),
            );
            self.receipts.push(Receipt {
                endpoint: endpoint.clone(),
                receipt_id: request.receipt_id.clone(),
                request_id: request.request_id.clone(),
                records: request.records.len(),
            });
        }
        for rejected in outcome.rejected {
            tracing::warn!(file = %rejected.origin.file, row = rejected.origin.row, status = rejected.status, "endpoint rejected a record again: {}", rejected.message);
            // A row with several records is one dead letter.
            rows.reject(
                file,
                name,
                rejected.origin.row,
                (
                    RowStage::Endpoint,
                    &format!("http-{}", rejected.status),
                    &rejected.message,
                ),
                |letter| letter.refused(&rejected),
            );
        }
        Ok(())
    }
}

/// The reading of one file's dead-lettered rows.
struct Reading<'r> {
    file: &'r StageFile,
    name: &'r Arc<str>,
    source: &'r StageSource,
    source_file: SourceFile,
    projection: Option<Vec<usize>>,
    batch_schema: Vec<ColumnSchema>,
    transformer: &'r mut Transformer,
    batcher: Batcher,
}

impl Reading<'_> {
    /// Reads the runs of rows, transforms them, and puts their records into bodies
    /// (closed bodies into `batches`).
    fn runs(
        &mut self,
        runs: Vec<Vec<u64>>,
        rows: &mut Rows,
        batches: &mut Vec<Payload>,
    ) -> Result<(), ReadFailure> {
        for run in runs {
            let len = run.len();
            self.rows(&run, len, rows, batches)?;
        }
        Ok(())
    }

    /// Reads the file from the first of `wanted` (sorted) to the last, in batches of
    /// `batch_rows`, and transforms the rows wanted (adjacent ones together); a wanted row
    /// the reader cannot read is rejected again. Returns the file row number after the
    /// last row read.
    fn rows(
        &mut self,
        wanted: &[u64],
        batch_rows: usize,
        rows: &mut Rows,
        batches: &mut Vec<Payload>,
    ) -> Result<u64, ReadFailure> {
        let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else {
            return Ok(0);
        };
        let read = ReadOptions {
            batch_rows: batch_rows.max(1),
            projection: self.projection.clone(),
            start_row: first,
        };
        let source_batches = self
            .source
            .batches(&read)
            .map_err(ReadFailure::from_stage)?;
        let mut end = first;
        for batch in source_batches {
            let batch = match batch {
                Ok(batch) => batch,
                Err(StageError::Source(SourceError::Row { row, reason, .. })) => {
                    end = row + 1;
                    if let Some(r) = rows.rows.get_mut(&row) {
                        r.transformed = true;
                        let (stage, kind) = (RowStage::Read, KIND_UNREADABLE_ROW);
                        rows.reject(self.file, self.name, row, (stage, kind, &reason), |l| l);
                    }
                    if row >= last {
                        break;
                    }
                    continue;
                }
                Err(e) => return Err(ReadFailure::from_stage(e)),
            };
            let start = batch.first_row;
            end = start + batch.batch.num_rows() as u64;
            // The wanted rows of this batch, in runs of adjacent rows.
            let lo = wanted.partition_point(|&r| r < start);
            let hi = wanted.partition_point(|&r| r < end);
            let mut i = lo;
            while i < hi {
                let mut j = i + 1;
                while j < hi && wanted[j] == wanted[j - 1] + 1 {
                    j += 1;
                }
                let (from, to) = (wanted[i], wanted[j - 1] + 1);
                let piece = batch
                    .batch
                    .slice((from - start) as usize, (to - from) as usize);
                self.piece(&piece, from, rows, batches)?;
                i = j;
            }
            if end > last {
                break;
            }
        }
        Ok(end)
    }

    /// Transforms rows `first_row..` (`piece`) and puts their records into bodies.
    fn piece(
        &mut self,
        piece: &RecordBatch,
        first_row: u64,
        rows: &mut Rows,
        batches: &mut Vec<Payload>,
    ) -> Result<(), ReadFailure> {
        let input = ArrowInput {
            file: &self.source_file,
            first_row,
            batch: piece,
            schema: &self.batch_schema,
            projection: None,
        };
        let encoded = self
            .transformer
            .transform(&input)
            .map_err(|e| ReadFailure::Fatal(Stopped::Plugin(e)))?;
        let plugin = self.transformer.name().to_string();
        for offset in 0..piece.num_rows() {
            if let Some(r) = rows.rows.get_mut(&(first_row + offset as u64)) {
                r.transformed = true;
                r.input = Some(row_json(piece, offset));
            }
        }
        for failure in &encoded.failures {
            rows.reject(
                self.file,
                self.name,
                failure.row,
                (failure.stage, failure.kind, &failure.message),
                |letter| DeadLetter {
                    plugin: Some(plugin.clone()),
                    ..letter
                },
            );
        }
        for record in &encoded.records {
            if !rows.rows.contains_key(&record.row) || rows.fates.is_rejected(record.row) {
                continue;
            }
            rows.fates.record(record.row);
            let origin = RowRef {
                file: self.name.clone(),
                row: record.row,
            };
            let closed = self
                .batcher
                .push_json(origin, &record.entity_type, encoded.record_json(record))
                .map_err(|e| ReadFailure::Fatal(Stopped::Sink(e)))?;
            batches.extend(closed);
        }
        Ok(())
    }
}

/// A new dead letter of `row`: the old one's input when it had one (the same row of the
/// same file version), else the row as read now.
fn new_letter(
    file: &StageFile,
    name: &str,
    row: &Row,
    stage: RowStage,
    kind: &str,
    message: &str,
) -> DeadLetter {
    let input = if row.letter.input.is_null() {
        row.input.clone().unwrap_or(serde_json::Value::Null)
    } else {
        row.letter.input.clone()
    };
    DeadLetter {
        key: Some(file.key.clone()),
        identity: Some(files::identity(file)),
        input,
        ..DeadLetter::new(name, row.letter.row, stage, kind, message)
    }
}

/// Why the rows of a file could not all be read and transformed.
enum ReadFailure {
    /// The file cannot be used now (corrupt, truncated, changed): the rows not read stay
    /// dead letters with this reason.
    Unusable(StageError),
    /// The redelivery must stop (storage unreachable, plugin cannot run, no route).
    Fatal(Stopped),
}

impl ReadFailure {
    fn from_stage(e: StageError) -> Self {
        if e.is_bad_file() {
            ReadFailure::Unusable(e)
        } else {
            ReadFailure::Fatal(Stopped::Stage(e))
        }
    }
}

/// Rejects the `wanted` rows at or beyond `total` (the file's rows) as `no-such-row`.
fn beyond_the_end(file: &StageFile, name: &str, wanted: &[u64], total: u64, rows: &mut Rows) {
    for &row in wanted.iter().filter(|&&r| r >= total) {
        if let Some(r) = rows.rows.get_mut(&row) {
            if r.transformed {
                continue;
            }
            r.transformed = true;
        }
        let message = format!("row {row} is beyond the end of the file ({total} rows)");
        let (stage, kind) = (RowStage::Read, "no-such-row");
        rows.reject(file, name, row, (stage, kind, &message), |l| l);
    }
}

/// `rows` (sorted, below `total`) cut into runs of adjacent rows of at most `max` rows.
fn runs(rows: &[u64], total: u64, max: u64) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    for &row in rows.iter().filter(|&&r| r < total) {
        match out.last_mut() {
            Some(run)
                if run.last().is_some_and(|&last| last + 1 == row) && (run.len() as u64) < max =>
            {
                run.push(row)
            }
            _ => out.push(vec![row]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_file_keeps_its_rows_and_unreachable_storage_stops_with_the_same_message() {
        let gone = StageError::Vanished {
            object: "s/a.parquet".into(),
        };
        let said = gone.to_string();
        match ReadFailure::from_stage(gone) {
            ReadFailure::Unusable(cause) => assert_eq!(cause.to_string(), said),
            ReadFailure::Fatal(stopped) => {
                panic!("a vanished file stopped the redelivery: {stopped}")
            }
        }

        let unreachable = StageError::Read {
            object: "s/a.parquet".into(),
            reason: "connection refused".into(),
        };
        let said = unreachable.to_string();
        match ReadFailure::from_stage(unreachable) {
            ReadFailure::Fatal(stopped @ Stopped::Stage(_)) => {
                assert_eq!(stopped.to_string(), said)
            }
            ReadFailure::Fatal(other) => panic!("not a stage stop: {other}"),
            ReadFailure::Unusable(cause) => {
                panic!("unreachable storage was taken as a bad file: {cause}")
            }
        }
    }

    #[test]
    fn rows_are_grouped_into_runs_of_adjacent_rows() {
        assert_eq!(
            runs(&[1, 2, 3, 5, 6, 9, 20], 10, 2),
            vec![vec![1, 2], vec![3], vec![5, 6], vec![9]]
        );
        assert!(runs(&[], 10, 5).is_empty());
    }
}
