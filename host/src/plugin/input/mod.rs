//! Turns Arrow record batches into the plugin contract's columns.
//!
//! [`to_columns`] converts a [`RecordBatch`] whose columns the contract schema describes
//! (as [`crate::source::contract_schema`] made it) into one [`Column`] per column asked
//! for. Nothing is lost: decimals keep all 38 digits, timestamps their unit, text and
//! binary their bytes, `UInt64` becomes `decimal(20, 0)`.
//!
//! This runs for every row the host reads, so it copies buffers in bulk: a fixed-width
//! column is one `Vec` built from the Arrow values buffer, a variable-width column one copy
//! of its (sliced) data plus its rebased offsets, a null mask one byte per row expanded 64
//! bits at a time. No cell is allocated on its own. Fixed-width values are converted here,
//! variable-width ones (text, binary, lists) in `bytes`.

mod bytes;
#[cfg(test)]
mod tests;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type,
    Decimal256Type, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, PrimitiveArray, RecordBatch};
use arrow_buffer::{BooleanBuffer, NullBuffer};
use arrow_schema::{DataType, TimeUnit as ArrowTimeUnit};

use self::bytes::{byte_column, list_values};
use crate::bindings::types::{
    Column, ColumnData, ColumnSchema, ColumnType, Decimal, ScalarType, Values,
};

/// Milliseconds in a day, to turn Arrow `Date64` into days.
const MILLIS_PER_DAY: i64 = 86_400_000;

/// Why a batch could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ColumnsError {
    /// The schema does not describe as many columns as the batch has.
    #[error("the schema describes {schema} columns but the batch has {batch}")]
    ColumnCount {
        /// Columns in the schema.
        schema: usize,
        /// Columns in the batch.
        batch: usize,
    },
    /// A projection index points past the last column.
    #[error("column {index} does not exist (there are {columns} columns)")]
    NoSuchColumn {
        /// The index asked for.
        index: u32,
        /// Columns there are.
        columns: usize,
    },
    /// The Arrow array does not hold the contract type the schema gives the column.
    #[error("column `{column}`: the schema says {expected} but the data is {found}")]
    TypeMismatch {
        /// The column's name.
        column: String,
        /// The contract type from the schema.
        expected: String,
        /// The Arrow type of the data.
        found: DataType,
    },
    /// A value does not fit the contract (a 256-bit decimal beyond 128 bits, a date beyond
    /// ±5.8 million years).
    #[error("column `{column}`, batch row {row}: {reason}")]
    OutOfRange {
        /// The column's name.
        column: String,
        /// The row within the batch (or within the list items, for a list column).
        row: usize,
        /// What does not fit.
        reason: String,
    },
    /// A column's bytes exceed the 4 GiB a contract offset can address.
    #[error("column `{column}`: {bytes} bytes in one batch is more than a u32 offset can address")]
    TooLarge {
        /// The column's name.
        column: String,
        /// Bytes (or list items) in the batch.
        bytes: u64,
    },
}

/// Converts the columns of `batch` that `projection` names (all, in order, when `None`)
/// into contract columns; `schema[i]` describes `batch.column(i)`.
pub fn to_columns(
    batch: &RecordBatch,
    schema: &[ColumnSchema],
    projection: Option<&[u32]>,
) -> Result<Vec<Column>, ColumnsError> {
    if schema.len() != batch.num_columns() {
        return Err(ColumnsError::ColumnCount {
            schema: schema.len(),
            batch: batch.num_columns(),
        });
    }
    match projection {
        None => batch
            .columns()
            .iter()
            .zip(schema)
            .map(|(array, column)| to_column(array, column))
            .collect(),
        Some(indices) => indices
            .iter()
            .map(|&index| {
                let position = usize::try_from(index).unwrap_or(usize::MAX);
                match (batch.columns().get(position), schema.get(position)) {
                    (Some(array), Some(column)) => to_column(array, column),
                    _ => Err(ColumnsError::NoSuchColumn {
                        index,
                        columns: schema.len(),
                    }),
                }
            })
            .collect(),
    }
}

/// Converts one Arrow array into a contract column of the type `schema` gives it.
pub fn to_column(array: &ArrayRef, schema: &ColumnSchema) -> Result<Column, ColumnsError> {
    let nulls = null_bytes(array.as_ref());
    let data = match &schema.type_ {
        ColumnType::Scalar(scalar) => {
            ColumnData::Scalar(values(array.as_ref(), scalar, &schema.name)?)
        }
        ColumnType::List(item) => {
            ColumnData::List(list_values(array.as_ref(), item, &schema.name)?)
        }
    };
    Ok(Column { nulls, data })
}

