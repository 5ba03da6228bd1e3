//! Snowflake CSV (`TYPE = CSV`): the columns of a file ([`csv_schema`]) and its rows as
//! batches ([`CsvBatches`]), read as a stream. The rules are Snowflake's, with the options
//! of [`CsvOptions`] (checked by [`CsvOptions::check`]): see `docs/csv.md` and
//! `docs/reference/snowflake-unload.md`.
//!
//! The tokenizer is `csv_scan`; a record that cannot be read (invalid UTF-8, a wrong
//! number of fields, an enclosed field not closed, a value that is not of its declared
//! type) is a [`SourceError::Row`] and the iterator goes on with the next record.

use std::io::BufRead;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

use super::options::NONE;
use super::types::{ColumnBuilder, DeclaredColumn, SnowflakeType, truncated};
use super::{CsvOptions, ROW_TEXT_QUOTED, TextSchema};
use crate::source::parquet::{ReadOptions, SourceBatch, SourceError};

#[path = "csv_scan.rs"]
mod scan;

use self::scan::{Dialect, Field, Malformed, ScanError, Scanner};

/// A `[source.csv]` setting that cannot be used; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[source.csv] {key} = {value}: {reason}")]
pub struct CsvOptionsError {
    /// The key, as written in the config (`field_delimiter`, `columns[2]`).
    pub key: String,
    /// The value, TOML-quoted.
    pub value: String,
    pub reason: String,
}

impl CsvOptions {
    /// Checks every setting (one-character delimiters, distinct special characters,
    /// readable column declarations).
    pub fn check(&self) -> Result<(), CsvOptionsError> {
        self.dialect()?;
        self.declared_columns()?;
        Ok(())
    }

    /// The declared columns (empty when none are).
    pub fn declared_columns(&self) -> Result<Vec<DeclaredColumn>, CsvOptionsError> {
        self.columns
            .iter()
            .enumerate()
            .map(|(index, declaration)| {
                DeclaredColumn::parse(declaration).map_err(|error| CsvOptionsError {
                    key: format!("columns[{index}]"),
                    value: toml_quoted(declaration),
                    reason: error.reason.to_string(),
                })
            })
            .collect()
    }

    fn dialect(&self) -> Result<Dialect, CsvOptionsError> {
        let delimiter = character("field_delimiter", &self.field_delimiter, Allow::None)?;
        let record = if self.record_delimiter == "\r\n" {
            b'\n'
        } else {
            character("record_delimiter", &self.record_delimiter, Allow::Only)?.unwrap_or(b'\n')
        };
        let enclose = character(
            "field_optionally_enclosed_by",
            &self.field_optionally_enclosed_by,
            Allow::None,
        )?;
        if let Some(quote) = enclose
            && quote != b'"'
            && quote != b'\''
        {
            return Err(CsvOptionsError {
                key: "field_optionally_enclosed_by".into(),
                value: toml_quoted(&self.field_optionally_enclosed_by),
                reason: "must be \"NONE\", \"\\\"\" or \"'\"".into(),
            });
        }
        let escape_unenclosed = character(
            "escape_unenclosed_field",
            &self.escape_unenclosed_field,
            Allow::None,
        )?;
        let escape = character("escape", &self.escape, Allow::None)?;
        let specials = [
            ("field_delimiter", delimiter),
            ("record_delimiter", Some(record)),
            ("field_optionally_enclosed_by", enclose),
            ("escape_unenclosed_field", escape_unenclosed),
            ("escape", escape),
        ];
        for (i, (key, byte)) in specials.iter().enumerate() {
            for (other, other_byte) in &specials[..i] {
                // ESCAPE may be the enclosure character itself (`""` is then its escape).
                if *key == "escape" && *other == "field_optionally_enclosed_by" {
                    continue;
                }
                if byte.is_some() && byte == other_byte {
                    return Err(CsvOptionsError {
                        key: (*key).into(),
                        value: toml_quoted(&char::from(byte.unwrap_or_default()).to_string()),
                        reason: format!("is also the {other}"),
                    });
                }
            }
        }
        Ok(Dialect {
            delimiter,
            record,
            enclose,
            escape_unenclosed,
            escape,
            null_if: self
                .null_if
                .iter()
                .map(|text| text.as_bytes().to_vec())
                .collect(),
            empty_field_as_null: self.empty_field_as_null,
        })
    }
}

/// Whether a character setting may be `NONE`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allow {
    None,
    Only,
}

