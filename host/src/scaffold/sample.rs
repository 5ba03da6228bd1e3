//! The `sample.parquet` of a new plugin project: five rows laid out as a Snowflake unload of
//!
//! ```sql
//! CREATE TABLE CUSTOMERS (ID NUMBER(38,0), NAME VARCHAR, EMAIL VARCHAR,
//!                         UPDATED_AT TIMESTAMP_NTZ(3), IS_DELETED BOOLEAN);
//! ```
//!
//! (`NUMBER(38,0)` unloads as a 16-byte decimal, `TIMESTAMP_NTZ` as a wall-clock timestamp).
//! The rows cover what the example mapping must handle: a plain row, a row with no optional
//! values, a tombstone, and a null `ID` (a row error). `expected.ndjson` holds the records the
//! example makes of them.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Decimal128Array, RecordBatch, StringArray};
use arrow_array::{TimestampMillisecondArray, builder::Decimal128Builder};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;

/// One sample row: `ID, NAME, EMAIL, UPDATED_AT (ms since 1970, wall clock), IS_DELETED`.
type SampleRow = (
    Option<i128>,
    Option<&'static str>,
    Option<&'static str>,
    i64,
    Option<bool>,
);

/// The rows of `sample.parquet`, in file order.
pub const ROWS: [SampleRow; 5] = [
    // 2024-05-01T12:34:56.789
    (
        Some(1),
        Some("Ann Lee"),
        Some("  Ann.Lee@Example.COM "),
        1_714_566_896_789,
        Some(false),
    ),
    // 2024-05-02T08:15:00.000; IS_DELETED null: not deleted
    (
        Some(2),
        Some("Bo Chen"),
        Some("bo.chen@example.com"),
        1_714_637_700_000,
        None,
    ),
    // 2024-05-03T09:00:00.001; no name, no email: properties left out
    (Some(3), None, None, 1_714_726_800_001, Some(false)),
    // 2024-05-04T10:30:00.000; deleted: a tombstone
    (
        Some(4),
        Some("Cy Diaz"),
        Some("cy@example.com"),
        1_714_818_600_000,
        Some(true),
    ),
    // 2024-05-05T11:45:00.000; no ID: the example rejects the row
    (
        None,
        Some("No Id"),
        Some("no.id@example.com"),
        1_714_909_500_000,
        Some(false),
    ),
];

/// Why the sample could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// Writes [`ROWS`] to `path` as Parquet.
pub fn write_sample(path: &Path) -> Result<(), SampleError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ID", DataType::Decimal128(38, 0), true),
        Field::new("NAME", DataType::Utf8, true),
        Field::new("EMAIL", DataType::Utf8, true),
        Field::new(
            "UPDATED_AT",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new("IS_DELETED", DataType::Boolean, true),
    ]));
    let mut ids = Decimal128Builder::with_capacity(ROWS.len());
    for row in &ROWS {
        ids.append_option(row.0);
    }
    let ids: Decimal128Array = ids.finish().with_precision_and_scale(38, 0)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(StringArray::from_iter(ROWS.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter(ROWS.iter().map(|r| r.2))),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            ROWS.iter().map(|r| r.3),
        )),
        Arc::new(BooleanArray::from_iter(ROWS.iter().map(|r| r.4))),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    let file = File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, schema, None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}
