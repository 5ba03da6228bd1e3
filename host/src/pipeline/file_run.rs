//! One file's journey in a run, from claim to done: the schema check, where to start (the
//! first unacknowledged segment), reading, transforming and cutting bodies segment by
//! segment (waiting for an earlier body of a segment sent before), dead letters of failed
//! rows, a bad file's unread rows, and the file's line in the report. Every call on the
//! checkpointer about this file is made here (the collector's acknowledgements aside).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow_array::RecordBatch;
use tokio::sync::mpsc;

use crate::bad_file::{BadFile, KIND_UNREADABLE_ROW};
use crate::bindings::types::ColumnSchema;
use crate::deadletter::input_json::row_json;
use crate::deadletter::{DeadLetter, RowStage};
use crate::sink::{Batcher, Payload, RowRef};
use crate::source::parquet::{ReadOptions, SourceError};
use crate::source::{StageError, StageFile};
use crate::state::checkpoint::{ResumePlan, SegmentCounts, WaitError};
use crate::sync::lock;
use crate::transform::{ArrowInput, EncodedBatch};

use super::state::RunState;
use super::transformer::Transformer;
use super::{FileOutcome, FileReport, OnBadFile, PipelineError, RunOptions};

/// Why a file was not processed to its end.
pub(super) enum FileError {
    /// The file cannot be used (unreadable, corrupt, other schema): its rows are dead
    /// letters and the run goes on.
    Bad(BadFile),
    /// The run must stop.
    Fatal(PipelineError),
    /// The run is stopping (the sink stopped, a fatal error elsewhere, a cancel).
    Stopped,
}

impl From<PipelineError> for FileError {
    fn from(e: PipelineError) -> Self {
        FileError::Fatal(e)
    }
}

/// Whether a stage error makes this file unusable (the run goes on) or the run stop.
fn classify(e: StageError) -> FileError {
    if e.is_bad_file() {
        FileError::Bad(BadFile::new(&e))
    } else {
        FileError::Fatal(e.into())
    }
}

/// See the module docs.
pub(super) struct FileRun<'a> {
    run: &'a RunState,
    options: &'a RunOptions,
    /// The stage's schema (the first readable file's).
    schema: &'a [ColumnSchema],
    /// The schema of the columns read (the plugin's projection).
    batch_schema: &'a [ColumnSchema],
    projection: Option<Vec<usize>>,
    name: Arc<str>,
    file: &'a StageFile,
    plan: &'a ResumePlan,
    /// Rows read so far (for the report of a file the run stopped in).
    rows_read: Cell<u64>,
}

/// The segment a worker is filling.
struct OpenSegment {
    index: u64,
    counts: SegmentCounts,
    /// An earlier run may have sent it already.
    maybe_sent: bool,
    records_sent: u64,
}

