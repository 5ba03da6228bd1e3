//! Snowflake's rows (`{"data": [[row_number, args…], …]}`) as the columns of one Arrow
//! batch, with types inferred per column over the request.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit as ArrowTimeUnit};
use serde_json::{Map, Value};

use crate::bindings::types::{ColumnSchema, ColumnType, ScalarType, TimeUnit, TimestampType};

/// One input row: Snowflake's row number and the row's columns.
#[derive(Debug)]
pub(super) struct InputRow {
    pub(super) number: Value,
    pub(super) args: Vec<Value>,
}

/// Parses `{"data": [[row_number, args…], …]}`.
pub(super) fn parse_rows(body: &[u8]) -> Result<Vec<InputRow>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Some(Value::Array(data)) = value.get("data") else {
        return Err(r#"the body must be {"data": [[row_number, args…], …]}"#.into());
    };
    data.iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Array(cells) if cells.first().is_some_and(Value::is_number) => Ok(InputRow {
                number: cells[0].clone(),
                args: cells[1..].to_vec(),
            }),
            _ => Err(format!(
                "data[{i}] is not [row_number, args…] with a numeric row number"
            )),
        })
        .collect()
}

/// The columns of the request's rows, with inferred types.
pub(super) struct Columns {
    pub(super) schema: Vec<ColumnSchema>,
    pub(super) batch: RecordBatch,
    /// Each row as a JSON object of its columns (dead letters).
    pub(super) inputs: Vec<Value>,
}

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

/// Builds the batch: OBJECT arguments' keys and positional `ARG<i>` columns, types inferred.
pub(super) fn columns(rows: &[InputRow]) -> Result<Columns, String> {
    let width = rows.iter().map(|r| r.args.len()).max().unwrap_or(0);
    let object_arg: Vec<bool> = (0..width)
        .map(|i| {
            rows.iter()
                .any(|r| r.args.get(i).is_some_and(Value::is_object))
        })
        .collect();
    let mut names: Vec<String> = Vec::new();
    let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut inputs = Vec::with_capacity(rows.len());
    for row in rows {
        let mut object = Map::new();
        // Columns in argument order (an OBJECT's keys as parsed), new names last.
        let mut seen = |name: &String| {
            if known.insert(name.clone()) {
                names.push(name.clone());
            }
        };
        for (i, arg) in row.args.iter().enumerate() {
            if object_arg[i] {
                if let Value::Object(fields) = arg {
                    for (k, v) in fields {
                        seen(k);
                        object.insert(k.clone(), v.clone());
                    }
                }
            } else {
                let name = format!("ARG{i}");
                seen(&name);
                object.insert(name, arg.clone());
            }
        }
        inputs.push(Value::Object(object));
    }
    let mut fields = Vec::with_capacity(names.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(names.len());
    let mut schema = Vec::with_capacity(names.len());
    for name in &names {
        let cells: Vec<&Value> = inputs
            .iter()
            .map(|o| o.get(name).unwrap_or(&Value::Null))
            .collect();
        let kind = cells.iter().fold(Kind::Null, |k, v| merge(k, kind_of(v)));
        let (array, data_type, scalar): (ArrayRef, DataType, ScalarType) = match kind {
            Kind::Bool => (
                Arc::new(BooleanArray::from(
                    cells.iter().map(|v| v.as_bool()).collect::<Vec<_>>(),
                )),
                DataType::Boolean,
                ScalarType::Boolean,
            ),
            Kind::Int => (
                Arc::new(Int64Array::from(
                    cells.iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
                )),
                DataType::Int64,
                ScalarType::Integer,
            ),
            Kind::Float => (
                Arc::new(Float64Array::from(
                    cells.iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
                )),
                DataType::Float64,
                ScalarType::Float,
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
                ScalarType::Timestamp(TimestampType {
                    unit: TimeUnit::Micros,
                    wall_clock: true,
                }),
            ),
            Kind::Date => (
                Arc::new(Date32Array::from(
                    cells
                        .iter()
                        .map(|v| {
                            v.as_str().and_then(parse_date).map(|d| {
                                (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                                    .unwrap_or_default())
                                .num_days() as i32
                            })
                        })
                        .collect::<Vec<_>>(),
                )),
                DataType::Date32,
                ScalarType::Date,
            ),
            Kind::Null | Kind::Text | Kind::Json => (
                Arc::new(StringArray::from(
                    cells
                        .iter()
                        .map(|v| match v {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                        .collect::<Vec<_>>(),
                )),
                DataType::Utf8,
                if kind == Kind::Json {
                    ScalarType::Json
                } else {
                    ScalarType::Text
                },
            ),
        };
        fields.push(Field::new(name, data_type, true));
        arrays.push(array);
        schema.push(ColumnSchema {
            name: name.clone(),
            type_: ColumnType::Scalar(scalar),
            nullable: true,
        });
    }
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|e| format!("cannot build the batch: {e}"))?;
    Ok(Columns {
        schema,
        batch,
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rows(value: Value) -> Vec<InputRow> {
        parse_rows(json!({ "data": value }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn objects_become_columns_and_positional_args_are_numbered() {
        let rows = rows(json!([
            [0, "CUST-1", {"NAME": "Acme", "N": 1}, "2025-08-20 03:14:07.000"],
            [1, "CUST-2", null, "2025-08-20 03:15:11.250"],
            [2, null, {"NAME": "Globex", "N": 2.5, "TAGS": ["a"]}, null],
        ]));
        let cols = columns(&rows).unwrap();
        let described: Vec<(String, String)> = cols
            .schema
            .iter()
            .map(|c| (c.name.clone(), format!("{:?}", c.type_)))
            .collect();
        let names: Vec<&str> = described.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ARG0", "N", "NAME", "ARG2", "TAGS"]);
        assert!(described[0].1.contains("Text"), "{described:?}");
        assert!(described[1].1.contains("Float"), "{described:?}");
        assert!(described[3].1.contains("Timestamp"), "{described:?}");
        assert!(described[4].1.contains("Json"), "{described:?}");
        assert_eq!(cols.batch.num_rows(), 3);
        assert_eq!(cols.inputs[1]["ARG0"], "CUST-2");
    }

    #[test]
    fn kinds_merge_to_the_widest() {
        assert_eq!(merge(Kind::Int, Kind::Float), Kind::Float);
        assert_eq!(merge(Kind::Null, Kind::Bool), Kind::Bool);
        assert_eq!(merge(Kind::Int, Kind::Text), Kind::Text);
        assert_eq!(merge(Kind::Date, Kind::Timestamp), Kind::Text);
        assert_eq!(kind_of(&json!("2025-08-20")), Kind::Date);
        assert_eq!(kind_of(&json!("2025-08-20T03:14:07")), Kind::Timestamp);
    }

    #[test]
    fn bad_bodies_are_refused() {
        assert!(parse_rows(b"not json").is_err());
        assert!(parse_rows(br#"{"rows": []}"#).is_err());
        assert!(parse_rows(br#"{"data": [["x", 1]]}"#).is_err());
        assert!(parse_rows(br#"{"data": []}"#).unwrap().is_empty());
    }
}
