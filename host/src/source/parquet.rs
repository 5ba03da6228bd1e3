//! Reads one Parquet file as a sequence of Arrow record batches.
//!
//! A [`ParquetSource`] opens a file (anything that implements [`ChunkReader`]: a local
//! [`File`], an in-memory buffer, later an object-store range reader), checks that it is
//! Parquet, and reads its footer. [`ParquetSource::batches`] then decodes it **one row
//! group at a time**, in batches of a configurable number of rows, each tagged with the
//! file row number of its first row; a batch never spans two row groups, so memory stays
//! bounded by one row group's pages and a row number is always `row group start + offset`.
//! With [`SourceBatches::max_bytes`], a batch also holds about at most that many bytes:
//! each row group is read in batches of `max_bytes / (its bytes per row)` rows (at least
//! one), its bytes per row taken from the footer (the uncompressed size of the column
//! chunks read, an average: a batch of rows larger than their row group's average can
//! exceed it; consumers that need an exact bound cut the batch again, see
//! [`crate::batchbytes`]).
//!
//! The Arrow types come from the Parquet schema alone: an `ARROW:schema` footer entry (which
//! Snowflake never writes) is ignored, so a file gets the same contract schema whichever
//! tool wrote it. [`contract_schema`] maps that schema to the plugin contract and consults
//! the Parquet annotations where Arrow loses information: a Snowflake TIMESTAMP_NTZ is an
//! INT64 with only the legacy converted type `TIMESTAMP_MILLIS`, which arrow-rs reads as
//! `Timestamp(ms, "UTC")` although its values are wall-clock times (see
//! `docs/reference/snowflake-unload.md`), and Parquet's JSON annotation becomes the contract's `json` type.
//!
//! Every error names the file. A decoder panic on a malformed file is caught and reported
//! as [`SourceError::Corrupt`] instead of unwinding into the caller.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use ::parquet::arrow::ProjectionMask;
use ::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use ::parquet::basic::{ConvertedType, LogicalType, Repetition};
use ::parquet::errors::ParquetError;
use ::parquet::file::reader::{ChunkReader, Length};
use ::parquet::schema::types::{SchemaDescriptor, Type as ParquetType};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit as ArrowTimeUnit};

use crate::bindings::types::{ColumnSchema, ColumnType, ScalarType, TimeUnit, TimestampType};

/// Rows per batch unless [`ReadOptions::batch_rows`] says otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 1024;
/// Default bound on the bytes of a batch (`[plugin] batch_bytes`): what `run` reads and hands
/// to a plugin at once. A tenth of the plugin's default memory limit, so the input, the
/// plugin's copy of it and its output fit; far above ordinary rows (1024 rows of 16 KiB).
pub const DEFAULT_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// The magic bytes at both ends of a Parquet file.
const MAGIC: &[u8; 4] = b"PAR1";
/// The trailing magic of a file whose footer is encrypted.
const MAGIC_ENCRYPTED: &[u8; 4] = b"PARE";
/// Leading magic + footer length + trailing magic: the smallest possible Parquet file.
const MIN_FILE_LEN: u64 = 12;

/// What can go wrong reading a Parquet file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened.
    #[error("{file}: cannot open: {source}")]
    Open {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a Parquet file at all (no `PAR1` magic at its start).
    #[error("{file}: not a Parquet file: {reason}")]
    NotParquet {
        /// The file.
        file: String,
        /// What was found instead.
        reason: String,
    },
    /// The file starts like Parquet but is truncated or damaged.
    #[error("{file}: corrupt or truncated Parquet file: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file uses a Parquet feature stagepush does not read.
    #[error("{file}: unsupported Parquet file: {reason}")]
    Unsupported {
        /// The file.
        file: String,
        /// The feature.
        reason: String,
    },
    /// A column's type has no equivalent in the plugin contract.
    #[error("{file}: column `{column}` has type {found}, which a plugin cannot receive: {reason}")]
    UnsupportedColumn {
        /// The file.
        file: String,
        /// The column's name.
        column: String,
        /// The column's Arrow type (with its Parquet annotation where that says more).
        found: String,
        /// Why it is refused.
        reason: String,
    },
    /// Decoding a row group failed.
    #[error("{file}: row group {row_group}: cannot decode: {reason}")]
    Decode {
        /// The file.
        file: String,
        /// The row group being read.
        row_group: usize,
        /// The decoder's message.
        reason: String,
    },
    /// The read options do not fit the file.
    #[error("{file}: {reason}")]
    Options {
        /// The file.
        file: String,
        /// What is wrong with the options.
        reason: String,
    },
}

