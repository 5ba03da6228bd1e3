//! JSON rows → the contract's column schema and one Arrow batch: the one inference of
//! column types from JSON values, used by the relay (Snowflake External Function rows,
//! production) and by `plugin test --json-input` (the workbench), so the same rows get
//! the same schema in both.
//!
//! The rules, per column over all rows (a missing or `null` cell says nothing):
//! - booleans → BOOLEAN; integers (that fit an i64) → INTEGER; other numbers, or integers
//!   mixed with them → FLOAT;
//! - text that is a timestamp without a zone (`2024-05-01 12:34:56.789` or with `T`) in
//!   every row → wall-clock TIMESTAMP (microseconds); text that is a date (`2024-05-01`)
//!   in every row → DATE;
//! - arrays and objects → JSON (their JSON text);
//! - any other text, any mix of the above, or no value at all → TEXT (a non-text value in
//!   a TEXT column is its JSON text).
//!
//! Columns are in the order their names first appear; a later cell of the same name in a
//! row wins.
//!
//! [`Inference`] runs the rules over a stream of rows without keeping them (a JSON stage's
//! first rows, [`crate::source::text::json`]); [`JsonRows`] keeps the rows and builds their
//! batch; both type a column with [`JsonKind`] and build it with [`JsonColumnBuilder`].

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit as ArrowTimeUnit};
use chrono::Timelike as _;
use serde_json::Value;

use crate::bindings::types::{ColumnSchema, ColumnType, ScalarType, TimeUnit, TimestampType};

/// Rows as the plugin contract's columns.
#[derive(Debug)]
pub struct JsonColumns {
    /// The contract schema (every column nullable).
    pub schema: Vec<ColumnSchema>,
    /// Every row, one Arrow column per schema column.
    pub batch: RecordBatch,
}

/// Why JSON rows could not become a batch.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("cannot build the batch: {0}")]
    Batch(#[from] ArrowError),
}

/// Collects rows cell by cell (borrowing the values: nothing is copied until
/// [`JsonRows::finish`] builds the arrays).
#[derive(Default)]
pub struct JsonRows<'a> {
    /// Column names in order of first appearance.
    columns: Inference,
    /// Per row, its cells as (column, value).
    rows: Vec<Vec<(usize, &'a Value)>>,
}

impl<'a> JsonRows<'a> {
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            rows: Vec::with_capacity(rows),
            ..Self::default()
        }
    }

    /// Starts the next row (a row without cells is a row of nulls).
    pub fn start_row(&mut self) {
        self.rows.push(Vec::new());
    }

    /// Adds a cell to the current row (starting one if there is none).
    pub fn cell(&mut self, name: &str, value: &'a Value) {
        let column = self.columns.column(name);
        if self.rows.is_empty() {
            self.start_row();
        }
        if let Some(row) = self.rows.last_mut() {
            row.push((column, value));
        }
    }

    /// The rows' columns, types inferred (see the module's rules).
    pub fn finish(self) -> Result<JsonColumns, JsonError> {
        let rows = self.rows.len();
        let mut columns = self.columns;
        let mut grid: Vec<Vec<&Value>> = vec![vec![&Value::Null; rows]; columns.len()];
        for (r, cells) in self.rows.into_iter().enumerate() {
            for (c, value) in cells {
                grid[c][r] = value;
            }
        }
        // The cells a row kept (a later cell of the same name wins) say the column's type.
        for (c, cells) in grid.iter().enumerate() {
            for value in cells {
                columns.observe(c, JsonKind::of(value));
            }
        }
        let mut fields = Vec::with_capacity(columns.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
        for ((name, &kind), cells) in columns.names().iter().zip(columns.kinds()).zip(&grid) {
            let mut builder = JsonColumnBuilder::new(kind, rows);
            for value in cells {
                builder.append(value);
            }
            fields.push(Field::new(name, kind.data_type(), true));
            arrays.push(builder.finish());
        }
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        Ok(JsonColumns {
            schema: columns.schema(),
            batch,
        })
    }
}

