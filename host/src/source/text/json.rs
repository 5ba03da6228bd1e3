//! Snowflake JSON unloads (`TYPE = JSON`): one object per line (NDJSON of the unloaded
//! VARIANT/OBJECT column, usually `OBJECT_CONSTRUCT(*)`, which **leaves out keys whose value
//! is NULL**). The columns are declared (`[source.json] columns`) or inferred from the first
//! `infer_rows` rows with the one JSON → column inference ([`crate::source::json`], the
//! relay's and `plugin test --json-input`'s); [`JsonBatches`] reads the rows.
//!
//! Per line (see `docs/json.md`):
//! - a blank line is not a row (row numbers count the other lines, from 0);
//! - a missing key is NULL (that is how `OBJECT_CONSTRUCT` writes a NULL);
//! - a key outside the columns, a value that does not fit its column (declared: its
//!   Snowflake type; inferred: the inference's rules), a line that is not UTF-8, not JSON or
//!   not an object is a row error ([`SourceError::Row`]) naming the key, column, value or
//!   line, never silently dropped; the iterator goes on with the next line;
//! - objects and arrays are kept as their JSON text **as written in the file** (key order
//!   and numbers exactly, `1.50` stays `1.50`);
//! - a file that is one JSON array (`[` first) is refused: Snowflake writes NDJSON
//!   (`STRIP_OUTER_ARRAY` is an option of loading, not of unloading).
//!
//! Inferred columns have the relay's types, except that a TIMESTAMP column gets the unit its
//! text needs ([`InferredColumn`]): Snowflake writes `2024-05-01 12:34:56.789`, which is
//! milliseconds, as a Parquet unload of the same column, so the same plugin or pass-through
//! makes the same records from either unload.

use std::io::BufRead;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, Schema};

use self::row::{RowReader, raw_kind};
use self::scan::members;
use super::types::{DeclaredColumn, SnowflakeType};
use super::{JsonOptions, MAX_RECORD_BYTES, TextSchema};
use crate::bindings::types::{ColumnType, ScalarType, TimeUnit, TimestampType};
use crate::source::json::{Inference, JsonColumnBuilder, JsonKind, unit_digits, unit_for_digits};
use crate::source::parquet::{ReadOptions, SourceBatch, SourceError};

/// The columns of a JSON file: `options.columns` when declared, else inferred from its
/// first `options.infer_rows` rows (lines that cannot be read are skipped: they are row
/// errors when the rows are read). `read` is the start of the file (decompressed).
pub fn json_schema(
    read: &mut dyn BufRead,
    name: &str,
    options: &JsonOptions,
) -> Result<Arc<TextSchema>, SourceError> {
    if !options.columns.is_empty() {
        return declared_schema(name, &options.columns);
    }
    let mut lines = Lines::new(read, name);
    let mut line = Vec::new();
    let mut inference = Inference::default();
    let mut seen: Vec<Option<(JsonKind, u32)>> = Vec::new();
    // Per column, the most fraction digits a timestamp had.
    let mut digits: Vec<u32> = Vec::new();
    let mut rows = 0;
    while rows < options.infer_rows && lines.next(&mut line)? {
        if rows == 0
            && let Some(error) = one_array(&line, name)
        {
            return Err(error);
        }
        rows += 1;
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        let Ok(members) = members(text) else {
            continue;
        };
        for (key, raw) in members {
            let column = inference.column(&key);
            if seen.len() <= column {
                seen.resize(column + 1, None);
            }
            // A later member of the same name wins (the relay's rule).
            seen[column] = Some(raw_kind(raw));
        }
        digits.resize(seen.len(), 0);
        for (column, kind) in seen.iter_mut().enumerate() {
            if let Some((kind, d)) = kind.take() {
                inference.observe(column, kind);
                digits[column] = digits[column].max(d);
            }
        }
    }
    digits.resize(inference.len(), 0);
    Ok(inferred_schema(&inference, &digits))
}

