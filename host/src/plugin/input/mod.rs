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
//! bits at a time. No cell is allocated on its own.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, ByteViewType, Date32Type, Date64Type, Decimal32Type, Decimal64Type,
    Decimal128Type, Decimal256Type, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, GenericByteViewArray, OffsetSizeTrait, PrimitiveArray, RecordBatch,
};
use arrow_buffer::{BooleanBuffer, NullBuffer};
use arrow_schema::{DataType, TimeUnit as ArrowTimeUnit};

use crate::bindings::types::{
    ByteColumn, Column, ColumnData, ColumnSchema, ColumnType, Decimal, ListValues, ScalarType,
    TimeUnit, Values,
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
        expected: scalar_name(expected),
        found: found.clone(),
    }
}

/// The contract's name of a scalar type, for messages.
pub fn scalar_name(scalar: &ScalarType) -> String {
    match scalar {
        ScalarType::Boolean => "boolean".into(),
        ScalarType::Integer => "integer".into(),
        ScalarType::Float => "float".into(),
        ScalarType::Decimal((precision, scale)) => format!("decimal({precision}, {scale})"),
        ScalarType::Text => "text".into(),
        ScalarType::Json => "json".into(),
        ScalarType::Date => "date".into(),
        ScalarType::Timestamp(timestamp) => format!(
            "timestamp({}{})",
            unit_name(timestamp.unit),
            if timestamp.wall_clock {
                ", wall-clock"
            } else {
                ""
            }
        ),
        ScalarType::Binary => "binary".into(),
    }
}

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Seconds => "seconds",
        TimeUnit::Millis => "millis",
        TimeUnit::Micros => "micros",
        TimeUnit::Nanos => "nanos",
    }
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

/// The bytes of a text or binary array, offsets rebased to 0. `None` if `array` is not a
/// byte array.
fn byte_column(array: &dyn Array, column: &str) -> Option<Result<ByteColumn, ColumnsError>> {
    Some(match array.data_type() {
        DataType::Utf8 => {
            let array = array.as_string_opt::<i32>()?;
            offset_bytes(array.value_offsets(), array.values(), column)
        }
        DataType::LargeUtf8 => {
            let array = array.as_string_opt::<i64>()?;
            offset_bytes(array.value_offsets(), array.values(), column)
        }
        DataType::Binary => {
            let array = array.as_binary_opt::<i32>()?;
            offset_bytes(array.value_offsets(), array.values(), column)
        }
        DataType::LargeBinary => {
            let array = array.as_binary_opt::<i64>()?;
            offset_bytes(array.value_offsets(), array.values(), column)
        }
        DataType::Utf8View => view_bytes(array.as_string_view_opt()?, column),
        DataType::BinaryView => view_bytes(array.as_binary_view_opt()?, column),
        DataType::FixedSizeBinary(_) => {
            let array = array.as_fixed_size_binary_opt()?;
            let size = array.value_size();
            let total = size.saturating_mul(array.len());
            let data = array.value_data().get(..total)?.to_vec();
            if u32::try_from(total).is_err() {
                return Some(Err(too_large(column, total)));
            }
            let offsets = (0..=array.len()).map(|i| (i * size) as u32).collect();
            Ok(ByteColumn { data, offsets })
        }
        _ => return None,
    })
}

fn too_large(column: &str, bytes: usize) -> ColumnsError {
    ColumnsError::TooLarge {
        column: column.to_owned(),
        bytes: bytes as u64,
    }
}

