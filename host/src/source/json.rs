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

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit as ArrowTimeUnit};
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
    names: Vec<String>,
    index: HashMap<String, usize>,
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
        let column = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.index.insert(name.to_owned(), self.names.len());
                self.names.push(name.to_owned());
                self.names.len() - 1
            }
        };
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
        let mut grid: Vec<Vec<&Value>> = vec![vec![&Value::Null; rows]; self.names.len()];
        for (r, cells) in self.rows.into_iter().enumerate() {
            for (c, value) in cells {
                grid[c][r] = value;
            }
        }
        let mut fields = Vec::with_capacity(self.names.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.names.len());
        let mut schema = Vec::with_capacity(self.names.len());
        for (name, cells) in self.names.into_iter().zip(&grid) {
            let kind = cells.iter().fold(Kind::Null, |k, v| merge(k, kind_of(v)));
            let (array, data_type) = column(kind, cells);
            fields.push(Field::new(&name, data_type, true));
            arrays.push(array);
            schema.push(ColumnSchema {
                name,
                type_: ColumnType::Scalar(kind.scalar()),
                nullable: true,
            });
        }
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        Ok(JsonColumns { schema, batch })
    }
}

/// What a column's values are, widened over its rows by [`merge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Timestamp,
    Date,
    Text,
    Json,
}

impl Kind {
    fn scalar(self) -> ScalarType {
        match self {
            Kind::Bool => ScalarType::Boolean,
            Kind::Int => ScalarType::Integer,
            Kind::Float => ScalarType::Float,
            Kind::Timestamp => ScalarType::Timestamp(TimestampType {
                unit: TimeUnit::Micros,
                wall_clock: true,
            }),
            Kind::Date => ScalarType::Date,
            Kind::Json => ScalarType::Json,
            Kind::Null | Kind::Text => ScalarType::Text,
        }
    }
}

fn parse_timestamp(s: &str) -> Option<chrono::NaiveDateTime> {
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

fn kind_of(value: &Value) -> Kind {
    match value {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() => Kind::Int,
        Value::Number(_) => Kind::Float,
        Value::String(s) if parse_timestamp(s).is_some() => Kind::Timestamp,
        Value::String(s) if parse_date(s).is_some() => Kind::Date,
        Value::String(_) => Kind::Text,
        Value::Array(_) | Value::Object(_) => Kind::Json,
    }
}

fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Null, k) | (k, Kind::Null) => k,
        (a, b) if a == b => a,
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
        _ => Kind::Text,
    }
}

