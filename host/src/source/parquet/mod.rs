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
//! as [`SourceError::Corrupt`] instead of unwinding into the caller. A file with a column
//! chunk in a codec stagepush cannot decode (LZO) is refused when it is opened, before any
//! row is read ([`SourceError::Codec`], see [`codec`]). INT96 timestamps are read as
//! microseconds and a value outside years 0001–9999 is a row error ([`int96`]).
//!
//! Parts: `footer` (the magic bytes and footer checks, row groups), [`batches`] (the
//! row-group-at-a-time reader, [`SourceBatches`]), [`contract`] (the Parquet/Arrow schema
//! mapped to the plugin contract, [`contract_schema`]), [`codec`] (which codecs are read),
//! [`int96`] (INT96 timestamps).

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use ::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use ::parquet::file::reader::ChunkReader;
use ::parquet::schema::types::SchemaDescriptor;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::bindings::types::ColumnSchema;

pub mod batches;
pub mod codec;
pub mod contract;
mod footer;
pub mod int96;

use self::batches::Projection;
pub use self::batches::SourceBatches;
pub(crate) use self::contract::time_unit;
pub use self::contract::{UnsupportedType, contract_schema};
use self::footer::{check_magic, footer_error, panic_message, row_group_infos};
use self::int96::{Int96Leaf, int96_leaves, int96_statistics_problem, micros_schema};

/// Rows per batch unless [`ReadOptions::batch_rows`] says otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 1024;
/// Default bound on the bytes of a batch (`[plugin] batch_bytes`): what `run` reads and hands
/// to a plugin at once. A tenth of the plugin's default memory limit, so the input, the
/// plugin's copy of it and its output fit; far above ordinary rows (1024 rows of 16 KiB).
pub const DEFAULT_BATCH_BYTES: usize = 16 * 1024 * 1024;

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
    /// A column chunk is compressed with a codec stagepush cannot decode (LZO, or a codec id
    /// the Parquet format does not define); the file is refused when opened, before any row.
    #[error(
        "{file}: compressed with {codec}{}, which stagepush cannot read: {fix}",
        .column.as_ref().map(|column| format!(" (column `{column}`)")).unwrap_or_default()
    )]
    Codec {
        /// The file.
        file: String,
        /// The codec (`LZO`).
        codec: String,
        /// The first column chunk found in it (its path), when the footer could be read.
        column: Option<String>,
        /// What to do (for LZO: the Snowflake unload option).
        fix: String,
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
    /// One row cannot be read (text files: a value that does not parse as its declared
    /// type, a wrong number of fields, a line that is not a JSON object; Parquet: a value
    /// that cannot be represented). **Not fatal**: the batch iterator goes on with the next
    /// row; the pipeline dead-letters this one.
    #[error("{file}: row {row}: {reason}")]
    Row {
        /// The file.
        file: String,
        /// The row's number in the file (0-based, as every row number).
        row: u64,
        /// The column, when one column is at fault.
        column: Option<String>,
        /// What is wrong (naming the column, value and declared type when it is a value).
        reason: String,
        /// The row's text as read (at most [`crate::source::text::ROW_TEXT_QUOTED`] bytes),
        /// for the dead letter.
        text: Option<String>,
    },
    /// A compressed text file (`.csv.gz`, …) cannot be decompressed: it is truncated or
    /// corrupt.
    #[error(
        "{file}: cannot decompress ({compression}): {reason}; the file is truncated or corrupt"
    )]
    Decompress {
        /// The file.
        file: String,
        /// The compression (`gzip`, `bz2`, `zstd`).
        compression: &'static str,
        /// The decompressor's message.
        reason: String,
    },
    /// A declared column (`[source.csv]` or `[source.json] columns`) cannot be read.
    #[error("{file}: [source.{format}] columns entry {entry}: {error}")]
    Declaration {
        /// The file.
        file: String,
        /// `csv` or `json`.
        format: &'static str,
        /// The entry's position in the list (1-based, as a reader counts).
        entry: usize,
        /// The entry and what is wrong with it.
        error: crate::source::text::types::DeclarationError,
    },
    /// The file is not laid out as its format says (a JSON stage file that is one array
    /// instead of one object per line).
    #[error("{file}: {reason}")]
    Layout {
        /// The file.
        file: String,
        /// What was found and what to do.
        reason: String,
    },
    /// Reading the file's bytes failed (a text file, after decompression).
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// A row error: the iterator that yields it goes on with the next row.
    pub fn is_row_error(&self) -> bool {
        matches!(self, SourceError::Row { .. })
    }
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
    /// The INT96 columns read as microseconds, whose raw values are checked.
    int96: Arc<[Int96Leaf]>,
}

impl<R: ChunkReader + 'static> Clone for ParquetSource<R> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            reader: Arc::clone(&self.reader),
            metadata: self.metadata.clone(),
            row_groups: self.row_groups.clone(),
            int96: Arc::clone(&self.int96),
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
        codec::check_codecs(&name, metadata.metadata())?;
        let int96 = int96_leaves(metadata.parquet_schema());
        let metadata = if int96.is_empty() {
            metadata
        } else {
            // INT96 as microseconds (see `int96`): the same footer, a hinted schema.
            let hinted = micros_schema(metadata.schema(), &int96);
            let options = ArrowReaderOptions::new()
                .with_skip_arrow_metadata(true)
                .with_schema(Arc::new(hinted));
            ArrowReaderMetadata::try_new(Arc::clone(metadata.metadata()), options)
                .map_err(|error| footer_error(&name, error))?
        };
        let row_groups = row_group_infos(&name, &metadata)?;
        Ok(Self {
            name,
            reader: Arc::new(reader),
            metadata,
            row_groups,
            int96: int96.into(),
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

    /// The codecs of the file's column chunks (`SNAPPY`, `ZSTD`, …), each once, in the order
    /// they first appear.
    pub fn codecs(&self) -> Vec<&'static str> {
        codec::file_codecs(self.metadata.metadata())
            .into_iter()
            .map(codec::codec_name)
            .collect()
    }

    /// The INT96 columns whose footer statistics (where the footer has them) show a value
    /// outside years 0001–9999, with why: their rows will be row errors. Each column once.
    pub fn int96_statistics_problems(&self) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = Vec::new();
        for group in self.metadata.metadata().row_groups() {
            for leaf in self.int96.iter() {
                let problem = group
                    .column(leaf.leaf)
                    .statistics()
                    .and_then(int96_statistics_problem);
                if let Some(problem) = problem
                    && !found.iter().any(|(name, _)| *name == leaf.name)
                {
                    found.push((leaf.name.clone(), problem));
                }
            }
        }
        found
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
        Ok(SourceBatches::new(
            self.clone(),
            options.batch_rows,
            projection,
            options.start_row,
        ))
    }

    fn options_error(&self, reason: String) -> SourceError {
        SourceError::Options {
            file: self.name.clone(),
            reason,
        }
    }
}
