//! The batches of a Parquet file, read one row group at a time ([`SourceBatches`]): the
//! column projection, the per-row-group decoder, the byte bound on a batch, decoder
//! panics caught as [`SourceError::Corrupt`], and rows whose INT96 value cannot be read
//! (see [`super::int96`]) cut out of the batches as [`SourceError::Row`] errors.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use ::parquet::arrow::ProjectionMask;
use ::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use ::parquet::file::reader::{ChunkReader, Length};
use ::parquet::schema::types::SchemaDescriptor;

use super::footer::panic_message;
use super::int96::invalid_rows;
use super::{ParquetSource, RowGroupInfo, SourceBatch, SourceError};

/// The columns to decode and how to put them in the order asked for.
pub(super) struct Projection {
    /// Which top-level columns the decoder reads (it yields them in file order).
    mask: ProjectionMask,
    /// For each column asked for, its position among the decoded columns.
    positions: Vec<usize>,
}

impl Projection {
    pub(super) fn new(schema: &SchemaDescriptor, indices: &[usize]) -> Self {
        let mut decoded = indices.to_vec();
        decoded.sort_unstable();
        decoded.dedup();
        let positions = indices
            .iter()
            .map(|index| decoded.binary_search(index).unwrap_or_default())
            .collect();
        Self {
            mask: ProjectionMask::roots(schema, decoded),
            positions,
        }
    }
}

/// The decoder of the row group being read.
struct GroupReader {
    group: RowGroupInfo,
    reader: ParquetRecordBatchReader,
    /// File row number of the next row this reader yields.
    next_row: u64,
    /// The rows ahead that cannot be read (file row, first column at fault, why), in order.
    invalid: VecDeque<(u64, String, String)>,
}

/// The batches of a file, in row order: an iterator of [`SourceBatch`]es.
///
/// A row that cannot be read (an INT96 timestamp outside years 0001–9999) is a
/// [`SourceError::Row`] and the iterator goes on with the next row: the batch is cut around
/// it, so a batch's rows stay consecutive. After any other error the iterator ends.
pub struct SourceBatches<R: ChunkReader + 'static> {
    source: ParquetSource<R>,
    batch_rows: usize,
    /// About at most this many bytes per batch (see the module doc).
    max_bytes: Option<usize>,
    projection: Option<Projection>,
    next_group: usize,
    /// File row number of the first row not yet returned.
    next_row: u64,
    current: Option<GroupReader>,
    /// Pieces of a batch cut around rows that cannot be read, to return first.
    pending: VecDeque<Result<SourceBatch, SourceError>>,
    done: bool,
}

