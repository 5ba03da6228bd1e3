//! Variable-width columns: text and binary bytes (offsets rebased to 0, view arrays
//! gathered into one buffer) and list items.

use arrow_array::cast::AsArray;
use arrow_array::types::ByteViewType;
use arrow_array::{Array, ArrayRef, GenericByteViewArray, OffsetSizeTrait};
use arrow_schema::DataType;

use super::{ColumnsError, null_bytes, values};
use crate::bindings::types::{ByteColumn, ColumnType, ListValues, ScalarType};

/// The bytes of a text or binary array, offsets rebased to 0. `None` if `array` is not a
/// byte array.
pub(super) fn byte_column(
    array: &dyn Array,
    column: &str,
) -> Option<Result<ByteColumn, ColumnsError>> {
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
pub(super) fn list_values(
    array: &dyn Array,
    item: &ScalarType,
    column: &str,
) -> Result<ListValues, ColumnsError> {
    let wrong = || ColumnsError::TypeMismatch {
        column: column.to_owned(),
        expected: ColumnType::List(*item).to_string(),
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