/// One ASCII character (or a Snowflake escape for one: `\t`, `\n`, `\r`, `\f`, `\b`, `\\`,
/// `0xHH`); `NONE` is `None` where allowed.
fn character(key: &str, text: &str, allow: Allow) -> Result<Option<u8>, CsvOptionsError> {
    let refuse = |reason: &str| CsvOptionsError {
        key: key.into(),
        value: toml_quoted(text),
        reason: reason.into(),
    };
    if text.eq_ignore_ascii_case(NONE) {
        return if allow == Allow::None {
            Ok(None)
        } else {
            Err(refuse("must be one character (NONE is not supported here)"))
        };
    }
    let byte = match text.as_bytes() {
        [byte] if byte.is_ascii() => *byte,
        [b'\\', b't'] => b'\t',
        [b'\\', b'n'] => b'\n',
        [b'\\', b'r'] => b'\r',
        [b'\\', b'f'] => 0x0c,
        [b'\\', b'b'] => 0x08,
        [b'\\', b'\\'] => b'\\',
        [b'0', b'x' | b'X', ..] => u8::from_str_radix(&text[2..], 16)
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| refuse("must be one ASCII character; `0x…` must name one"))?,
        _ => {
            return Err(refuse(
                "must be one ASCII character (Snowflake's multi-character and non-ASCII \
                 delimiters are not supported)",
            ));
        }
    };
    Ok(Some(byte))
}

fn toml_quoted(text: &str) -> String {
    format!("{text:?}")
}

fn options_error(file: &str, error: CsvOptionsError) -> SourceError {
    SourceError::Options {
        file: file.to_owned(),
        reason: error.to_string(),
    }
}

fn scan_error(file: &str, error: ScanError) -> SourceError {
    SourceError::Decode {
        file: file.to_owned(),
        row_group: 0,
        reason: error.to_string(),
    }
}

/// The column names of `_COL_0`, `_COL_1`, … (Snowflake's names without a header).
fn positional_name(index: usize) -> String {
    format!("_COL_{index}")
}

/// The columns of a CSV file: `options.columns` when declared (a header line, if
/// `options.header`, is then checked to have as many fields); else the header's names, or
/// `_COL_0…` for as many fields as the first record has, all `VARCHAR`. `read` is the
/// start of the file (already decompressed); `name` names the file in errors.
pub fn csv_schema(
    read: &mut dyn BufRead,
    name: &str,
    options: &CsvOptions,
) -> Result<Arc<TextSchema>, SourceError> {
    let dialect = options.dialect().map_err(|e| options_error(name, e))?;
    let declared = options
        .declared_columns()
        .map_err(|e| options_error(name, e))?;
    if !declared.is_empty() && !options.header {
        return Ok(TextSchema::new(declared));
    }
    let mut scanner = Scanner::new(read, dialect);
    // The first record (without a header: the first well-formed one, whose fields can be
    // counted; a malformed one is the batches' row error).
    let mut malformed = None;
    let mut any = false;
    while let Some(problem) = scanner.next_record().map_err(|e| scan_error(name, e))? {
        any = true;
        malformed = problem;
        if options.header || problem.is_none() {
            break;
        }
    }
    if !any {
        // An empty file: its columns are the declared ones, or none.
        return Ok(TextSchema::new(declared));
    }
    let header_error = |reason: String| SourceError::Options {
        file: name.to_owned(),
        reason: format!(
            "[source.csv] header = true but the header cannot be read: {reason}: `{}`",
            quote_record(scanner.record())
        ),
    };
    if let (Some(malformed), true) = (malformed, options.header) {
        let quote = scanner.dialect().enclose.unwrap_or(b'"');
        return Err(header_error(malformed.reason(quote)));
    }
    let fields = scanner.fields().len();
    if !options.header {
        return Ok(TextSchema::new(
            (0..fields)
                .map(|i| DeclaredColumn::new(positional_name(i), SnowflakeType::Text))
                .collect(),
        ));
    }
    if !declared.is_empty() {
        if fields != declared.len() {
            return Err(SourceError::Options {
                file: name.to_owned(),
                reason: format!(
                    "the header has {fields} fields but [source.csv] columns declares {}",
                    declared.len()
                ),
            });
        }
        return Ok(TextSchema::new(declared));
    }
    let record = std::str::from_utf8(scanner.record())
        .map_err(|_| header_error("it is not valid UTF-8".to_owned()))?;
    let mut scratch = Vec::new();
    let names = scanner
        .fields()
        .iter()
        .map(|field| field_text(record, field, scanner.dialect(), &mut scratch).into_owned())
        .map(|name| DeclaredColumn::new(name, SnowflakeType::Text))
        .collect();
    Ok(TextSchema::new(names))
}