impl<R: ChunkReader + 'static> SourceBatches<R> {
    /// The batches of `source` from file row `start_row` on.
    pub(super) fn new(
        source: ParquetSource<R>,
        batch_rows: usize,
        projection: Option<Projection>,
        start_row: u64,
    ) -> Self {
        Self {
            source,
            batch_rows,
            max_bytes: None,
            projection,
            next_group: 0,
            next_row: start_row,
            current: None,
            pending: VecDeque::new(),
            done: false,
        }
    }

    /// Bounds each batch to about `bytes` (by the row group's average row size from the
    /// footer; at least one row per batch).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes.max(1));
        self
    }

    /// Rows per batch for row group `index`: `batch_rows`, fewer when its rows are large.
    fn batch_rows_for(&self, index: usize, rows: u64) -> usize {
        let Some(max_bytes) = self.max_bytes else {
            return self.batch_rows;
        };
        let group = self.source.metadata.metadata().row_group(index);
        let read = |i: usize| match &self.projection {
            Some(p) => p.mask.leaf_included(i),
            None => true,
        };
        let bytes: u64 = (0..group.num_columns())
            .filter(|&i| read(i))
            .map(|i| group.column(i).uncompressed_size().max(0) as u64)
            .sum();
        let per_row = bytes.div_ceil(rows.max(1)).max(1);
        let fit = (max_bytes as u64 / per_row).max(1);
        usize::try_from(fit)
            .unwrap_or(usize::MAX)
            .min(self.batch_rows)
    }

    /// Opens the decoder of the next row group that has rows at or after `next_row`.
    fn open_next_group(&mut self) -> Result<Option<GroupReader>, SourceError> {
        while let Some(&group) = self.source.row_groups.get(self.next_group) {
            self.next_group += 1;
            let end = group.first_row + group.rows;
            if end <= self.next_row {
                continue;
            }
            let skip = self.next_row.saturating_sub(group.first_row);
            let skip =
                usize::try_from(skip).map_err(|_| self.decode_error(group, "too many rows"))?;
            let input = SharedReader(Arc::clone(&self.source.reader));
            let batch_rows = self.batch_rows_for(group.index, group.rows);
            let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
                input,
                self.source.metadata.clone(),
            )
            .with_row_groups(vec![group.index])
            .with_batch_size(batch_rows);
            if skip > 0 {
                builder = builder.with_offset(skip);
            }
            if let Some(projection) = &self.projection {
                builder = builder.with_projection(projection.mask.clone());
            }
            let reader = match catch_unwind(AssertUnwindSafe(|| builder.build())) {
                Ok(Ok(reader)) => reader,
                Ok(Err(error)) => return Err(self.decode_error(group, &error.to_string())),
                Err(panic) => return Err(self.panic_error(group, &panic_message(&panic))),
            };
            let invalid = self.invalid_rows(group, skip as u64)?;
            return Ok(Some(GroupReader {
                group,
                reader,
                next_row: group.first_row + skip as u64,
                invalid,
            }));
        }
        Ok(None)
    }

    /// The next batch of the current row group, `None` when the row group is finished.
    fn next_in_group(
        &mut self,
        current: &mut GroupReader,
    ) -> Result<Option<SourceBatch>, SourceError> {
        let group = current.group;
        let decoded = match catch_unwind(AssertUnwindSafe(|| current.reader.next())) {
            Ok(decoded) => decoded,
            Err(panic) => return Err(self.panic_error(group, &panic_message(&panic))),
        };
        let batch = match decoded {
            Some(Ok(batch)) => batch,
            Some(Err(error)) => return Err(self.decode_error(group, &error.to_string())),
            None => {
                let end = group.first_row + group.rows;
                if current.next_row != end {
                    return Err(self.decode_error(
                        group,
                        &format!(
                            "the footer promises {} rows but the data ends after {}",
                            group.rows,
                            current.next_row - group.first_row
                        ),
                    ));
                }
                return Ok(None);
            }
        };
        let batch = match &self.projection {
            Some(projection) => batch
                .project(&projection.positions)
                .map_err(|error| self.decode_error(group, &error.to_string()))?,
            None => batch,
        };
        let first_row = current.next_row;
        current.next_row += batch.num_rows() as u64;
        if current.next_row > group.first_row + group.rows {
            return Err(self.decode_error(
                group,
                &format!(
                    "the data holds more than the {} rows the footer promises",
                    group.rows
                ),
            ));
        }
        Ok(Some(SourceBatch {
            first_row,
            row_group: group.index,
            batch,
        }))
    }

    /// The rows of `group` from its row `skip` on whose INT96 values (of the columns read)
    /// cannot be read, as file rows, in order; several columns of one row are one entry.
    fn invalid_rows(
        &self,
        group: RowGroupInfo,
        skip: u64,
    ) -> Result<VecDeque<(u64, String, String)>, SourceError> {
        let mut rows: BTreeMap<u64, (String, Vec<String>)> = BTreeMap::new();
        for leaf in self.source.int96.iter() {
            if let Some(projection) = &self.projection
                && !projection.mask.leaf_included(leaf.leaf)
            {
                continue;
            }
            let checked = catch_unwind(AssertUnwindSafe(|| {
                invalid_rows(
                    Arc::clone(&self.source.reader),
                    self.source.metadata.metadata(),
                    group.index,
                    leaf,
                    skip,
                )
            }));
            let found = match checked {
                Ok(Ok(found)) => found,
                Ok(Err(error)) => return Err(self.decode_error(group, &error.to_string())),
                Err(panic) => return Err(self.panic_error(group, &panic_message(&panic))),
            };
            for (row, reason) in found {
                rows.entry(group.first_row + row)
                    .or_insert_with(|| (leaf.name.clone(), Vec::new()))
                    .1
                    .push(reason);
            }
        }
        Ok(rows
            .into_iter()
            .map(|(row, (column, reasons))| (row, column, reasons.join("; ")))
            .collect())
    }

    /// `batch` cut around the rows ahead in `invalid` that it holds: its readable runs of
    /// consecutive rows and a [`SourceError::Row`] for each row between them, in row order.
    fn cut_around_invalid(
        &self,
        batch: SourceBatch,
        invalid: &mut VecDeque<(u64, String, String)>,
    ) -> VecDeque<Result<SourceBatch, SourceError>> {
        let end = batch.first_row + batch.batch.num_rows() as u64;
        let mut pieces = VecDeque::new();
        let mut start = batch.first_row;
        while invalid.front().is_some_and(|(row, _, _)| *row < end) {
            let Some((row, column, reason)) = invalid.pop_front() else {
                break;
            };
            if row > start {
                pieces.push_back(Ok(slice(&batch, start, row)));
            }
            pieces.push_back(Err(SourceError::Row {
                file: self.source.name.clone(),
                row,
                column: Some(column),
                reason,
                text: None,
            }));
            start = start.max(row + 1);
        }
        if start == batch.first_row {
            pieces.push_back(Ok(batch));
        } else if start < end {
            pieces.push_back(Ok(slice(&batch, start, end)));
        }
        pieces
    }

    fn decode_error(&self, group: RowGroupInfo, reason: &str) -> SourceError {
        SourceError::Decode {
            file: self.source.name.clone(),
            row_group: group.index,
            reason: reason.to_owned(),
        }
    }

    fn panic_error(&self, group: RowGroupInfo, message: &str) -> SourceError {
        SourceError::Corrupt {
            file: self.source.name.clone(),
            reason: format!("row group {}: decoder panicked: {message}", group.index),
        }
    }
}