/// How to read a file's rows.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Rows per batch (at least 1). Batches are this size except the last of each row group.
    pub batch_rows: usize,
    /// Columns to decode, as indices into the file's columns; the batches hold exactly these
    /// columns in this order (an index may repeat). `None` decodes every column in order.
    pub projection: Option<Vec<usize>>,
    /// File row number to start at (to resume a partly delivered file); earlier row groups
    /// are not read at all.
    pub start_row: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            batch_rows: DEFAULT_BATCH_ROWS,
            projection: None,
            start_row: 0,
        }
    }
}

/// One row group as the footer describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupInfo {
    /// Position of the row group in the file.
    pub index: usize,
    /// File row number of its first row.
    pub first_row: u64,
    /// Rows in the row group.
    pub rows: u64,
    /// Compressed size of its column chunks, in bytes.
    pub compressed_bytes: u64,
}

/// A batch of consecutive rows of one row group.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// File row number (0-based) of the batch's first row.
    pub first_row: u64,
    /// The row group the rows come from.
    pub row_group: usize,
    /// The rows, with the columns asked for in [`ReadOptions::projection`].
    pub batch: RecordBatch,
}

/// An open Parquet file whose footer has been read.
///
/// Cloning is cheap (the reader and the footer are shared), and so is calling
/// [`batches`](Self::batches) several times: each call reads the file anew.
pub struct ParquetSource<R: ChunkReader + 'static> {
    name: String,
    reader: Arc<R>,
    metadata: ArrowReaderMetadata,
    row_groups: Vec<RowGroupInfo>,
}

impl<R: ChunkReader + 'static> Clone for ParquetSource<R> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            reader: Arc::clone(&self.reader),
            metadata: self.metadata.clone(),
            row_groups: self.row_groups.clone(),
        }
    }
}

impl<R: ChunkReader + 'static> std::fmt::Debug for ParquetSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSource")
            .field("name", &self.name)
            .field("row_groups", &self.row_groups)
            .finish_non_exhaustive()
    }
}

impl ParquetSource<File> {
    /// Opens a local file and reads its footer. Errors name the file by its path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| SourceError::Open {
            file: name.clone(),
            source,
        })?;
        Self::new(file, name)
    }
}