/// The inference over a stream of rows: the columns' names in order of first appearance
/// and each one's [`JsonKind`], widened by every value observed. Keeps no values, so it can
/// run over any number of rows (a JSON stage's first `infer_rows` rows).
#[derive(Debug, Default, Clone)]
pub struct Inference {
    names: Vec<String>,
    index: HashMap<String, usize>,
    kinds: Vec<JsonKind>,
}

impl Inference {
    /// The column of `name`, added after the others if it is new.
    pub fn column(&mut self, name: &str) -> usize {
        match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.index.insert(name.to_owned(), self.names.len());
                self.names.push(name.to_owned());
                self.kinds.push(JsonKind::Null);
                self.names.len() - 1
            }
        }
    }

    /// The column of `name`, if there is one.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Widens `column`'s kind by a value of kind `kind` (a row's final cell of that name;
    /// a missing cell is [`JsonKind::Null`] and says nothing).
    pub fn observe(&mut self, column: usize, kind: JsonKind) {
        if let Some(k) = self.kinds.get_mut(column) {
            *k = k.merge(kind);
        }
    }

    /// How many columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// No column at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, in order of first appearance.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Each column's kind so far.
    pub fn kinds(&self) -> &[JsonKind] {
        &self.kinds
    }

    /// The contract schema of the columns (every one nullable).
    pub fn schema(&self) -> Vec<ColumnSchema> {
        self.names
            .iter()
            .zip(&self.kinds)
            .map(|(name, kind)| ColumnSchema {
                name: name.clone(),
                type_: ColumnType::Scalar(kind.scalar()),
                nullable: true,
            })
            .collect()
    }
}

/// What a column's values are, widened over its rows by [`JsonKind::merge`]. A column
/// whose every value was null ([`JsonKind::Null`]) is TEXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Null,
    Bool,
    Int,
    Float,
    Timestamp,
    Date,
    Text,
    Json,
}

impl JsonKind {
    /// The kind of one value.
    pub fn of(value: &Value) -> JsonKind {
        match value {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Bool,
            Value::Number(n) if n.is_i64() => JsonKind::Int,
            Value::Number(_) => JsonKind::Float,
            Value::String(s) => JsonKind::of_str(s),
            Value::Array(_) | Value::Object(_) => JsonKind::Json,
        }
    }

    /// The kind of a JSON string's text.
    pub fn of_str(s: &str) -> JsonKind {
        if parse_timestamp(s).is_some() {
            JsonKind::Timestamp
        } else if parse_date(s).is_some() {
            JsonKind::Date
        } else {
            JsonKind::Text
        }
    }

    /// The kind of a column holding values of both kinds.
    pub fn merge(self, other: JsonKind) -> JsonKind {
        match (self, other) {
            (JsonKind::Null, k) | (k, JsonKind::Null) => k,
            (a, b) if a == b => a,
            (JsonKind::Int, JsonKind::Float) | (JsonKind::Float, JsonKind::Int) => JsonKind::Float,
            _ => JsonKind::Text,
        }
    }

    /// Whether a value of kind `value` goes into a column of this kind as it is (the column
    /// would not widen): nulls go anywhere, anything into TEXT (a non-text value as its JSON
    /// text), an integer into FLOAT.
    pub fn takes(self, value: JsonKind) -> bool {
        let column = match self {
            JsonKind::Null => JsonKind::Text,
            k => k,
        };
        value == JsonKind::Null || column == JsonKind::Text || column.merge(value) == column
    }

    /// The contract type of the column.
    pub fn scalar(self) -> ScalarType {
        match self {
            JsonKind::Bool => ScalarType::Boolean,
            JsonKind::Int => ScalarType::Integer,
            JsonKind::Float => ScalarType::Float,
            JsonKind::Timestamp => ScalarType::Timestamp(TimestampType {
                unit: TimeUnit::Micros,
                wall_clock: true,
            }),
            JsonKind::Date => ScalarType::Date,
            JsonKind::Json => ScalarType::Json,
            JsonKind::Null | JsonKind::Text => ScalarType::Text,
        }
    }

    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            JsonKind::Bool => DataType::Boolean,
            JsonKind::Int => DataType::Int64,
            JsonKind::Float => DataType::Float64,
            JsonKind::Timestamp => DataType::Timestamp(ArrowTimeUnit::Microsecond, None),
            JsonKind::Date => DataType::Date32,
            JsonKind::Null | JsonKind::Text | JsonKind::Json => DataType::Utf8,
        }
    }

    /// The kind's name in messages (`INTEGER`, `TIMESTAMP`, …: the contract's).
    pub fn name(self) -> &'static str {
        match self {
            JsonKind::Bool => "BOOLEAN",
            JsonKind::Int => "INTEGER",
            JsonKind::Float => "FLOAT",
            JsonKind::Timestamp => "TIMESTAMP (wall-clock)",
            JsonKind::Date => "DATE",
            JsonKind::Json => "JSON (an object or array)",
            JsonKind::Null | JsonKind::Text => "TEXT",
        }
    }
}

