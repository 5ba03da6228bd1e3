//! One line of a JSON stage file read into the columns of a batch ([`RowReader`]): its
//! members looked up by key, each value checked against its declared or inferred column,
//! and a row error naming the key, column and value when one does not fit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::ArrayRef;
use serde_json::Value;

use super::scan::members;
use super::{InferredColumn, VALUE_QUOTED, quote};
use crate::bindings::types::TimeUnit;
use crate::source::json::{
    JsonColumnBuilder, JsonKind, fraction_digits, parse_timestamp, timestamp_digits, timestamp_in,
    unit_digits,
};
use crate::source::parquet::SourceError;
use crate::source::text::types::{ColumnBuilder, DeclaredColumn, SnowflakeType, ValueError};
use crate::source::text::{ROW_TEXT_QUOTED, TextSchema};

/// How many column names a row error lists at most.
const NAMES_LISTED: usize = 20;
/// How a row error names the NULL of a key a line does not have.
const MISSING_KEY: &str = "(no such key: NULL)";

/// Why one value does not fit its column (the row error's reason, after the column).
#[derive(Debug, thiserror::Error)]
pub(super) enum CellError {
    #[error("`{value}` is not a JSON string: {source}")]
    NotAString {
        value: String,
        source: serde_json::Error,
    },
    #[error("`{value}` is not a JSON value: {source}")]
    NotAValue {
        value: String,
        source: serde_json::Error,
    },
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// A value that does not parse as its declared type (or a NULL in a NOT NULL column).
    #[error(transparent)]
    Declared(#[from] ValueError),
    #[error(
        "`{value}` has {digits} fraction digits, more than the column's {column_digits} \
         (inferred from the stage's first rows): declare it `TIMESTAMP_NTZ(9)` in \
         `[source.json] columns`, or raise `[source.json] infer_rows`"
    )]
    FractionDigits {
        value: String,
        digits: u32,
        column_digits: u32,
    },
    #[error("`{value}` is out of the range of a nanosecond timestamp (years 1677 to 2262)")]
    TimestampRange { value: String },
    #[error(
        "`{value}` is not a {inferred} ({found}), the type inferred for the column from the \
         stage's first rows: declare its type in `[source.json] columns`, or raise \
         `[source.json] infer_rows`"
    )]
    NotInferredKind {
        value: String,
        inferred: &'static str,
        found: &'static str,
    },
}

/// Reads rows into the columns of one batch.
pub(super) struct RowReader {
    pub(super) name: String,
    pub(super) schema: Arc<TextSchema>,
    index: HashMap<String, usize>,
    columns: Columns,
    /// Per column, the current row's value as its JSON text.
    slots: Vec<Option<usize>>,
    capacity: usize,
}

/// The column builders: declared (Snowflake types) or inferred (the inference's kinds).
enum Columns {
    Declared(Vec<ColumnBuilder>),
    Inferred(Vec<(InferredColumn, JsonColumnBuilder)>),
}

impl Columns {
    fn new(schema: &TextSchema, rows: usize) -> Columns {
        match &schema.inferred {
            Some(columns) => {
                Columns::Inferred(columns.iter().map(|c| (*c, c.builder(rows))).collect())
            }
            None => Columns::Declared(
                schema
                    .columns
                    .iter()
                    .map(|c| ColumnBuilder::for_column(c, rows))
                    .collect(),
            ),
        }
    }
}