impl<R: ChunkReader + 'static> ParquetSource<R> {
    /// Reads the footer of `reader`; `name` (a path or object key) names the file in errors.
    pub fn new(reader: R, name: impl Into<String>) -> Result<Self, SourceError> {
        let name = name.into();
        check_magic(&reader, &name)?;
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let loaded = catch_unwind(AssertUnwindSafe(|| {
            ArrowReaderMetadata::load(&reader, options)
        }));
        let metadata = match loaded {
            Ok(Ok(metadata)) => metadata,
            Ok(Err(error)) => return Err(footer_error(&name, error)),
            Err(panic) => {
                return Err(SourceError::Corrupt {
                    file: name,
                    reason: format!("footer decoder panicked: {}", panic_message(&panic)),
                });
            }
        };
        let row_groups = row_group_infos(&name, &metadata)?;
        Ok(Self {
            name,
            reader: Arc::new(reader),
            metadata,
            row_groups,
        })
    }

    /// The path or key that names the file in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rows in the file, from the footer.
    pub fn num_rows(&self) -> u64 {
        self.row_groups.iter().map(|group| group.rows).sum()
    }

    /// The file's row groups, from the footer.
    pub fn row_groups(&self) -> &[RowGroupInfo] {
        &self.row_groups
    }

    /// The footer's `created_by` (e.g. `parquet-cpp-arrow version 8.0.0` for Snowflake).
    pub fn created_by(&self) -> Option<&str> {
        self.metadata.metadata().file_metadata().created_by()
    }

    /// The file's Parquet schema.
    pub fn parquet_schema(&self) -> &SchemaDescriptor {
        self.metadata.parquet_schema()
    }

    /// The Arrow schema the batches have (before projection).
    pub fn arrow_schema(&self) -> &SchemaRef {
        self.metadata.schema()
    }

    /// The file's columns as the plugin contract describes them.
    pub fn contract_schema(&self) -> Result<Vec<ColumnSchema>, SourceError> {
        contract_schema(&self.name, self.parquet_schema(), self.arrow_schema())
    }

    /// Reads the file's rows in batches, one row group at a time. The iterator owns what
    /// it needs (it can move to another thread).
    pub fn batches(&self, options: &ReadOptions) -> Result<SourceBatches<R>, SourceError> {
        if options.batch_rows == 0 {
            return Err(self.options_error("the batch size must be at least 1 row".into()));
        }
        let columns = self.arrow_schema().fields().len();
        let projection = match &options.projection {
            None => None,
            Some(indices) => {
                if let Some(&bad) = indices.iter().find(|&&index| index >= columns) {
                    return Err(self.options_error(format!(
                        "column {bad} does not exist (the file has {columns} columns)"
                    )));
                }
                Some(Projection::new(self.parquet_schema(), indices))
            }
        };
        Ok(SourceBatches {
            source: self.clone(),
            batch_rows: options.batch_rows,
            max_bytes: None,
            projection,
            next_group: 0,
            next_row: options.start_row,
            current: None,
            done: false,
        })
    }

    fn options_error(&self, reason: String) -> SourceError {
        SourceError::Options {
            file: self.name.clone(),
            reason,
        }
    }
}

/// The columns to decode and how to put them in the order asked for.
struct Projection {
    /// Which top-level columns the decoder reads (it yields them in file order).
    mask: ProjectionMask,
    /// For each column asked for, its position among the decoded columns.
    positions: Vec<usize>,
}

impl Projection {
    fn new(schema: &SchemaDescriptor, indices: &[usize]) -> Self {
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
}

/// The batches of a file, in row order: an iterator of [`SourceBatch`]es.
///
/// After an error the iterator ends.
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
    done: bool,
}

impl<R: ChunkReader + 'static> SourceBatches<R> {
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
            return Ok(Some(GroupReader {
                group,
                reader,
                next_row: group.first_row + skip as u64,
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

impl<R: ChunkReader + 'static> Iterator for SourceBatches<R> {
    type Item = Result<SourceBatch, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
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
                    self.current = Some(current);
                    return Some(Ok(batch));
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

/// Tells a file that is not Parquet from one that is truncated, before parsing anything.
fn check_magic<R: ChunkReader>(reader: &R, name: &str) -> Result<(), SourceError> {
    let len = reader.len();
    let head = if len >= 4 {
        reader
            .get_bytes(0, 4)
            .map_err(|error| SourceError::Corrupt {
                file: name.to_owned(),
                reason: format!("cannot read the first bytes: {error}"),
            })?
    } else {
        bytes::Bytes::new()
    };
    if head.as_ref() != MAGIC {
        return Err(SourceError::NotParquet {
            file: name.to_owned(),
            reason: if len == 0 {
                "the file is empty".to_owned()
            } else if len < 4 {
                format!("the file is only {len} bytes long")
            } else {
                format!("it starts with {} instead of `PAR1`", describe_bytes(&head))
            },
        });
    }
    if len < MIN_FILE_LEN {
        return Err(SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!("the file is only {len} bytes long, too short for a footer"),
        });
    }
    let tail = reader
        .get_bytes(len - 4, 4)
        .map_err(|error| SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!("cannot read the footer: {error}"),
        })?;
    if tail.as_ref() == MAGIC_ENCRYPTED {
        return Err(SourceError::Unsupported {
            file: name.to_owned(),
            reason: "the footer is encrypted".to_owned(),
        });
    }
    if tail.as_ref() != MAGIC {
        return Err(SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!(
                "the file ends with {} instead of `PAR1`: it is truncated or was still being written",
                describe_bytes(&tail)
            ),
        });
    }
    Ok(())
}