/// A field's text, its escapes undone.
fn field_text<'a>(
    record: &'a str,
    field: &Field,
    dialect: &Dialect,
    scratch: &mut Vec<u8>,
) -> std::borrow::Cow<'a, str> {
    let raw = &record[field.start..field.end];
    if !field.escaped {
        return raw.into();
    }
    match (field.enclosed, dialect.enclose, dialect.escape_unenclosed) {
        (true, Some(quote), _) => {
            scan::unescape_enclosed(raw.as_bytes(), quote, dialect.escape, scratch)
        }
        (false, _, Some(escape)) => scan::unescape_unenclosed(raw.as_bytes(), escape, scratch),
        _ => return raw.into(),
    }
    // Undoing escapes removes or replaces ASCII bytes only: the text stays UTF-8.
    String::from_utf8_lossy(scratch).into_owned().into()
}

/// At most [`ROW_TEXT_QUOTED`] bytes of a record, for a row error.
fn quote_record(record: &[u8]) -> String {
    let text = String::from_utf8_lossy(&record[..record.len().min(ROW_TEXT_QUOTED + 4)]);
    truncated(&text, ROW_TEXT_QUOTED).to_owned()
}

/// The rows of a CSV file in batches of at most `read.batch_rows` rows and about
/// `max_bytes` bytes of text, from row `read.start_row` on (earlier rows are parsed and
/// skipped; the header line is not a row), with the columns of `read.projection`.
/// Row numbers count records (0-based), not lines.
pub struct CsvBatches {
    name: String,
    scanner: Scanner<Box<dyn BufRead + Send>>,
    schema: Arc<TextSchema>,
    /// Per batch column: its file column.
    projection: Vec<usize>,
    batch_schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    batch_rows: usize,
    max_bytes: usize,
    start_row: u64,
    skip_header: bool,
    /// The next record's row number.
    next_row: u64,
    /// The current batch: its first row, rows and bytes.
    first_row: u64,
    rows: usize,
    bytes: usize,
    /// An error to yield after the batch cut before it.
    pending: Option<SourceError>,
    /// Set when the iterator is over.
    done: bool,
    scratch: Vec<u8>,
}

impl CsvBatches {
    /// Reads `read` (the whole file, decompressed) with `schema` (from [`csv_schema`]).
    pub fn new(
        read: Box<dyn BufRead + Send>,
        name: String,
        options: Arc<CsvOptions>,
        schema: Arc<TextSchema>,
        read_options: &ReadOptions,
        max_bytes: usize,
    ) -> CsvBatches {
        let columns = schema.columns.len();
        let projection: Vec<usize> = match &read_options.projection {
            Some(indices) => indices.clone(),
            None => (0..columns).collect(),
        };
        let mut pending = None;
        if read_options.batch_rows == 0 {
            pending = Some("the batch size must be at least 1 row".to_owned());
        } else if let Some(bad) = projection.iter().find(|&&index| index >= columns) {
            pending = Some(format!(
                "column {bad} does not exist (the file has {columns} columns)"
            ));
        }
        let dialect = match options.dialect() {
            Ok(dialect) => dialect,
            Err(error) => {
                pending = Some(error.to_string());
                Dialect {
                    delimiter: Some(b','),
                    record: b'\n',
                    enclose: None,
                    escape_unenclosed: None,
                    escape: None,
                    null_if: Vec::new(),
                    empty_field_as_null: true,
                }
            }
        };
        let pending = pending.map(|reason| SourceError::Options {
            file: name.clone(),
            reason,
        });
        let done = pending.is_some();
        let valid: Vec<usize> = if done { Vec::new() } else { projection };
        let batch_schema = Arc::new(Schema::new(
            valid
                .iter()
                .map(|&index| schema.arrow.field(index).clone())
                .collect::<Vec<_>>(),
        ));
        let batch_rows = read_options.batch_rows.max(1);
        let builders = valid
            .iter()
            .map(|&index| ColumnBuilder::for_column(&schema.columns[index], batch_rows))
            .collect();
        CsvBatches {
            name,
            scanner: Scanner::new(read, dialect),
            schema,
            projection: valid,
            batch_schema,
            builders,
            batch_rows,
            max_bytes: max_bytes.max(1),
            start_row: read_options.start_row,
            skip_header: options.header,
            next_row: 0,
            first_row: 0,
            rows: 0,
            bytes: 0,
            pending,
            done,
            scratch: Vec::new(),
        }
    }