/// Rows `from..to` (file rows) of `batch`.
fn slice(batch: &SourceBatch, from: u64, to: u64) -> SourceBatch {
    let offset = (from - batch.first_row) as usize;
    SourceBatch {
        first_row: from,
        row_group: batch.row_group,
        batch: batch.batch.slice(offset, (to - from) as usize),
    }
}

impl<R: ChunkReader + 'static> Iterator for SourceBatches<R> {
    type Item = Result<SourceBatch, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(piece) = self.pending.pop_front() {
            return Some(piece);
        }
        if self.done {
            return None;
        }
        loop {
            let mut current = match self.current.take() {
                Some(current) => current,
                None => match self.open_next_group() {
                    Ok(Some(current)) => current,
                    Ok(None) => {
                        self.done = true;
                        return None;
                    }
                    Err(error) => {
                        self.done = true;
                        return Some(Err(error));
                    }
                },
            };
            match self.next_in_group(&mut current) {
                Ok(Some(batch)) => {
                    self.next_row = current.next_row;
                    if current.invalid.is_empty() {
                        self.current = Some(current);
                        return Some(Ok(batch));
                    }
                    self.pending = self.cut_around_invalid(batch, &mut current.invalid);
                    self.current = Some(current);
                    if let Some(piece) = self.pending.pop_front() {
                        return Some(piece);
                    }
                }
                Ok(None) => self.next_row = current.next_row,
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// A [`ChunkReader`] shared by the decoders of successive row groups.
struct SharedReader<R>(Arc<R>);

impl<R: ChunkReader> Length for SharedReader<R> {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl<R: ChunkReader> ChunkReader for SharedReader<R> {
    type T = R::T;

    fn get_read(&self, start: u64) -> ::parquet::errors::Result<Self::T> {
        self.0.get_read(start)
    }

    fn get_bytes(&self, start: u64, length: usize) -> ::parquet::errors::Result<bytes::Bytes> {
        self.0.get_bytes(start, length)
    }
}