/// `"PAR1"`-style text when the bytes are printable ASCII, else hex.
fn describe_bytes(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("`{}`", String::from_utf8_lossy(bytes))
    } else {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}

fn footer_error(name: &str, error: ParquetError) -> SourceError {
    match error {
        ParquetError::NYI(reason) => SourceError::Unsupported {
            file: name.to_owned(),
            reason,
        },
        other => SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!("cannot read the footer: {other}"),
        },
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "unknown panic".to_owned()
    }
}

fn row_group_infos(
    name: &str,
    metadata: &ArrowReaderMetadata,
) -> Result<Vec<RowGroupInfo>, SourceError> {
    let mut first_row = 0u64;
    let mut infos = Vec::with_capacity(metadata.metadata().num_row_groups());
    for (index, group) in metadata.metadata().row_groups().iter().enumerate() {
        let rows = u64::try_from(group.num_rows()).map_err(|_| SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!("row group {index} has a negative row count"),
        })?;
        infos.push(RowGroupInfo {
            index,
            first_row,
            rows,
            compressed_bytes: u64::try_from(group.compressed_size()).unwrap_or(0),
        });
        first_row = first_row.saturating_add(rows);
    }
    Ok(infos)
}

/// Maps a file's schema to the plugin contract, one [`ColumnSchema`] per top-level column.
///
/// `parquet` and `arrow` are the two views of the same file schema (as
/// [`ParquetSource::parquet_schema`] and [`ParquetSource::arrow_schema`] return them);
/// `file` names the file in errors. The rules:
/// - REQUIRED columns are not nullable, OPTIONAL (and legacy REPEATED) ones are;
/// - a timestamp is `wall-clock` when its Parquet logical type says `isAdjustedToUTC=false`,
///   or when it has only a legacy converted type (`TIMESTAMP_MILLIS`/`_MICROS`), which is how
///   Snowflake writes TIMESTAMP_NTZ; with `isAdjustedToUTC=true` it is an instant. A
///   timestamp without either annotation (INT96) follows Arrow: no time zone = wall-clock;
/// - text annotated JSON is `json`; `UInt64` is `decimal(20, 0)`; Float16/32 widen to `float`;
/// - a LIST of scalars is a list column; structs, maps, nested lists, intervals, durations,
///   times of day and decimals above 38 digits are refused with the column named.
pub fn contract_schema(
    file: &str,
    parquet: &SchemaDescriptor,
    arrow: &Schema,
) -> Result<Vec<ColumnSchema>, SourceError> {
    let roots = parquet.root_schema().get_fields();
    if roots.len() != arrow.fields().len() {
        return Err(SourceError::Corrupt {
            file: file.to_owned(),
            reason: format!(
                "the Parquet schema has {} columns but decodes to {} Arrow columns",
                roots.len(),
                arrow.fields().len()
            ),
        });
    }
    roots
        .iter()
        .zip(arrow.fields().iter())
        .map(|(parquet_type, field)| column_schema(file, parquet_type, field))
        .collect()
}

fn column_schema(
    file: &str,
    parquet_type: &ParquetType,
    field: &Field,
) -> Result<ColumnSchema, SourceError> {
    let name = field.name();
    let refuse = |found: &DataType, reason: &str| SourceError::UnsupportedColumn {
        file: file.to_owned(),
        column: name.clone(),
        found: found.to_string(),
        reason: reason.to_owned(),
    };
    let nullable = parquet_type.get_basic_info().has_repetition()
        && parquet_type.get_basic_info().repetition() != Repetition::REQUIRED;
    let type_ = match field.data_type() {
        DataType::List(item) | DataType::LargeList(item) => {
            let leaf = single_leaf(parquet_type).ok_or_else(|| {
                refuse(
                    field.data_type(),
                    "only lists of scalar values are supported",
                )
            })?;
            if item.data_type().is_nested() {
                return Err(refuse(
                    field.data_type(),
                    "only lists of scalar values are supported",
                ));
            }
            ColumnType::List(
                scalar_type(leaf, item.data_type())
                    .map_err(|reason| refuse(field.data_type(), &reason))?,
            )
        }
        data_type => {
            let leaf = match parquet_type {
                ParquetType::PrimitiveType { .. } => parquet_type,
                ParquetType::GroupType { .. } => {
                    return Err(refuse(
                        data_type,
                        "structs, maps and other groups are not supported",
                    ));
                }
            };
            ColumnType::Scalar(
                scalar_type(leaf, data_type).map_err(|reason| refuse(data_type, &reason))?,
            )
        }
    };
    Ok(ColumnSchema {
        name: name.clone(),
        type_,
        nullable,
    })
}