/// The schema of `[source.json] columns`.
fn declared_schema(name: &str, declarations: &[String]) -> Result<Arc<TextSchema>, SourceError> {
    let columns = declarations
        .iter()
        .enumerate()
        .map(|(i, d)| {
            DeclaredColumn::parse(d).map_err(|error| SourceError::Declaration {
                file: name.to_owned(),
                format: "json",
                entry: i + 1,
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TextSchema::new(columns))
}

/// An inferred column: the inference's kind and, for a TIMESTAMP, the unit that holds
/// every fraction digit its first rows had (milliseconds at least: what a Parquet unload
/// of TIMESTAMP_NTZ gives, and what Snowflake writes in JSON, `2024-05-01 12:34:56.789`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferredColumn {
    pub kind: JsonKind,
    /// The TIMESTAMP unit (unused for other kinds).
    pub unit: TimeUnit,
}

impl InferredColumn {
    fn builder(&self, rows: usize) -> JsonColumnBuilder {
        match self.kind {
            JsonKind::Timestamp => JsonColumnBuilder::timestamp(self.unit, rows),
            kind => JsonColumnBuilder::new(kind, rows),
        }
    }

    /// The contract type: the relay's, a TIMESTAMP in this column's unit.
    fn scalar(&self) -> ScalarType {
        match self.kind {
            JsonKind::Timestamp => ScalarType::Timestamp(TimestampType {
                unit: self.unit,
                wall_clock: true,
            }),
            kind => kind.scalar(),
        }
    }

    fn data_type(&self) -> arrow_schema::DataType {
        match self.kind {
            JsonKind::Timestamp => arrow_schema::DataType::Timestamp(arrow_unit(self.unit), None),
            kind => kind.data_type(),
        }
    }
}

fn arrow_unit(unit: TimeUnit) -> arrow_schema::TimeUnit {
    match unit {
        TimeUnit::Seconds => arrow_schema::TimeUnit::Second,
        TimeUnit::Millis => arrow_schema::TimeUnit::Millisecond,
        TimeUnit::Micros => arrow_schema::TimeUnit::Microsecond,
        TimeUnit::Nanos => arrow_schema::TimeUnit::Nanosecond,
    }
}

/// The schema of inferred columns: the relay's Arrow and contract types (TIMESTAMPs in the
/// unit their text needs).
fn inferred_schema(inference: &Inference, digits: &[u32]) -> Arc<TextSchema> {
    let inferred: Vec<InferredColumn> = inference
        .kinds()
        .iter()
        .zip(digits)
        .map(|(&kind, &d)| InferredColumn {
            kind,
            unit: unit_for_digits(d),
        })
        .collect();
    let names = inference.names();
    let columns = names
        .iter()
        .zip(&inferred)
        .map(|(name, c)| DeclaredColumn::new(name.clone(), nearest_type(c)))
        .collect();
    let fields: Vec<Field> = names
        .iter()
        .zip(&inferred)
        .map(|(name, c)| Field::new(name, c.data_type(), true))
        .collect();
    let contract = inference
        .schema()
        .into_iter()
        .zip(&inferred)
        .map(|(mut column, c)| {
            column.type_ = ColumnType::Scalar(c.scalar());
            column
        })
        .collect();
    Arc::new(TextSchema {
        columns,
        arrow: Arc::new(Schema::new(fields)),
        contract,
        inferred: Some(inferred),
    })
}

/// The Snowflake type an inferred column's values most likely came from.
fn nearest_type(column: &InferredColumn) -> SnowflakeType {
    match column.kind {
        JsonKind::Bool => SnowflakeType::Boolean,
        JsonKind::Int => SnowflakeType::Number {
            precision: 38,
            scale: 0,
        },
        JsonKind::Float => SnowflakeType::Float,
        JsonKind::Timestamp => SnowflakeType::TimestampNtz {
            precision: unit_digits(column.unit) as u8,
        },
        JsonKind::Date => SnowflakeType::Date,
        JsonKind::Json => SnowflakeType::Variant,
        JsonKind::Null | JsonKind::Text => SnowflakeType::Text,
    }
}

/// The rows of a JSON file in batches (as [`super::csv::CsvBatches`]: at most
/// `batch_rows` rows and about `max_bytes` bytes of lines, from `start_row`, projected).
/// Lines before `start_row` are counted, not parsed. Every value of a row is checked,
/// whether or not its column is projected (a row is an error whatever a transform reads).
pub struct JsonBatches {
    lines: Lines<Box<dyn BufRead + Send>>,
    line: Vec<u8>,
    rows: RowReader,
    projection: Option<Vec<usize>>,
    batch_rows: usize,
    max_bytes: usize,
    start_row: u64,
    /// Row number of the next line read.
    next_row: u64,
    /// The batch being built: its first row, rows and bytes.
    first_row: u64,
    batch_len: usize,
    batch_bytes: usize,
    /// An error to yield after the batch just yielded.
    pending: Option<SourceError>,
    done: bool,
}

impl JsonBatches {
    /// Reads `read` (the whole file, decompressed) with `schema`.
    pub fn new(
        read: Box<dyn BufRead + Send>,
        name: String,
        schema: Arc<TextSchema>,
        read_options: &ReadOptions,
        max_bytes: usize,
    ) -> JsonBatches {
        let width = schema.columns.len();
        let pending = read_options
            .projection
            .as_ref()
            .and_then(|p| p.iter().find(|&&i| i >= width))
            .map(|i| SourceError::Options {
                file: name.clone(),
                reason: format!("projection names column {i}, but the file has {width} columns"),
            });
        let done = pending.is_some();
        JsonBatches {
            lines: Lines::new(read, &name),
            line: Vec::new(),
            rows: RowReader::new(name, schema, read_options.batch_rows.max(1)),
            projection: read_options.projection.clone(),
            batch_rows: read_options.batch_rows.max(1),
            max_bytes: max_bytes.max(1),
            start_row: read_options.start_row,
            next_row: 0,
            first_row: 0,
            batch_len: 0,
            batch_bytes: 0,
            pending,
            done,
        }
    }

    /// The batch of the rows read so far, if any.
    fn flush(&mut self) -> Option<Result<SourceBatch, SourceError>> {
        if self.batch_len == 0 {
            return None;
        }
        let rows = std::mem::take(&mut self.batch_len);
        self.batch_bytes = 0;
        let arrays = self.rows.finish();
        let (schema, arrays) = match &self.projection {
            Some(p) => match self.rows.schema.arrow.project(p) {
                Ok(schema) => (
                    Arc::new(schema),
                    p.iter().map(|&i| arrays[i].clone()).collect(),
                ),
                Err(e) => return Some(Err(self.rows.batch_error(e))),
            },
            None => (self.rows.schema.arrow.clone(), arrays),
        };
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Some(
            RecordBatch::try_new_with_options(schema, arrays, &options)
                .map(|batch| SourceBatch {
                    first_row: self.first_row,
                    row_group: 0,
                    batch,
                })
                .map_err(|e| self.rows.batch_error(e)),
        )
    }

    /// Ends the iterator with `error`, after the batch read so far.
    fn fail(&mut self, error: SourceError) -> Option<Result<SourceBatch, SourceError>> {
        self.done = true;
        match self.flush() {
            Some(batch) => {
                self.pending = Some(error);
                Some(batch)
            }
            None => Some(Err(error)),
        }
    }
}

impl Iterator for JsonBatches {
    type Item = Result<SourceBatch, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(error) = self.pending.take() {
                return Some(Err(error));
            }
            if self.done {
                return None;
            }
            match self.lines.next(&mut self.line) {
                Err(error) => return self.fail(error),
                Ok(false) => {
                    self.done = true;
                    return self.flush();
                }
                Ok(true) => {}
            }
            let row = self.next_row;
            self.next_row += 1;
            if row == 0
                && let Some(error) = one_array(&self.line, &self.rows.name)
            {
                return self.fail(error);
            }
            if row < self.start_row {
                continue;
            }
            if self.batch_len == 0 {
                self.first_row = row;
            }
            match self.rows.read(row, &self.line) {
                Ok(()) => {
                    self.batch_len += 1;
                    self.batch_bytes += self.line.len();
                    if self.batch_len >= self.batch_rows || self.batch_bytes >= self.max_bytes {
                        return self.flush();
                    }
                }
                Err(error) => match self.flush() {
                    Some(batch) => {
                        self.pending = Some(error);
                        return Some(batch);
                    }
                    None => return Some(Err(error)),
                },
            }
        }
    }
}

