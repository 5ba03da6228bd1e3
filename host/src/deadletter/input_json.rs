//! Input rows as JSON, for dead letters: a person must be able to see what failed.
//!
//! A row is always a JSON object (column name → value, nulls explicit). Arrow can only
//! render timestamps whose time zone it can parse (offsets such as `+00:00`: named zones
//! need arrow's `chrono-tz` feature, not built here), yet Snowflake's TIMESTAMP_NTZ
//! encoding (INT64 `TIMESTAMP_MILLIS` without a logical type) reaches arrow as a timestamp
//! in zone `"UTC"`. Such columns are shown in UTC (`+00:00`): the stored values are UTC
//! instants, so the text is the same instant, ending in `Z`. A column that still cannot be rendered
//! becomes a string saying why, and the rest of the row is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::{Map, Value};

use crate::source::parquet::ReadOptions;
use crate::source::{Stage, StageFile};

/// How a timestamp in a zone arrow cannot parse is shown: the same instant in UTC.
const UTC_OFFSET: &str = "+00:00";

/// Row `row` of `batch` as a JSON object (nulls explicit). Never fails: a value that cannot
/// be rendered becomes a string saying so, and the other columns are kept.
pub fn row_json(batch: &RecordBatch, row: usize) -> Value {
    if row >= batch.num_rows() {
        return Value::Object(Map::new());
    }
    let slice = displayable(&batch.slice(row, 1));
    match render(&slice) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => by_column(&slice),
    }
}

/// Why arrow could not render a row (shown inside the row's JSON, never returned).
#[derive(Debug, thiserror::Error)]
enum RenderError {
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("arrow wrote JSON that does not parse: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no row rendered")]
    Empty,
}

/// The one row of `batch` as JSON, rendered by arrow.
fn render(batch: &RecordBatch) -> Result<Value, RenderError> {
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::JsonArray>(Vec::new());
    writer.write(batch).and_then(|()| writer.finish())?;
    let mut rows: Vec<Value> = serde_json::from_slice(&writer.into_inner())?;
    if rows.is_empty() {
        return Err(RenderError::Empty);
    }
    Ok(rows.swap_remove(0))
}

/// The one row of `batch` rendered column by column: a column arrow cannot render becomes
/// a string with the reason.
fn by_column(batch: &RecordBatch) -> Value {
    let schema = batch.schema();
    let mut map = Map::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let one = RecordBatch::try_new(
            Arc::new(Schema::new(vec![field.clone()])),
            vec![column.clone()],
        )
        .map_err(RenderError::from)
        .and_then(|b| render(&b));
        let value = match one {
            Ok(Value::Object(mut m)) => m.remove(field.name()).unwrap_or(Value::Null),
            Ok(_) => Value::Null,
            Err(e) => Value::String(format!("<value cannot be shown as JSON: {e}>")),
        };
        map.insert(field.name().clone(), value);
    }
    Value::Object(map)
}

/// Whether arrow can render timestamps of this type.
fn zone_unparseable(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(_, Some(tz))
        if tz.parse::<arrow_array::timezone::Tz>().is_err())
}

/// `batch` with every timestamp column in a zone arrow cannot parse relabelled to UTC (the
/// values, UTC instants, are unchanged).
fn displayable(batch: &RecordBatch) -> RecordBatch {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| zone_unparseable(f.data_type()))
    {
        return batch.clone();
    }
    let mut fields: Vec<Field> = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let column = match field.data_type() {
            DataType::Timestamp(unit, _) if zone_unparseable(field.data_type()) => {
                in_utc(column, *unit).unwrap_or_else(|| column.clone())
            }
            _ => column.clone(),
        };
        fields.push(
            field
                .as_ref()
                .clone()
                .with_data_type(column.data_type().clone()),
        );
        columns.push(column);
    }
    let relabelled = Schema::new_with_metadata(fields, schema.metadata().clone());
    RecordBatch::try_new(Arc::new(relabelled), columns).unwrap_or_else(|_| batch.clone())
}