/// One value of a row, read from its JSON text.
pub(super) enum Cell<'a> {
    Null,
    /// A string's text (unescaped).
    Str(Cow<'a, str>),
    /// A boolean or number.
    Scalar(Value),
    /// An object or array: its JSON text as written.
    Nested(&'a str),
}

impl RowReader {
    pub(super) fn new(name: String, schema: Arc<TextSchema>, capacity: usize) -> RowReader {
        let index = schema
            .columns
            .iter()
            .enumerate()
            .rev()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        RowReader {
            name,
            columns: Columns::new(&schema, capacity),
            slots: vec![None; schema.columns.len()],
            index,
            schema,
            capacity,
        }
    }

    /// The columns of the rows read since the last call (the builders start over).
    pub(super) fn finish(&mut self) -> Vec<ArrayRef> {
        let fresh = Columns::new(&self.schema, self.capacity);
        match std::mem::replace(&mut self.columns, fresh) {
            Columns::Declared(mut builders) => builders.iter_mut().map(|b| b.finish()).collect(),
            Columns::Inferred(mut builders) => {
                builders.iter_mut().map(|(_, b)| b.finish()).collect()
            }
        }
    }

    pub(super) fn batch_error(&self, error: arrow_schema::ArrowError) -> SourceError {
        SourceError::Options {
            file: self.name.clone(),
            reason: format!("cannot build a batch of its columns: {error}"),
        }
    }

    fn row_error(
        &self,
        row: u64,
        column: Option<&str>,
        reason: String,
        line: &[u8],
    ) -> SourceError {
        SourceError::Row {
            file: self.name.clone(),
            row,
            column: column.map(str::to_owned),
            reason,
            text: Some(quote(&String::from_utf8_lossy(line), ROW_TEXT_QUOTED)),
        }
    }

    /// Reads one line as a row of every column, or says why it is not one (and adds
    /// nothing).
    pub(super) fn read(&mut self, row: u64, line: &[u8]) -> Result<(), SourceError> {
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                let reason = format!(
                    "the line is not UTF-8 text (an invalid byte at offset {}): `{}`",
                    e.valid_up_to(),
                    quote(&String::from_utf8_lossy(line), VALUE_QUOTED)
                );
                return Err(self.row_error(row, None, reason, line));
            }
        };
        let members = members(text).map_err(|e| {
            let reason = format!("{e}: `{}`", quote(text, VALUE_QUOTED));
            self.row_error(row, None, reason, line)
        })?;
        self.slots.iter_mut().for_each(|s| *s = None);
        let mut raws: Vec<&str> = Vec::with_capacity(members.len());
        for (key, raw) in members {
            let Some(&column) = self.index.get(key.as_ref()) else {
                let reason = self.unknown_key(&key);
                return Err(self.row_error(row, Some(&key), reason, line));
            };
            // A later member of the same name wins.
            self.slots[column] = Some(raws.len());
            raws.push(raw);
        }
        let slots = std::mem::take(&mut self.slots);
        let values = slots.iter().map(|s| s.map(|i| raws[i]));
        let read = match &mut self.columns {
            Columns::Inferred(builders) => read_inferred(builders, values),
            Columns::Declared(builders) => read_declared(builders, &self.schema.columns, values),
        };
        self.slots = slots;
        read.map_err(|(column, reason)| {
            let name = self.schema.columns[column].name.clone();
            self.row_error(row, Some(&name), format!("column `{name}`: {reason}"), line)
        })
    }

    /// Why a key outside the columns is a row error, and what to do.
    fn unknown_key(&self, key: &str) -> String {
        let names: Vec<&str> = self
            .schema
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let mut listed = names
            .iter()
            .take(NAMES_LISTED)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > NAMES_LISTED {
            listed.push_str(", …");
        }
        let key = quote(key, VALUE_QUOTED);
        if self.schema.inferred.is_some() {
            format!(
                "key `{key}` is not a column of the stage (the columns inferred from its first \
                 rows: {listed}): declare the columns in `[source.json] columns`, or raise \
                 `[source.json] infer_rows` so that the inference sees `{key}`"
            )
        } else {
            format!(
                "key `{key}` is not a declared column (`[source.json] columns`: {listed}): add \
                 it there"
            )
        }
    }
}

/// Checks every value against its inferred column, then appends them (all or none).
fn read_inferred<'a>(
    builders: &mut [(InferredColumn, JsonColumnBuilder)],
    values: impl Iterator<Item = Option<&'a str>>,
) -> Result<(), (usize, CellError)> {
    let mut cells = Vec::with_capacity(builders.len());
    for (column, ((inferred, _), raw)) in builders.iter().zip(values).enumerate() {
        let kind = inferred.kind;
        let cell = match raw {
            None => Cell::Null,
            Some(raw) => cell(raw).map_err(|e| (column, e))?,
        };
        if let (JsonKind::Timestamp, Cell::Str(s)) = (kind, &cell)
            && let Some(t) = parse_timestamp(s)
        {
            // Parsed once: checked, then appended as it is.
            let value = timestamp_fit(&t, inferred.unit, raw.unwrap_or_default())
                .map_err(|e| (column, e))?;
            cells.push((Cell::Null, raw, Some(value)));
            continue;
        }
        let found = match &cell {
            Cell::Null => JsonKind::Null,
            // Any value goes into TEXT: no need to look at it.
            _ if kind.takes(JsonKind::Text) => JsonKind::Null,
            Cell::Str(s) => JsonKind::of_str(s),
            Cell::Scalar(v) => JsonKind::of(v),
            Cell::Nested(_) => JsonKind::Json,
        };
        if !kind.takes(found) {
            return Err((
                column,
                CellError::NotInferredKind {
                    value: quote(raw.unwrap_or_default(), VALUE_QUOTED),
                    inferred: kind.name(),
                    found: found.name(),
                },
            ));
        }
        cells.push((cell, raw, None));
    }
    for ((inferred, builder), (cell, raw, time)) in builders.iter_mut().zip(cells) {
        if let Some(value) = time {
            builder.append_timestamp(value);
            continue;
        }
        match cell {
            Cell::Null => builder.append_null(),
            Cell::Str(s) => builder.append_str(&s),
            // A number or boolean in TEXT: its JSON text as written (`12.50`, every digit).
            Cell::Scalar(_) if inferred.kind.takes(JsonKind::Text) => {
                builder.append_json_text(raw.unwrap_or_default())
            }
            Cell::Scalar(v) => builder.append(&v),
            Cell::Nested(text) => builder.append_json_text(text),
        }
    }
    Ok(())
}