/// A file's non-blank lines, without their line break (`\n` or `\r\n`); a UTF-8 byte order
/// mark before the first is dropped.
struct Lines<R> {
    read: R,
    name: String,
    first: bool,
}

impl<R: BufRead> Lines<R> {
    fn new(read: R, name: &str) -> Lines<R> {
        Lines {
            read,
            name: name.to_owned(),
            first: true,
        }
    }

    /// Reads the next non-blank line into `line`; false at the end of the file.
    fn next(&mut self, line: &mut Vec<u8>) -> Result<bool, SourceError> {
        loop {
            line.clear();
            // A line is held whole: bounded as a CSV record is (not a whole file in memory).
            let limit = MAX_RECORD_BYTES as u64 + 1;
            let read = std::io::Read::take(&mut self.read, limit)
                .read_until(b'\n', line)
                .map_err(|source| SourceError::Read {
                    file: self.name.clone(),
                    source,
                })?;
            if read == 0 {
                return Ok(false);
            }
            if line.len() > MAX_RECORD_BYTES && line.last() != Some(&b'\n') {
                return Err(SourceError::Layout {
                    file: self.name.clone(),
                    reason: format!(
                        "a line is longer than {} MiB: not one object per line as Snowflake \
                         writes them",
                        MAX_RECORD_BYTES / (1024 * 1024)
                    ),
                });
            }
            if std::mem::take(&mut self.first) && line.starts_with(b"\xEF\xBB\xBF") {
                line.drain(..3);
            }
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }
}

/// The error for a file whose first line starts a JSON array.
fn one_array(line: &[u8], name: &str) -> Option<SourceError> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace())?;
    (*first == b'[').then(|| SourceError::Layout {
        file: name.to_owned(),
        reason: "the file is one JSON array (it starts with `[`), not one object per line: \
                 Snowflake's JSON unloads (`FILE_FORMAT = (TYPE = JSON)`) write one object per \
                 line (NDJSON), which is what a JSON stage reads; unload the rows again that way \
                 (`STRIP_OUTER_ARRAY` is an option of loading, not of unloading)"
            .into(),
    })
}

/// How many bytes of a value a row error quotes at most.
const VALUE_QUOTED: usize = 80;

/// At most `max` bytes of `text` (cut at a character boundary, ending in `…` when cut).
fn quote(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

mod row;
mod scan;
#[cfg(test)]
mod tests;