/// Copies the bytes an offsets buffer addresses and rebases the offsets to start at 0.
fn offset_bytes<O: OffsetSizeTrait>(
    offsets: &[O],
    values: &[u8],
    column: &str,
) -> Result<ByteColumn, ColumnsError> {
    let (first, last) = match (offsets.first(), offsets.last()) {
        (Some(first), Some(last)) => (first.as_usize(), last.as_usize()),
        _ => {
            return Ok(ByteColumn {
                data: Vec::new(),
                offsets: vec![0],
            });
        }
    };
    let total = last.saturating_sub(first);
    if u32::try_from(total).is_err() {
        return Err(too_large(column, total));
    }
    let data = values.get(first..last).unwrap_or_default().to_vec();
    let offsets = if first == 0 {
        offsets
            .iter()
            .map(|offset| offset.as_usize() as u32)
            .collect()
    } else {
        offsets
            .iter()
            .map(|offset| (offset.as_usize() - first) as u32)
            .collect()
    };
    Ok(ByteColumn { data, offsets })
}

/// Gathers the values of a view array into one buffer (views point into many buffers).
fn view_bytes<T: ByteViewType + ?Sized>(
    array: &GenericByteViewArray<T>,
    column: &str,
) -> Result<ByteColumn, ColumnsError> {
    // The low 32 bits of a view are the value's length.
    let total: usize = array.views().iter().map(|view| *view as u32 as usize).sum();
    if u32::try_from(total).is_err() {
        return Err(too_large(column, total));
    }
    let mut data = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(array.len() + 1);
    offsets.push(0u32);
    for row in 0..array.len() {
        let value: &[u8] = array.value(row).as_ref();
        data.extend_from_slice(value);
        offsets.push(data.len() as u32);
    }
    Ok(ByteColumn { data, offsets })
}

/// The items of a list array: offsets rebased to 0, item nulls, item values.
fn list_values(
    array: &dyn Array,
    item: &ScalarType,
    column: &str,
) -> Result<ListValues, ColumnsError> {
    let wrong = || ColumnsError::TypeMismatch {
        column: column.to_owned(),
        expected: format!("list<{}>", scalar_name(item)),
        found: array.data_type().clone(),
    };
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list_opt::<i32>().ok_or_else(wrong)?;
            list_items(list.value_offsets(), list.values(), item, column)
        }
        DataType::LargeList(_) => {
            let list = array.as_list_opt::<i64>().ok_or_else(wrong)?;
            list_items(list.value_offsets(), list.values(), item, column)
        }
        _ => Err(wrong()),
    }
}