/// The primitive at the bottom of a chain of single-child groups (a LIST of scalars).
fn single_leaf(parquet_type: &ParquetType) -> Option<&ParquetType> {
    match parquet_type {
        ParquetType::PrimitiveType { .. } => Some(parquet_type),
        ParquetType::GroupType { fields, .. } => match fields.as_slice() {
            [only] => single_leaf(only),
            _ => None,
        },
    }
}

/// The contract type of a scalar column (or list item) with Parquet leaf `leaf`.
fn scalar_type(leaf: &ParquetType, data_type: &DataType) -> Result<ScalarType, String> {
    Ok(match data_type {
        DataType::Boolean => ScalarType::Boolean,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => ScalarType::Integer,
        DataType::UInt64 => ScalarType::Decimal((20, 0)),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ScalarType::Float,
        DataType::Decimal32(precision, scale)
        | DataType::Decimal64(precision, scale)
        | DataType::Decimal128(precision, scale)
        | DataType::Decimal256(precision, scale) => {
            if !(1..=38).contains(precision) {
                return Err(format!(
                    "decimal precision must be 1 to 38 digits, this column has {precision}"
                ));
            }
            ScalarType::Decimal((*precision, *scale))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let info = leaf.get_basic_info();
            if matches!(info.logical_type_ref(), Some(LogicalType::Json))
                || info.converted_type() == ConvertedType::JSON
            {
                ScalarType::Json
            } else {
                ScalarType::Text
            }
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => ScalarType::Binary,
        DataType::Date32 | DataType::Date64 => ScalarType::Date,
        DataType::Timestamp(unit, zone) => ScalarType::Timestamp(TimestampType {
            unit: time_unit(*unit),
            wall_clock: is_wall_clock(leaf, zone.is_none()),
        }),
        DataType::Null => return Err("a column of nulls only (Parquet UNKNOWN) has no type".into()),
        DataType::Time32(_) | DataType::Time64(_) => {
            return Err("times of day are not in the plugin contract".into());
        }
        DataType::Duration(_) | DataType::Interval(_) => {
            return Err("durations and intervals are not in the plugin contract".into());
        }
        other if other.is_nested() => {
            return Err("only lists of scalar values are supported".into());
        }
        _ => return Err("the plugin contract has no such type".into()),
    })
}

/// Whether a timestamp column holds wall-clock (zone-less) values, by its Parquet annotation.
fn is_wall_clock(leaf: &ParquetType, arrow_has_no_zone: bool) -> bool {
    let info = leaf.get_basic_info();
    match info.logical_type_ref() {
        Some(LogicalType::Timestamp(timestamp)) => !timestamp.is_adjusted_to_u_t_c,
        // Legacy converted type only: Snowflake's TIMESTAMP_NTZ (`docs/reference/snowflake-unload.md`).
        _ => match info.converted_type() {
            ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS => true,
            _ => arrow_has_no_zone,
        },
    }
}

/// The contract's name for an Arrow time unit.
pub(crate) fn time_unit(unit: ArrowTimeUnit) -> TimeUnit {
    match unit {
        ArrowTimeUnit::Second => TimeUnit::Seconds,
        ArrowTimeUnit::Millisecond => TimeUnit::Millis,
        ArrowTimeUnit::Microsecond => TimeUnit::Micros,
        ArrowTimeUnit::Nanosecond => TimeUnit::Nanos,
    }
}