/// Appends every value to its declared column; on a value that does not parse, removes
/// what the row appended.
fn read_declared<'a>(
    builders: &mut [ColumnBuilder],
    columns: &[DeclaredColumn],
    values: impl Iterator<Item = Option<&'a str>>,
) -> Result<(), (usize, CellError)> {
    let mut appended = 0;
    let mut result = Ok(());
    for (column, ((builder, declared), raw)) in
        builders.iter_mut().zip(columns).zip(values).enumerate()
    {
        let pushed = match raw {
            // OBJECT_CONSTRUCT leaves NULLs out: a missing key is NULL.
            None => builder
                .push_null_checked(MISSING_KEY)
                .map_err(CellError::from),
            Some(raw) => push_declared(builder, declared.ty, raw),
        };
        if let Err(reason) = pushed {
            result = Err((column, reason));
            break;
        }
        appended += 1;
    }
    if result.is_err() {
        builders[..appended].iter_mut().for_each(|b| b.pop());
    }
    result
}

/// Appends one value (its JSON text) to a declared column: a VARIANT gets the value's JSON
/// text as written, a TEXT a non-string value's JSON text as written, a NUMBER a number's
/// digits as written (exactly, however many); the rest goes through
/// [`ColumnBuilder::push_json`].
fn push_declared(
    builder: &mut ColumnBuilder,
    ty: SnowflakeType,
    raw: &str,
) -> Result<(), CellError> {
    let cell = cell(raw)?;
    let pushed = match (ty, cell) {
        (_, Cell::Null) => builder.push_null_checked("null"),
        (SnowflakeType::Variant, _) => builder.push_text(raw),
        (SnowflakeType::Text, Cell::Scalar(_) | Cell::Nested(_)) => builder.push_text(raw),
        (SnowflakeType::Number { .. }, Cell::Scalar(Value::Number(_))) => builder.push_text(raw),
        (_, Cell::Str(s)) => builder.push_text(&s),
        (_, Cell::Scalar(v)) => builder.push_json(&v),
        (_, Cell::Nested(text)) => match serde_json::from_str::<Value>(text) {
            Ok(v) => builder.push_json(&v),
            Err(e) => return Err(CellError::NotJson(e)),
        },
    };
    Ok(pushed?)
}

/// The value of one member's JSON text (already checked to be JSON by [`members`]).
pub(super) fn cell(raw: &str) -> Result<Cell<'_>, CellError> {
    match raw.as_bytes().first() {
        Some(b'{' | b'[') => Ok(Cell::Nested(raw)),
        Some(b'"') => {
            let inner = &raw[1..raw.len() - 1];
            if inner.bytes().all(|b| b != b'\\' && b >= 0x20) {
                Ok(Cell::Str(Cow::Borrowed(inner)))
            } else {
                serde_json::from_str::<String>(raw)
                    .map(|s| Cell::Str(Cow::Owned(s)))
                    .map_err(|source| CellError::NotAString {
                        value: quote(raw, VALUE_QUOTED),
                        source,
                    })
            }
        }
        _ => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Null) => Ok(Cell::Null),
            Ok(v) => Ok(Cell::Scalar(v)),
            Err(source) => Err(CellError::NotAValue {
                value: quote(raw, VALUE_QUOTED),
                source,
            }),
        },
    }
}

/// The kind of one member's JSON text (for the inference; unreadable text is TEXT, the row
/// is an error when read).
/// The fraction digits of a timestamp (0 for other kinds).
pub(super) fn raw_kind(raw: &str) -> (JsonKind, u32) {
    match cell(raw) {
        Ok(Cell::Null) => (JsonKind::Null, 0),
        Ok(Cell::Str(s)) => match JsonKind::of_str(&s) {
            JsonKind::Timestamp => (JsonKind::Timestamp, timestamp_digits(&s).unwrap_or(0)),
            kind => (kind, 0),
        },
        Ok(Cell::Scalar(v)) => (JsonKind::of(&v), 0),
        Ok(Cell::Nested(_)) => (JsonKind::Json, 0),
        Err(_) => (JsonKind::Text, 0),
    }
}

/// A timestamp's value in a TIMESTAMP column in `unit`, or why it does not fit: more
/// fraction digits than the unit holds (they would be lost), or out of its range.
fn timestamp_fit(t: &chrono::NaiveDateTime, unit: TimeUnit, raw: &str) -> Result<i64, CellError> {
    let digits = fraction_digits(t);
    if digits > unit_digits(unit) {
        return Err(CellError::FractionDigits {
            value: quote(raw, VALUE_QUOTED),
            digits,
            column_digits: unit_digits(unit),
        });
    }
    timestamp_in(t, unit).ok_or_else(|| CellError::TimestampRange {
        value: quote(raw, VALUE_QUOTED),
    })
}