fn list_items<O: OffsetSizeTrait>(
    offsets: &[O],
    items: &ArrayRef,
    item: &ScalarType,
    column: &str,
) -> Result<ListValues, ColumnsError> {
    let first = offsets.first().map_or(0, |offset| offset.as_usize());
    let last = offsets.last().map_or(0, |offset| offset.as_usize());
    let count = last.saturating_sub(first);
    if u32::try_from(count).is_err() || first.saturating_add(count) > items.len() {
        return Err(too_large(column, count));
    }
    let items = items.slice(first, count);
    Ok(ListValues {
        offsets: offsets
            .iter()
            .map(|offset| (offset.as_usize() - first) as u32)
            .collect(),
        item_nulls: null_bytes(items.as_ref()),
        items: values(items.as_ref(), item, column)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{
        BinaryViewArray, BooleanArray, Date64Array, Decimal256Array, FixedSizeBinaryArray,
        Float16Array, LargeStringArray, StringArray, StringViewArray, TimestampSecondArray,
        UInt64Array,
    };
    use arrow_buffer::i256;

    use super::*;
    use crate::bindings::types::TimestampType;

    fn schema(name: &str, scalar: ScalarType) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            type_: ColumnType::Scalar(scalar),
            nullable: true,
        }
    }

    fn convert(array: ArrayRef, scalar: ScalarType) -> Result<Column, ColumnsError> {
        to_column(&array, &schema("c", scalar))
    }

    fn bytes_of(column: &Column) -> (Vec<u8>, Vec<u32>) {
        match &column.data {
            ColumnData::Scalar(
                Values::Text(bytes) | Values::Json(bytes) | Values::Binary(bytes),
            ) => (bytes.data.clone(), bytes.offsets.clone()),
            other => panic!("not a byte column: {other:?}"),
        }
    }

    #[test]
    fn sliced_text_is_rebased_to_zero() {
        let array = StringArray::from(vec![Some("ab"), Some("cde"), None, Some("f"), Some("")]);
        let sliced: ArrayRef = Arc::new(array.slice(1, 3));
        let column = convert(sliced, ScalarType::Text).unwrap();
        assert_eq!(column.nulls, vec![0, 1, 0]);
        assert_eq!(bytes_of(&column), (b"cdef".to_vec(), vec![0, 3, 3, 4]));
    }

    #[test]
    fn large_and_view_strings_become_the_same_byte_column() {
        let values = vec![
            Some("x"),
            None,
            Some("a longer string than twelve bytes"),
            Some(""),
        ];
        let large: ArrayRef = Arc::new(LargeStringArray::from(values.clone()));
        let view: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
        let a = convert(large, ScalarType::Json).unwrap();
        let b = convert(view, ScalarType::Text).unwrap();
        assert_eq!(bytes_of(&a), bytes_of(&b));
        assert_eq!(a.nulls, vec![0, 1, 0, 0]);
        assert_eq!(bytes_of(&a).1, vec![0, 1, 1, 34, 34]);
    }

    #[test]
    fn binary_kinds_become_binary() {
        let fixed = FixedSizeBinaryArray::try_from_iter(vec![[1u8, 2], [3, 4], [5, 6]].into_iter())
            .unwrap();
        let column = convert(Arc::new(fixed.slice(1, 2)), ScalarType::Binary).unwrap();
        assert_eq!(bytes_of(&column), (vec![3, 4, 5, 6], vec![0, 2, 4]));
        let view: ArrayRef = Arc::new(BinaryViewArray::from(vec![&b"ab"[..], b"c"]));
        let column = convert(view, ScalarType::Binary).unwrap();
        assert_eq!(bytes_of(&column), (b"abc".to_vec(), vec![0, 2, 3]));
    }

    #[test]
    fn no_nulls_gives_an_empty_mask_and_booleans_are_bytes() {
        let values: Vec<bool> = (0..130).map(|i| i % 3 == 0).collect();
        let array: ArrayRef = Arc::new(BooleanArray::from(values.clone()));
        let column = convert(array.slice(1, 129), ScalarType::Boolean).unwrap();
        assert!(column.nulls.is_empty());
        let ColumnData::Scalar(Values::Boolean(bytes)) = column.data else {
            panic!()
        };
        let expected: Vec<u8> = values[1..].iter().map(|&b| u8::from(b)).collect();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn uint64_is_a_lossless_decimal() {
        let array: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX, 0, 7]));
        let column = convert(array, ScalarType::Decimal((20, 0))).unwrap();
        let ColumnData::Scalar(Values::Decimal(values)) = column.data else {
            panic!()
        };
        assert_eq!(
            (values[0].lo, values[0].hi, values[0].scale),
            (u64::MAX, 0, 0)
        );
        assert_eq!((values[2].lo, values[2].hi), (7, 0));
    }

    #[test]
    fn decimal256_must_fit_128_bits_unless_null() {
        let fits = Decimal256Array::from(vec![Some(i256::from_i128(-5)), None])
            .with_precision_and_scale(40, 2)
            .unwrap();
        let column = convert(Arc::new(fits), ScalarType::Decimal((38, 2))).unwrap();
        let ColumnData::Scalar(Values::Decimal(values)) = column.data else {
            panic!()
        };
        assert_eq!(
            (values[0].lo, values[0].hi, values[0].scale),
            (u64::MAX - 4, -1, 2)
        );

        let big = i256::from_i128(i128::MAX).wrapping_add(i256::ONE);
        let too_big = Decimal256Array::from(vec![Some(i256::ONE), Some(big)])
            .with_precision_and_scale(76, 0)
            .unwrap();
        let error = convert(Arc::new(too_big), ScalarType::Decimal((38, 0))).unwrap_err();
        assert!(
            matches!(error, ColumnsError::OutOfRange { row: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn float16_widens_and_date64_becomes_days() {
        let halves: ArrayRef = Arc::new(Float16Array::from(vec![half_one()]));
        let column = convert(halves, ScalarType::Float).unwrap();
        let ColumnData::Scalar(Values::Float(values)) = column.data else {
            panic!()
        };
        assert_eq!(values, vec![1.0]);

        let dates: ArrayRef = Arc::new(Date64Array::from(vec![86_400_000 * 3, -1]));
        let column = convert(dates, ScalarType::Date).unwrap();
        let ColumnData::Scalar(Values::Date(values)) = column.data else {
            panic!()
        };
        assert_eq!(values, vec![3, -1]);
    }

    fn half_one() -> <Float16Type as ArrowPrimitiveType>::Native {
        <Float16Type as ArrowPrimitiveType>::Native::from_f32(1.0)
    }

    #[test]
    fn timestamps_keep_their_unit_and_refuse_another() {
        let array: ArrayRef =
            Arc::new(TimestampSecondArray::from(vec![-1, 1_700_000_000]).with_timezone("+02:00"));
        let seconds = ScalarType::Timestamp(TimestampType {
            unit: TimeUnit::Seconds,
            wall_clock: false,
        });
        let column = convert(array.clone(), seconds).unwrap();
        let ColumnData::Scalar(Values::Timestamp(values)) = column.data else {
            panic!()
        };
        assert_eq!(values, vec![-1, 1_700_000_000]);
        let millis = ScalarType::Timestamp(TimestampType {
            unit: TimeUnit::Millis,
            wall_clock: false,
        });
        assert!(matches!(
            convert(array, millis),
            Err(ColumnsError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn sliced_lists_rebase_offsets_and_keep_item_nulls() {
        let mut builder = ListBuilder::new(StringBuilder::new());
        builder.append_value([Some("a"), Some("b")]);
        builder.append_value([None, Some("cc")]);
        builder.append(false);
        builder.append_value([Some("d")]);
        let list: ArrayRef = Arc::new(builder.finish());
        let sliced = list.slice(1, 3);
        let schema = ColumnSchema {
            name: "tags".into(),
            type_: ColumnType::List(ScalarType::Text),
            nullable: true,
        };
        let column = to_column(&sliced, &schema).unwrap();
        assert_eq!(column.nulls, vec![0, 1, 0]);
        let ColumnData::List(list) = column.data else {
            panic!()
        };
        assert_eq!(list.offsets, vec![0, 2, 2, 3]);
        assert_eq!(list.item_nulls, vec![1, 0, 0]);
        let Values::Text(items) = list.items else {
            panic!()
        };
        assert_eq!(items.data, b"ccd");
        assert_eq!(items.offsets, vec![0, 0, 2, 3]);
    }

    #[test]
    fn mismatches_and_bad_projections_are_errors() {
        let array: ArrayRef = Arc::new(StringArray::from(vec!["1"]));
        assert!(matches!(
            convert(array.clone(), ScalarType::Integer),
            Err(ColumnsError::TypeMismatch { .. })
        ));
        let batch = RecordBatch::try_from_iter([("c", array)]).unwrap();
        let schema = [schema("c", ScalarType::Text)];
        assert!(matches!(
            to_columns(&batch, &schema, Some(&[1])),
            Err(ColumnsError::NoSuchColumn { index: 1, .. })
        ));
        assert!(matches!(
            to_columns(&batch, &[], None),
            Err(ColumnsError::ColumnCount { .. })
        ));
        let columns = to_columns(&batch, &schema, Some(&[0, 0])).unwrap();
        assert_eq!(columns.len(), 2);
    }
}