/// One byte per row, non-zero = null; empty when no row is null.
pub fn null_bytes(array: &dyn Array) -> Vec<u8> {
    match array.nulls() {
        Some(nulls) if nulls.null_count() > 0 => expand_nulls(nulls),
        _ => Vec::new(),
    }
}

fn expand_nulls(nulls: &NullBuffer) -> Vec<u8> {
    let mut bytes = expand_bits(nulls.inner());
    for byte in &mut bytes {
        *byte ^= 1;
    }
    bytes
}

/// One byte (0 or 1) per bit, 64 bits at a time.
fn expand_bits(bits: &BooleanBuffer) -> Vec<u8> {
    let len = bits.len();
    let mut bytes = Vec::with_capacity(len + 64);
    for chunk in bits.bit_chunks().iter_padded() {
        bytes.extend((0..64).map(|bit| ((chunk >> bit) & 1) as u8));
    }
    bytes.truncate(len);
    bytes
}

fn mismatch(column: &str, expected: &ScalarType, found: &DataType) -> ColumnsError {
    ColumnsError::TypeMismatch {
        column: column.to_owned(),
        expected: expected.to_string(),
        found: found.clone(),
    }
}

/// The contract's name of a scalar type, for messages (its `Display`, in
/// `plugin::contract::names`).
pub fn scalar_name(scalar: &ScalarType) -> String {
    scalar.to_string()
}