    /// The rows built so far as a batch.
    fn take_batch(&mut self) -> Result<SourceBatch, SourceError> {
        let columns = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let rows = self.rows;
        self.rows = 0;
        self.bytes = 0;
        let batch = RecordBatch::try_new_with_options(
            Arc::clone(&self.batch_schema),
            columns,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|error| SourceError::Decode {
            file: self.name.clone(),
            row_group: 0,
            reason: error.to_string(),
        })?;
        Ok(SourceBatch {
            first_row: self.first_row,
            row_group: 0,
            batch,
        })
    }

    /// Yields the batch built so far (if any) and then `error`.
    fn cut_before(&mut self, error: SourceError) -> Option<Result<SourceBatch, SourceError>> {
        if self.rows == 0 {
            return Some(Err(error));
        }
        self.pending = Some(error);
        Some(self.take_batch())
    }

    /// Appends the current record to the batch, or says why it cannot be read.
    fn push_record(&mut self, row: u64, malformed: Option<Malformed>) -> Result<(), SourceError> {
        let record = self.scanner.record();
        let row_error = |column: Option<&str>, reason: String| SourceError::Row {
            file: self.name.clone(),
            row,
            column: column.map(str::to_owned),
            reason,
            text: Some(quote_record(record)),
        };
        let dialect = self.scanner.dialect();
        if let Some(malformed) = malformed {
            return Err(row_error(
                None,
                malformed.reason(dialect.enclose.unwrap_or(b'"')),
            ));
        }
        let fields = self.scanner.fields();
        let columns = self.schema.columns.len();
        if fields.len() != columns {
            return Err(row_error(
                None,
                format!(
                    "{} fields where the file has {columns} columns (Snowflake's \
                     ERROR_ON_COLUMN_COUNT_MISMATCH)",
                    fields.len()
                ),
            ));
        }
        let text = match std::str::from_utf8(record) {
            Ok(text) => text,
            Err(error) => {
                return Err(row_error(
                    None,
                    format!(
                        "not valid UTF-8 (at byte {} of the record)",
                        error.valid_up_to()
                    ),
                ));
            }
        };
        for (built, &index) in self.projection.iter().enumerate() {
            let field = &fields[index];
            let builder = &mut self.builders[built];
            let result =
                if !field.enclosed && is_null(&text.as_bytes()[field.start..field.end], dialect) {
                    builder.push_null_checked(&text[field.start..field.end])
                } else {
                    let value = field_text(text, field, dialect, &mut self.scratch);
                    builder.push_text(&value)
                };
            if let Err(error) = result {
                for earlier in &mut self.builders[..built] {
                    earlier.pop();
                }
                let column = &self.schema.columns[index].name;
                return Err(row_error(
                    Some(column),
                    format!("column `{column}`: {error}"),
                ));
            }
        }
        Ok(())
    }
}

/// Whether an unenclosed field's raw text means NULL (`NULL_IF`, `EMPTY_FIELD_AS_NULL`).
fn is_null(raw: &[u8], dialect: &Dialect) -> bool {
    (raw.is_empty() && dialect.empty_field_as_null)
        || dialect.null_if.iter().any(|null| null.as_slice() == raw)
}

impl Iterator for CsvBatches {
    type Item = Result<SourceBatch, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.pending.take() {
            return Some(Err(error));
        }
        if self.done {
            return None;
        }
        loop {
            let malformed = match self.scanner.next_record() {
                Ok(Some(malformed)) => malformed,
                Ok(None) => {
                    self.done = true;
                    return (self.rows > 0).then(|| self.take_batch());
                }
                Err(error) => {
                    self.done = true;
                    let error = scan_error(&self.name, error);
                    return self.cut_before(error);
                }
            };
            if self.skip_header {
                self.skip_header = false;
                continue;
            }
            let row = self.next_row;
            self.next_row += 1;
            if row < self.start_row {
                continue;
            }
            match self.push_record(row, malformed) {
                Ok(()) => {
                    if self.rows == 0 {
                        self.first_row = row;
                    }
                    self.rows += 1;
                    self.bytes += self.scanner.record_len();
                    if self.rows >= self.batch_rows || self.bytes >= self.max_bytes {
                        return Some(self.take_batch());
                    }
                }
                Err(error) => return self.cut_before(error),
            }
        }
    }
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