/// The fraction digits a wall-clock timestamp's text needs (0 to 9; trailing zeros do not
/// count: `12:34:56.789000` needs 3), if it is one.
pub fn timestamp_digits(s: &str) -> Option<u32> {
    parse_timestamp(s).map(|t| fraction_digits(&t))
}

/// The fraction digits a timestamp needs (0 to 9; trailing zeros do not count).
pub fn fraction_digits(t: &chrono::NaiveDateTime) -> u32 {
    let mut nanos = t.nanosecond() % 1_000_000_000;
    let mut digits = 9;
    while digits > 0 && nanos.is_multiple_of(10) {
        nanos /= 10;
        digits -= 1;
    }
    digits
}

/// The timestamp unit that holds `digits` fraction digits exactly (milliseconds at least).
pub fn unit_for_digits(digits: u32) -> TimeUnit {
    match digits {
        0..=3 => TimeUnit::Millis,
        4..=6 => TimeUnit::Micros,
        _ => TimeUnit::Nanos,
    }
}

/// How many fraction digits `unit` holds.
pub fn unit_digits(unit: TimeUnit) -> u32 {
    match unit {
        TimeUnit::Seconds => 0,
        TimeUnit::Millis => 3,
        TimeUnit::Micros => 6,
        TimeUnit::Nanos => 9,
    }
}

/// A wall-clock timestamp's text in `unit`s since 1970 (digits below the unit dropped),
/// if it is one and the unit can hold it (nanoseconds: years 1677 to 2262).
pub fn timestamp_value(s: &str, unit: TimeUnit) -> Option<i64> {
    parse_timestamp(s).and_then(|t| timestamp_in(&t, unit))
}

/// A wall-clock timestamp in `unit`s since 1970 (digits below the unit dropped), if the
/// unit can hold it.
pub fn timestamp_in(t: &chrono::NaiveDateTime, unit: TimeUnit) -> Option<i64> {
    let t = t.and_utc();
    match unit {
        TimeUnit::Seconds => Some(t.timestamp()),
        TimeUnit::Millis => Some(t.timestamp_millis()),
        TimeUnit::Micros => Some(t.timestamp_micros()),
        TimeUnit::Nanos => t.timestamp_nanos_opt(),
    }
}

/// A wall-clock timestamp's text (`2024-05-01 12:34:56.789`, or with `T`), if it is one.
pub fn parse_timestamp(s: &str) -> Option<chrono::NaiveDateTime> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
}

fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Builds one column of a [`JsonKind`] from values, row by row. A value the kind does not
/// take ([`JsonKind::takes`]) is appended as null: callers that must not lose it check first.
pub struct JsonColumnBuilder {
    inner: ColumnValues,
}

enum ColumnValues {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    /// Values in the unit (read as the timestamp type when finished).
    Timestamp(Int64Builder, TimeUnit),
    Date(Date32Builder),
    Text(StringBuilder),
}

impl JsonColumnBuilder {
    /// A builder for a column of `kind`, with room for `rows` values.
    pub fn new(kind: JsonKind, rows: usize) -> JsonColumnBuilder {
        let inner = match kind {
            JsonKind::Bool => ColumnValues::Bool(BooleanBuilder::with_capacity(rows)),
            JsonKind::Int => ColumnValues::Int(Int64Builder::with_capacity(rows)),
            JsonKind::Float => ColumnValues::Float(Float64Builder::with_capacity(rows)),
            JsonKind::Timestamp => {
                ColumnValues::Timestamp(Int64Builder::with_capacity(rows), TimeUnit::Micros)
            }
            JsonKind::Date => ColumnValues::Date(Date32Builder::with_capacity(rows)),
            JsonKind::Null | JsonKind::Text | JsonKind::Json => {
                ColumnValues::Text(StringBuilder::with_capacity(rows, rows * 16))
            }
        };
        JsonColumnBuilder { inner }
    }