/// The values of a scalar array (one slot per row, nulls included).
fn values(array: &dyn Array, scalar: &ScalarType, column: &str) -> Result<Values, ColumnsError> {
    let data_type = array.data_type();
    let wrong = || mismatch(column, scalar, data_type);
    Ok(match (scalar, data_type) {
        (ScalarType::Boolean, DataType::Boolean) => {
            let booleans = array.as_boolean_opt().ok_or_else(wrong)?;
            Values::Boolean(expand_bits(booleans.values()))
        }
        (ScalarType::Integer, DataType::Int64) => Values::Integer(
            primitive::<Int64Type>(array)
                .ok_or_else(wrong)?
                .values()
                .to_vec(),
        ),
        (ScalarType::Integer, DataType::Int32) => {
            Values::Integer(widen::<Int32Type>(array).ok_or_else(wrong)?)
        }
        (ScalarType::Integer, DataType::Int16) => {
            Values::Integer(widen::<Int16Type>(array).ok_or_else(wrong)?)
        }
        (ScalarType::Integer, DataType::Int8) => {
            Values::Integer(widen::<Int8Type>(array).ok_or_else(wrong)?)
        }
        (ScalarType::Integer, DataType::UInt32) => {
            Values::Integer(widen::<UInt32Type>(array).ok_or_else(wrong)?)
        }
        (ScalarType::Integer, DataType::UInt16) => {
            Values::Integer(widen::<UInt16Type>(array).ok_or_else(wrong)?)
        }
        (ScalarType::Integer, DataType::UInt8) => {
            Values::Integer(widen::<UInt8Type>(array).ok_or_else(wrong)?)
        }
        (ScalarType::Float, DataType::Float64) => Values::Float(
            primitive::<Float64Type>(array)
                .ok_or_else(wrong)?
                .values()
                .to_vec(),
        ),
        (ScalarType::Float, DataType::Float32) => Values::Float(
            primitive::<Float32Type>(array)
                .ok_or_else(wrong)?
                .values()
                .iter()
                .map(|&value| f64::from(value))
                .collect(),
        ),
        (ScalarType::Float, DataType::Float16) => Values::Float(
            primitive::<Float16Type>(array)
                .ok_or_else(wrong)?
                .values()
                .iter()
                .map(|value| value.to_f64())
                .collect(),
        ),
        (ScalarType::Decimal((_, scale)), DataType::UInt64) if *scale == 0 => Values::Decimal(
            primitive::<UInt64Type>(array)
                .ok_or_else(wrong)?
                .values()
                .iter()
                .map(|&value| Decimal {
                    lo: value,
                    hi: 0,
                    scale: 0,
                })
                .collect(),
        ),
        (ScalarType::Decimal((_, scale)), DataType::Decimal128(_, array_scale))
            if scale == array_scale =>
        {
            Values::Decimal(decimals(
                primitive::<Decimal128Type>(array).ok_or_else(wrong)?,
                *scale,
                |v| v,
            ))
        }
        (ScalarType::Decimal((_, scale)), DataType::Decimal64(_, array_scale))
            if scale == array_scale =>
        {
            Values::Decimal(decimals(
                primitive::<Decimal64Type>(array).ok_or_else(wrong)?,
                *scale,
                i128::from,
            ))
        }
        (ScalarType::Decimal((_, scale)), DataType::Decimal32(_, array_scale))
            if scale == array_scale =>
        {
            Values::Decimal(decimals(
                primitive::<Decimal32Type>(array).ok_or_else(wrong)?,
                *scale,
                i128::from,
            ))
        }
        (ScalarType::Decimal((_, scale)), DataType::Decimal256(_, array_scale))
            if scale == array_scale =>
        {
            let array = primitive::<Decimal256Type>(array).ok_or_else(wrong)?;
            let mut out = Vec::with_capacity(array.len());
            for (row, value) in array.values().iter().enumerate() {
                let value = match value.to_i128() {
                    Some(value) => value,
                    None if array.is_null(row) => 0,
                    None => {
                        return Err(ColumnsError::OutOfRange {
                            column: column.to_owned(),
                            row,
                            reason: format!("decimal {value} does not fit in 128 bits"),
                        });
                    }
                };
                out.push(decimal(value, *scale));
            }
            Values::Decimal(out)
        }
        (ScalarType::Text, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
            Values::Text(byte_column(array, column).ok_or_else(wrong)??)
        }
        (ScalarType::Json, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
            Values::Json(byte_column(array, column).ok_or_else(wrong)??)
        }
        (
            ScalarType::Binary,
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_),
        ) => Values::Binary(byte_column(array, column).ok_or_else(wrong)??),
        (ScalarType::Date, DataType::Date32) => Values::Date(
            primitive::<Date32Type>(array)
                .ok_or_else(wrong)?
                .values()
                .to_vec(),
        ),
        (ScalarType::Date, DataType::Date64) => {
            let array = primitive::<Date64Type>(array).ok_or_else(wrong)?;
            let mut days = Vec::with_capacity(array.len());
            for (row, &millis) in array.values().iter().enumerate() {
                let day = i32::try_from(millis.div_euclid(MILLIS_PER_DAY));
                match day {
                    Ok(day) => days.push(day),
                    Err(_) if array.is_null(row) => days.push(0),
                    Err(_) => {
                        return Err(ColumnsError::OutOfRange {
                            column: column.to_owned(),
                            row,
                            reason: format!("date of {millis} ms is beyond 2^31 days"),
                        });
                    }
                }
            }
            Values::Date(days)
        }
        (ScalarType::Timestamp(timestamp), DataType::Timestamp(unit, _))
            if crate::source::parquet::time_unit(*unit) == timestamp.unit =>
        {
            let values = match unit {
                ArrowTimeUnit::Second => {
                    primitive::<TimestampSecondType>(array).map(|a| a.values().to_vec())
                }
                ArrowTimeUnit::Millisecond => {
                    primitive::<TimestampMillisecondType>(array).map(|a| a.values().to_vec())
                }
                ArrowTimeUnit::Microsecond => {
                    primitive::<TimestampMicrosecondType>(array).map(|a| a.values().to_vec())
                }
                ArrowTimeUnit::Nanosecond => {
                    primitive::<TimestampNanosecondType>(array).map(|a| a.values().to_vec())
                }
            };
            Values::Timestamp(values.ok_or_else(wrong)?)
        }
        _ => return Err(wrong()),
    })
}

fn primitive<T: ArrowPrimitiveType>(array: &dyn Array) -> Option<&PrimitiveArray<T>> {
    array.as_primitive_opt::<T>()
}

/// An integer column widened to `s64` (vectorised: one pass over the values buffer).
fn widen<T>(array: &dyn Array) -> Option<Vec<i64>>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    let array = array.as_primitive_opt::<T>()?;
    Some(array.values().iter().map(|&value| value.into()).collect())
}

fn decimals<T: ArrowPrimitiveType>(
    array: &PrimitiveArray<T>,
    scale: i8,
    widen: impl Fn(T::Native) -> i128,
) -> Vec<Decimal> {
    array
        .values()
        .iter()
        .map(|&value| decimal(widen(value), scale))
        .collect()
}

/// The contract's two-word form of a 128-bit decimal.
fn decimal(value: i128, scale: i8) -> Decimal {
    Decimal {
        lo: value as u64,
        hi: (value >> 64) as i64,
        scale,
    }
}