/// The Arrow array of one column's cells, of the type `kind` says.
fn column(kind: Kind, cells: &[&Value]) -> (ArrayRef, DataType) {
    match kind {
        Kind::Bool => (
            Arc::new(BooleanArray::from(
                cells.iter().map(|v| v.as_bool()).collect::<Vec<_>>(),
            )),
            DataType::Boolean,
        ),
        Kind::Int => (
            Arc::new(Int64Array::from(
                cells.iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
            )),
            DataType::Int64,
        ),
        Kind::Float => (
            Arc::new(Float64Array::from(
                cells.iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
            )),
            DataType::Float64,
        ),
        Kind::Timestamp => (
            Arc::new(TimestampMicrosecondArray::from(
                cells
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .and_then(parse_timestamp)
                            .map(|t| t.and_utc().timestamp_micros())
                    })
                    .collect::<Vec<_>>(),
            )),
            DataType::Timestamp(ArrowTimeUnit::Microsecond, None),
        ),
        Kind::Date => (
            Arc::new(Date32Array::from(
                cells
                    .iter()
                    .map(|v| {
                        v.as_str().and_then(parse_date).map(|d| {
                            (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
                                .num_days() as i32
                        })
                    })
                    .collect::<Vec<_>>(),
            )),
            DataType::Date32,
        ),
        Kind::Null | Kind::Text | Kind::Json => (
            Arc::new(StringArray::from_iter(cells.iter().map(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                other => Some(Cow::Owned(other.to_string())),
            }))),
            DataType::Utf8,
        ),
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use serde_json::json;

    use super::*;

    /// The columns of rows given as JSON objects (keys in serde_json's order).
    fn infer(rows: &[Value]) -> JsonColumns {
        let mut builder = JsonRows::with_capacity(rows.len());
        for row in rows {
            builder.start_row();
            for (name, value) in row.as_object().unwrap() {
                builder.cell(name, value);
            }
        }
        builder.finish().unwrap()
    }

    fn scalar(columns: &JsonColumns, name: &str) -> ScalarType {
        let column = columns.schema.iter().find(|c| c.name == name).unwrap();
        match column.type_ {
            ColumnType::Scalar(scalar) => scalar,
            ColumnType::List(_) => panic!("{name} is a list"),
        }
    }

    #[test]
    fn kinds_merge_to_the_widest() {
        assert_eq!(merge(Kind::Int, Kind::Float), Kind::Float);
        assert_eq!(merge(Kind::Null, Kind::Bool), Kind::Bool);
        assert_eq!(merge(Kind::Int, Kind::Text), Kind::Text);
        assert_eq!(merge(Kind::Date, Kind::Timestamp), Kind::Text);
        assert_eq!(merge(Kind::Json, Kind::Json), Kind::Json);
        assert_eq!(kind_of(&json!("2025-08-20")), Kind::Date);
        assert_eq!(kind_of(&json!("2025-08-20T03:14:07")), Kind::Timestamp);
        assert_eq!(kind_of(&json!("2025-08-20 03:14:07.250")), Kind::Timestamp);
        // A zone makes it text (the relay's rule: Snowflake sends TIMESTAMP_NTZ as such).
        assert_eq!(kind_of(&json!("2025-08-20T03:14:07Z")), Kind::Text);
        assert_eq!(kind_of(&json!(u64::MAX)), Kind::Float);
    }

    #[test]
    fn every_rule_over_rows() {
        let columns = infer(&[
            json!({"B": true, "I": 1, "F": 1, "T": "2024-05-01 00:00:00", "D": "2024-05-01",
                   "S": "x", "L": [1], "O": {"a": 1}, "N": null, "M": 1}),
            json!({"B": null, "I": 2, "F": 2.5, "T": "2024-05-02T01:02:03.5", "D": null,
                   "S": "y", "L": ["a"], "O": null, "N": null, "M": "one"}),
        ]);
        assert_eq!(scalar(&columns, "B"), ScalarType::Boolean);
        assert_eq!(scalar(&columns, "I"), ScalarType::Integer);
        assert_eq!(scalar(&columns, "F"), ScalarType::Float);
        assert!(matches!(
            scalar(&columns, "T"),
            ScalarType::Timestamp(TimestampType {
                unit: TimeUnit::Micros,
                wall_clock: true
            })
        ));
        assert_eq!(scalar(&columns, "D"), ScalarType::Date);
        assert_eq!(scalar(&columns, "S"), ScalarType::Text);
        assert_eq!(scalar(&columns, "L"), ScalarType::Json);
        assert_eq!(scalar(&columns, "O"), ScalarType::Json);
        assert_eq!(scalar(&columns, "N"), ScalarType::Text);
        assert_eq!(scalar(&columns, "M"), ScalarType::Text);
        assert!(columns.schema.iter().all(|c| c.nullable));

        let batch = &columns.batch;
        assert_eq!(batch.num_rows(), 2);
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let t = column("T");
        let t = t
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(t.value(0), 1_714_521_600_000_000);
        assert_eq!(t.value(1), 1_714_611_723_500_000);
        let d = column("D");
        let d = d.as_any().downcast_ref::<Date32Array>().unwrap();
        assert_eq!(d.value(0), 19_844);
        assert!(d.is_null(1));
        let m = column("M");
        let m = m.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((m.value(0), m.value(1)), ("1", "one"));
        let l = column("L");
        let l = l.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((l.value(0), l.value(1)), ("[1]", "[\"a\"]"));
        let f = column("F");
        let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!((f.value(0), f.value(1)), (1.0, 2.5));
        assert_eq!(column("N").null_count(), 2);
    }

    #[test]
    fn columns_in_order_of_first_appearance_missing_cells_null_later_cells_win() {
        let (a, b, c, late) = (json!(1), json!("b"), json!(true), json!(9));
        let mut builder = JsonRows::with_capacity(3);
        builder.start_row();
        builder.cell("Z", &a);
        builder.cell("Z", &late);
        builder.start_row();
        builder.cell("A", &b);
        builder.start_row();
        builder.cell("C", &c);
        let columns = builder.finish().unwrap();
        let names: Vec<&str> = columns.schema.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Z", "A", "C"]);
        let z = columns.batch.column(0);
        let z = z.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(z.value(0), 9);
        assert!(z.is_null(1) && z.is_null(2));
    }

    #[test]
    fn no_rows_and_empty_rows() {
        let columns = JsonRows::default().finish().unwrap();
        assert!(columns.schema.is_empty());
        assert_eq!(columns.batch.num_rows(), 0);
        let mut builder = JsonRows::default();
        builder.start_row();
        builder.start_row();
        let columns = builder.finish().unwrap();
        assert_eq!(columns.batch.num_rows(), 2);
    }
}