impl<'a> FileRun<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        run: &'a RunState,
        options: &'a RunOptions,
        schema: &'a [ColumnSchema],
        batch_schema: &'a [ColumnSchema],
        projection: Option<Vec<usize>>,
        name: Arc<str>,
        file: &'a StageFile,
        plan: &'a ResumePlan,
    ) -> Self {
        FileRun {
            run,
            options,
            schema,
            batch_schema,
            projection,
            name,
            file,
            plan,
            rows_read: Cell::new(0),
        }
    }

    pub(super) fn rows_read(&self) -> u64 {
        self.rows_read.get()
    }

    /// Transforms and queues every row of the file not acknowledged yet; returns the rows
    /// read.
    pub(super) fn process(
        &self,
        transformer: &mut Transformer,
        batcher: &mut Batcher,
        bodies: &mpsc::Sender<Payload>,
    ) -> Result<u64, FileError> {
        let ckpt = &self.run.checkpointer;
        let source = self.options.stage.open(self.file).map_err(classify)?;
        let schema = source.contract_schema().map_err(classify)?;
        if let Some(difference) = crate::source::describe_difference(self.schema, &schema) {
            return Err(FileError::Bad(BadFile {
                kind: crate::bad_file::KIND_SCHEMA_MISMATCH,
                reason: format!(
                    "{}: its schema differs from the stage's first readable file ({difference})",
                    self.name,
                ),
            }));
        }
        let segment_rows = self.plan.segment_rows;
        // Parquet: from the footer. CSV, JSON: known once the file is read to its end.
        let total = source.num_rows();
        if let Some(total) = total {
            ckpt.set_segments(self.plan.file, total.div_ceil(segment_rows));
        }
        let start = self.plan.first_open_segment();
        let file = self.file.source_file();
        let start_row = start * segment_rows;
        let read = ReadOptions {
            batch_rows: self.options.batch_rows.min(segment_rows as usize).max(1),
            projection: self.projection.clone(),
            start_row: total.map_or(start_row, |total| start_row.min(total)),
        };
        // File row number of the first row not read yet.
        let mut next_row = read.start_row;
        let mut rows = 0;
        let mut open: Option<OpenSegment> = None;
        let batches = source
            .batches(&read)
            .map_err(classify)?
            .max_bytes(self.options.batch_bytes);
        for batch in batches {
            if self.run.stopped() || ckpt.is_lost(self.plan.file) {
                return Ok(rows);
            }
            let batch = match batch {
                Ok(batch) => batch,
                Err(StageError::Source(SourceError::Row {
                    row, reason, text, ..
                })) => {
                    // One row cannot be read (a text file's bad value): a dead letter; the
                    // reader goes on with the next row.
                    let segment = row / segment_rows;
                    next_row = row + 1;
                    if !self.enter_segment(segment, &mut open, batcher, bodies)? {
                        continue;
                    }
                    if let Some(seg) = open.as_mut() {
                        seg.counts.rows += 1;
                        seg.counts.dead_lettered += 1;
                        self.run.tally.transformed(1, 0, 1, 0);
                        let mut letter = DeadLetter::new(
                            &self.name,
                            row,
                            RowStage::Read,
                            KIND_UNREADABLE_ROW,
                            &reason,
                        );
                        letter.input = text.map_or(serde_json::Value::Null, Into::into);
                        tracing::debug!(file = %self.name, row, "dead letter: {reason}");
                        self.letter(letter)?;
                    }
                    rows += 1;
                    self.rows_read.set(rows);
                    self.run.progress.rows_read.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) if e.is_bad_file() && self.options.on_bad_file == OnBadFile::Skip => {
                    // What was read is sent; the rest of the file is unread.
                    let bad = BadFile::new(&e);
                    let next_segment = match open.take() {
                        Some(s) => {
                            let index = s.index;
                            self.close_segment(s, batcher, bodies)?;
                            index + 1
                        }
                        None => next_row / segment_rows,
                    };
                    // Rows from `next_row` on are not read. A text file's end is not known:
                    // one dead letter stands for them (and counts as one row).
                    let (end, segments) = match total {
                        Some(total) => (total, total.div_ceil(segment_rows)),
                        None => (next_row + 1, next_segment + 1),
                    };
                    let unread = end.saturating_sub(next_row);
                    match total {
                        Some(_) => tracing::error!(
                            file = %self.name,
                            row = next_row,
                            "the file cannot be read from row {next_row} on: its {unread} remaining rows are dead-lettered as unread: {bad}",
                        ),
                        None => tracing::error!(
                            file = %self.name,
                            row = next_row,
                            "the file cannot be read from row {next_row} on: one dead letter stands for the rest of it (its row count is not known): {bad}",
                        ),
                    }
                    self.unread_from(next_row, end, &bad)?;
                    ckpt.bad_from(self.plan.file, next_segment, segments, &bad.reason, unread);
                    return Ok(rows + unread);
                }
                Err(e) => return Err(classify(e)),
            };
            let n = batch.batch.num_rows() as u64;
            next_row = batch.first_row + n;
            // Plugin calls are cut by bytes as well as rows (a larger row goes alone).
            let sizes = crate::batchbytes::row_bytes(&batch.batch);
            tracing::debug!(file = %self.name, first_row = batch.first_row, rows = n, bytes = sizes.iter().sum::<u64>(), "read batch");
            let budget = self.options.batch_bytes as u64;
            for cut in crate::batchbytes::cuts(&sizes, batch.first_row, segment_rows, budget) {
                let row = batch.first_row + cut.offset as u64;
                let segment = cut.segment;
                tracing::debug!(file = %self.name, first_row = row, rows = cut.len, bytes = sizes[cut.offset..cut.offset + cut.len].iter().sum::<u64>(), "plugin batch");
                let piece = batch.batch.slice(cut.offset, cut.len);
                if !self.enter_segment(segment, &mut open, batcher, bodies)? {
                    continue;
                }
                let Some(seg) = open.as_mut() else { continue };
                let input = ArrowInput {
                    file: &file,
                    first_row: row,
                    batch: &piece,
                    schema: self.batch_schema,
                    projection: None,
                };
                let encoded = transformer
                    .transform(&input)
                    .map_err(|e| FileError::Fatal(e.into()))?;
                rows += encoded.rows;
                self.rows_read.set(rows);
                self.run
                    .progress
                    .rows_read
                    .fetch_add(encoded.rows, Ordering::Relaxed);
                self.account(&encoded, &piece, row, transformer, seg)?;
                self.push_records(&encoded, seg, batcher, bodies)?;
            }
        }
        if let Some(s) = open.take() {
            self.close_segment(s, batcher, bodies)?;
        }
        if !self.run.stopped() && !ckpt.is_lost(self.plan.file) {
            if total.is_none() {
                // Read to its end: now the segment count is known.
                ckpt.set_segments(self.plan.file, next_row.div_ceil(segment_rows));
            }
            ckpt.dispatch_finished(self.plan.file);
        }
        Ok(rows)
    }

    /// Makes `segment` the open one (closing the one before): false when an earlier run
    /// had it acknowledged (its rows are skipped). Waits until the segment may be sent.
    fn enter_segment(
        &self,
        segment: u64,
        open: &mut Option<OpenSegment>,
        batcher: &mut Batcher,
        bodies: &mpsc::Sender<Payload>,
    ) -> Result<bool, FileError> {
        if open.as_ref().map(|s| s.index) == Some(segment) {
            return Ok(true);
        }
        if let Some(s) = open.take() {
            self.close_segment(s, batcher, bodies)?;
        }
        if self.plan.is_acked(segment) {
            return Ok(false);
        }
        self.run
            .checkpointer
            .wait_to_send(self.plan.file, segment)
            .map_err(|e| match e {
                WaitError::Stopping => FileError::Stopped,
                source => FileError::Fatal(PipelineError::Wait {
                    file: self.name.to_string(),
                    source,
                }),
            })?;
        *open = Some(OpenSegment {
            index: segment,
            counts: SegmentCounts::default(),
            maybe_sent: self.plan.maybe_sent_before(segment),
            records_sent: 0,
        });
        Ok(true)
    }

    /// Fingerprint check (`--only-changed`), watermarks, then into request bodies.
    fn push_records(
        &self,
        encoded: &EncodedBatch,
        seg: &mut OpenSegment,
        batcher: &mut Batcher,
        bodies: &mpsc::Sender<Payload>,
    ) -> Result<(), FileError> {
        let check = match &self.run.only_changed {
            Some(only_changed) => Some(
                only_changed
                    .check(encoded)
                    .map_err(|e| FileError::Fatal(e.into()))?,
            ),
            None => None,
        };
        let skip = |i: usize| {
            check
                .as_ref()
                .is_some_and(|c| c.skip(i, &encoded.records[i]))
        };
        self.run.watermarks.note(
            self.plan.file,
            seg.index,
            encoded
                .records
                .iter()
                .filter_map(|r| Some((r.row, &r.entity_type, r.timestamp_ns?))),
        );
        // A row is unchanged when every record of it is.
        let mut row_all_unchanged: Option<(u64, bool)> = None;
        let mut unchanged_rows = 0u64;
        let mut unchanged_records = 0u64;
        for (i, record) in encoded.records.iter().enumerate() {
            match row_all_unchanged {
                Some((row, _)) if row == record.row => {}
                Some((_, all)) => {
                    unchanged_rows += all as u64;
                    row_all_unchanged = Some((record.row, true));
                }
                None => row_all_unchanged = Some((record.row, true)),
            }
            if skip(i) {
                unchanged_records += 1;
                continue;
            }
            if let Some((_, all)) = row_all_unchanged.as_mut() {
                *all = false;
            }
            seg.records_sent += 1;
            let origin = RowRef {
                file: self.name.clone(),
                row: record.row,
            };
            if let Some(body) = batcher
                .push_json(origin, &record.entity_type, encoded.record_json(record))
                .map_err(|e| FileError::Fatal(e.into()))?
            {
                self.send(bodies, body, seg.index)?;
            }
        }
        if let Some((_, all)) = row_all_unchanged {
            unchanged_rows += all as u64;
        }
        if unchanged_records > 0 {
            seg.counts.unchanged += unchanged_records;
            self.run.tally.unchanged(unchanged_rows, unchanged_records);
        }
        if let (Some(only_changed), Some(check)) = (&self.run.only_changed, &check) {
            only_changed.sent(self.plan.file, seg.index, check, encoded, |i| !skip(i));
        }
        Ok(())
    }

    /// Flushes the segment's open bodies and records it as fully handed over.
    fn close_segment(
        &self,
        seg: OpenSegment,
        batcher: &mut Batcher,
        bodies: &mpsc::Sender<Payload>,
    ) -> Result<(), FileError> {
        for body in batcher.flush().map_err(|e| FileError::Fatal(e.into()))? {
            self.send(bodies, body, seg.index)?;
        }
        let ckpt = &self.run.checkpointer;
        if seg.maybe_sent {
            let mut files = lock(&self.run.files);
            files.duplicates.segments += 1;
            files.duplicates.records += seg.records_sent;
            drop(files);
            ckpt.resent(self.plan.file, 1);
        }
        if ckpt.segment_closed(self.plan.file, seg.index, seg.counts) {
            self.run.segment_acked(self.plan.file, seg.index);
        }
        Ok(())
    }

    fn send(
        &self,
        bodies: &mpsc::Sender<Payload>,
        body: Payload,
        segment: u64,
    ) -> Result<(), FileError> {
        lock(&self.run.in_flight).insert(body.id(), (self.plan.file, segment));
        self.run.checkpointer.body_sent(self.plan.file, segment);
        bodies.blocking_send(body).map_err(|_| {
            // The sink stopped: its cause is reported by the collector.
            self.run.halt();
            FileError::Stopped
        })
    }

    /// Counts a batch's outcomes and dead-letters its failed rows.
    fn account(
        &self,
        encoded: &EncodedBatch,
        batch: &RecordBatch,
        first_row: u64,
        transformer: &Transformer,
        seg: &mut OpenSegment,
    ) -> Result<(), FileError> {
        let failed = encoded.failures.len() as u64;
        seg.counts.rows += encoded.rows;
        seg.counts.filtered += encoded.filtered;
        seg.counts.dead_lettered += failed;
        self.run.tally.transformed(
            encoded.rows,
            encoded.filtered,
            failed,
            encoded.records.len() as u64,
        );
        for failure in &encoded.failures {
            tracing::debug!(file = %self.name, row = failure.row, stage = failure.stage.as_str(), "dead letter: {}", failure.message);
            let input = row_json(batch, (failure.row - first_row) as usize);
            let letter = DeadLetter::failed_row(&self.name, failure, transformer.name(), input);
            self.letter(letter)?;
        }
        Ok(())
    }

    fn letter(&self, letter: DeadLetter) -> Result<(), PipelineError> {
        self.run
            .letters
            .write(letter, &self.run.checkpointer, &self.run.tally)
    }

    /// Dead-letters every row of an unusable file as unread.
    pub(super) fn unread(&self, bad: &BadFile) -> Result<(), PipelineError> {
        let rows = self
            .options
            .stage
            .open_footer(self.file)
            .ok()
            .and_then(|s| s.num_rows())
            .unwrap_or(0);
        let segments = rows.div_ceil(self.plan.segment_rows);
        // Not even a footer (or no rows): one dead letter for the file, so it is not lost
        // silently; it counts as one row.
        let accounted = rows.max(1);
        self.unread_from(0, accounted, bad)?;
        self.run
            .checkpointer
            .bad_from(self.plan.file, 0, segments, &bad.reason, accounted);
        self.report(rows, FileOutcome::BadFile, None, Some(bad.reason.clone()));
        Ok(())
    }

    /// Dead-letters rows `from..to` as unread (and counts them as read: accounted for).
    fn unread_from(&self, from: u64, to: u64, bad: &BadFile) -> Result<(), PipelineError> {
        self.run.tally.unread(to.saturating_sub(from));
        for row in from..to {
            self.letter(DeadLetter::unread(&self.name, row, bad))?;
        }
        Ok(())
    }

    /// The file's line in the report.
    pub(super) fn finished(&self, rows: u64, outcome: FileOutcome, error: Option<String>) {
        let resumed_at = self.plan.resumed.then(|| self.plan.first_open_segment());
        self.report(rows, outcome, resumed_at, error);
    }

    fn report(
        &self,
        rows: u64,
        outcome: FileOutcome,
        resumed_at_segment: Option<u64>,
        error: Option<String>,
    ) {
        self.run.report_file(FileReport {
            file: self.name.to_string(),
            rows,
            outcome,
            resumed_at_segment,
            error,
        });
    }
}