/// A timestamp column with its zone set to UTC.
fn in_utc(column: &ArrayRef, unit: TimeUnit) -> Option<ArrayRef> {
    Some(match unit {
        TimeUnit::Second => Arc::new(
            column
                .as_primitive_opt::<TimestampSecondType>()?
                .clone()
                .with_timezone(UTC_OFFSET),
        ),
        TimeUnit::Millisecond => Arc::new(
            column
                .as_primitive_opt::<TimestampMillisecondType>()?
                .clone()
                .with_timezone(UTC_OFFSET),
        ),
        TimeUnit::Microsecond => Arc::new(
            column
                .as_primitive_opt::<TimestampMicrosecondType>()?
                .clone()
                .with_timezone(UTC_OFFSET),
        ),
        TimeUnit::Nanosecond => Arc::new(
            column
                .as_primitive_opt::<TimestampNanosecondType>()?
                .clone()
                .with_timezone(UTC_OFFSET),
        ),
    })
}

/// Reads the given rows (every column) of a stage file, in one pass.
pub fn read_rows(stage: &Stage, file: &StageFile, rows: &BTreeSet<u64>) -> BTreeMap<u64, Value> {
    let mut found = BTreeMap::new();
    let (Some(&first), Some(&last)) = (rows.first(), rows.last()) else {
        return found;
    };
    let Ok(source) = stage.open(file) else {
        return found;
    };
    let options = ReadOptions {
        start_row: first,
        ..ReadOptions::default()
    };
    let Ok(batches) = source.batches(&options) else {
        return found;
    };
    for batch in batches {
        let batch = match batch {
            Ok(batch) => batch,
            // A row the reader cannot read has no input to show; the rows after it do.
            Err(e) if e.is_row_error() => continue,
            Err(_) => break,
        };
        let end = batch.first_row + batch.batch.num_rows() as u64;
        for &row in rows.range(batch.first_row..end) {
            found.insert(
                row,
                row_json(&batch.batch, (row - batch.first_row) as usize),
            );
        }
        if end > last {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array, StringArray, TimestampMillisecondArray};

    fn batch(zone: Option<&str>) -> RecordBatch {
        let ts = TimestampMillisecondArray::from(vec![Some(1_714_564_800_123), None])
            .with_timezone_opt(zone);
        let schema = Schema::new(vec![
            Field::new("ID", DataType::Int64, false),
            Field::new("UPDATED_AT", ts.data_type().clone(), true),
            Field::new("NAME", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![7, 8])),
                Arc::new(ts),
                Arc::new(StringArray::from(vec![Some("Anna"), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_timestamp_in_a_named_utc_zone_is_shown_as_text() {
        // How arrow sees Snowflake's TIMESTAMP_NTZ (TIMESTAMP_MILLIS, no logical type).
        for zone in ["UTC", "Etc/UTC", "America/New_York"] {
            let row = row_json(&batch(Some(zone)), 0);
            assert_eq!(row["ID"], 7, "{zone}: {row}");
            assert_eq!(row["UPDATED_AT"], "2024-05-01T12:00:00.123Z", "{zone}");
            assert_eq!(row["NAME"], "Anna", "{zone}");
            let row = row_json(&batch(Some(zone)), 1);
            assert_eq!(row["UPDATED_AT"], Value::Null, "{zone}: {row}");
            assert_eq!(row["NAME"], Value::Null, "{zone}: {row}");
        }
    }

    #[test]
    fn offsets_and_zoneless_timestamps_render_as_before() {
        assert_eq!(
            row_json(&batch(Some("+02:00")), 0)["UPDATED_AT"],
            "2024-05-01T14:00:00.123+02:00"
        );
        assert_eq!(
            row_json(&batch(None), 0)["UPDATED_AT"],
            "2024-05-01T12:00:00.123"
        );
    }

    #[test]
    fn a_column_arrow_cannot_render_is_explained_and_the_rest_is_kept() {
        // A UTC timestamp inside a struct (not relabelled): arrow fails on that column.
        let inner = batch(Some("UTC"));
        let nested = arrow_array::StructArray::from(vec![(
            Arc::new(Field::new("AT", inner.column(1).data_type().clone(), true)),
            inner.column(1).clone(),
        )]);
        let schema = Schema::new(vec![
            Field::new("ID", DataType::Int64, false),
            Field::new("NESTED", nested.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![inner.column(0).clone(), Arc::new(nested)],
        )
        .unwrap();
        let row = row_json(&batch, 0);
        assert_eq!(row["ID"], 7, "{row}");
        let shown = row["NESTED"].as_str().unwrap_or_default();
        assert!(shown.starts_with("<value cannot be shown as JSON"), "{row}");
    }

    #[test]
    fn a_row_is_always_an_object() {
        assert!(row_json(&batch(Some("UTC")), 5).is_object());
        let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
        assert!(row_json(&empty, 0).is_object());
    }
}