    /// A builder for a TIMESTAMP column in `unit` (a [`JsonKind::Timestamp`] column is in
    /// microseconds).
    pub fn timestamp(unit: TimeUnit, rows: usize) -> JsonColumnBuilder {
        JsonColumnBuilder {
            inner: ColumnValues::Timestamp(Int64Builder::with_capacity(rows), unit),
        }
    }

    /// Appends a value (a non-text value in a TEXT or JSON column: its JSON text).
    pub fn append(&mut self, value: &Value) {
        match &mut self.inner {
            ColumnValues::Bool(b) => b.append_option(value.as_bool()),
            ColumnValues::Int(b) => b.append_option(value.as_i64()),
            ColumnValues::Float(b) => b.append_option(value.as_f64()),
            ColumnValues::Timestamp(b, unit) => {
                b.append_option(value.as_str().and_then(|s| timestamp_value(s, *unit)))
            }
            ColumnValues::Date(b) => b.append_option(value.as_str().and_then(date_days)),
            ColumnValues::Text(b) => match value {
                Value::Null => b.append_null(),
                Value::String(s) => b.append_value(s),
                other => b.append_value(other.to_string()),
            },
        }
    }

    /// Appends a string value given as its text (for a TIMESTAMP or DATE column, parsed).
    pub fn append_str(&mut self, text: &str) {
        match &mut self.inner {
            ColumnValues::Text(b) => b.append_value(text),
            ColumnValues::Timestamp(b, unit) => b.append_option(timestamp_value(text, *unit)),
            ColumnValues::Date(b) => b.append_option(date_days(text)),
            _ => self.append_null(),
        }
    }

    /// Appends a TIMESTAMP column's value, in its unit (other columns: null).
    pub fn append_timestamp(&mut self, value: i64) {
        match &mut self.inner {
            ColumnValues::Timestamp(b, _) => b.append_value(value),
            _ => self.append_null(),
        }
    }

    /// Appends the JSON text of a value as it is (a TEXT or JSON column; others: null).
    pub fn append_json_text(&mut self, text: &str) {
        match &mut self.inner {
            ColumnValues::Text(b) => b.append_value(text),
            _ => self.append_null(),
        }
    }

    /// Appends a null.
    pub fn append_null(&mut self) {
        match &mut self.inner {
            ColumnValues::Bool(b) => b.append_null(),
            ColumnValues::Int(b) => b.append_null(),
            ColumnValues::Float(b) => b.append_null(),
            ColumnValues::Timestamp(b, _) => b.append_null(),
            ColumnValues::Date(b) => b.append_null(),
            ColumnValues::Text(b) => b.append_null(),
        }
    }

    /// The column (the builder starts over, empty).
    pub fn finish(&mut self) -> ArrayRef {
        match &mut self.inner {
            ColumnValues::Bool(b) => Arc::new(b.finish()),
            ColumnValues::Int(b) => Arc::new(b.finish()),
            ColumnValues::Float(b) => Arc::new(b.finish()),
            ColumnValues::Timestamp(b, unit) => {
                let values = b.finish();
                match unit {
                    TimeUnit::Seconds => Arc::new(values.reinterpret_cast::<TimestampSecondType>()),
                    TimeUnit::Millis => {
                        Arc::new(values.reinterpret_cast::<TimestampMillisecondType>())
                    }
                    TimeUnit::Micros => {
                        Arc::new(values.reinterpret_cast::<TimestampMicrosecondType>())
                    }
                    TimeUnit::Nanos => {
                        Arc::new(values.reinterpret_cast::<TimestampNanosecondType>())
                    }
                }
            }
            ColumnValues::Date(b) => Arc::new(b.finish()),
            ColumnValues::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn date_days(s: &str) -> Option<i32> {
    parse_date(s).map(|d| {
        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
    })
}

#[cfg(test)]
mod tests;
