//! The bytes each row of an Arrow batch holds, to cut batches by bytes as well as rows.
//!
//! A row's size is the sum over its columns of: the value's bytes for strings and binaries
//! (from the offsets, exact), the value width for fixed-width types, and for other types
//! (lists, structs) the column's buffers spread evenly over its rows. Validity bits are not
//! counted.

use arrow_array::types::{ByteArrayType, GenericBinaryType, GenericStringType};
use arrow_array::{Array, ArrayRef, GenericByteArray, RecordBatch};
use arrow_buffer::ArrowNativeType;
use arrow_schema::DataType;

/// The bytes of each row of `batch`.
pub fn row_bytes(batch: &RecordBatch) -> Vec<u64> {
    let mut sizes = vec![0u64; batch.num_rows()];
    for column in batch.columns() {
        add_column(column, &mut sizes);
    }
    sizes
}

fn add_column(column: &ArrayRef, sizes: &mut [u64]) {
    let any = column.as_any();
    match column.data_type() {
        DataType::Utf8 => add_bytes(
            any.downcast_ref::<GenericByteArray<GenericStringType<i32>>>(),
            sizes,
        ),
        DataType::LargeUtf8 => add_bytes(
            any.downcast_ref::<GenericByteArray<GenericStringType<i64>>>(),
            sizes,
        ),
        DataType::Binary => add_bytes(
            any.downcast_ref::<GenericByteArray<GenericBinaryType<i32>>>(),
            sizes,
        ),
        DataType::LargeBinary => add_bytes(
            any.downcast_ref::<GenericByteArray<GenericBinaryType<i64>>>(),
            sizes,
        ),
        data_type => match data_type.primitive_width() {
            Some(width) => sizes.iter_mut().for_each(|s| *s += width as u64),
            None => {
                let total = column.to_data().get_slice_memory_size().unwrap_or(0) as u64;
                let each = total.div_ceil(sizes.len().max(1) as u64);
                sizes.iter_mut().for_each(|s| *s += each);
            }
        },
    }
}

fn add_bytes<T: ByteArrayType>(array: Option<&GenericByteArray<T>>, sizes: &mut [u64]) {
    let Some(array) = array else { return };
    for (row, pair) in array.value_offsets().windows(2).enumerate() {
        if let Some(size) = sizes.get_mut(row) {
            let len = pair[1].as_usize().saturating_sub(pair[0].as_usize());
            *size += len as u64 + std::mem::size_of::<T::Offset>() as u64;
        }
    }
}

/// How many rows from `offset` (at most `max_rows`) fit in `max_bytes`: at least one, so a
/// row larger than the budget goes alone.
pub fn rows_within(sizes: &[u64], offset: usize, max_rows: usize, max_bytes: u64) -> usize {
    let mut total = 0u64;
    let mut rows = 0;
    for &size in sizes.iter().skip(offset).take(max_rows) {
        if rows > 0 && total + size > max_bytes {
            break;
        }
        total += size;
        rows += 1;
    }
    rows.max(1).min(max_rows.max(1))
}

/// One plugin call's rows of a read batch (see [`cuts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The segment its rows belong to (file row / segment rows).
    pub segment: u64,
    /// Its first row, relative to the batch.
    pub offset: usize,
    pub len: usize,
}

/// How a read batch whose row 0 is file row `first_row` is cut into plugin calls: never
/// across a segment boundary (every `segment_rows` rows of the file), and within
/// `max_bytes` of input (a larger row goes alone). `run` and `run --dry-run` cut alike, so
/// a dry run's bodies are a run's.
pub fn cuts(sizes: &[u64], first_row: u64, segment_rows: u64, max_bytes: u64) -> Cuts<'_> {
    Cuts {
        sizes,
        first_row,
        segment_rows: segment_rows.max(1),
        max_bytes,
        offset: 0,
    }
}

/// See [`cuts`].
pub struct Cuts<'a> {
    sizes: &'a [u64],
    first_row: u64,
    segment_rows: u64,
    max_bytes: u64,
    offset: usize,
}

impl Iterator for Cuts<'_> {
    type Item = Cut;

    fn next(&mut self) -> Option<Cut> {
        let n = self.sizes.len();
        if self.offset >= n {
            return None;
        }
        let row = self.first_row + self.offset as u64;
        let segment = row / self.segment_rows;
        let to_boundary = (segment + 1) * self.segment_rows - row;
        let max_rows = ((n - self.offset) as u64).min(to_boundary) as usize;
        let len = rows_within(self.sizes, self.offset, max_rows, self.max_bytes);
        let cut = Cut {
            segment,
            offset: self.offset,
            len,
        };
        self.offset += len;
        Some(cut)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn strings_count_their_bytes_and_offsets() {
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "s",
                Arc::new(StringArray::from(vec!["", "abc", "0123456789"])) as ArrayRef,
            ),
        ])
        .unwrap();
        assert_eq!(row_bytes(&batch), vec![8 + 4, 8 + 3 + 4, 8 + 10 + 4]);
        // A slice counts its own rows only.
        assert_eq!(row_bytes(&batch.slice(2, 1)), vec![8 + 10 + 4]);
    }

    #[test]
    fn rows_within_cuts_by_bytes_and_rows_and_takes_one_large_row_alone() {
        let sizes = [10, 10, 100, 10, 10, 10];
        assert_eq!(rows_within(&sizes, 0, 6, 25), 2);
        assert_eq!(
            rows_within(&sizes, 2, 6, 25),
            1,
            "a row over the budget goes alone"
        );
        assert_eq!(rows_within(&sizes, 3, 6, 25), 2);
        assert_eq!(rows_within(&sizes, 0, 1, 1000), 1);
        assert_eq!(rows_within(&sizes, 0, 6, 1000), 6);
    }

    #[test]
    fn cuts_stop_at_segment_boundaries_and_byte_budgets() {
        let sizes = [10, 10, 100, 10, 10, 10, 10, 10];
        let cuts: Vec<_> = cuts(&sizes, 8, 5, 25)
            .map(|c| (c.segment, c.offset, c.len))
            .collect();
        // File rows 8..=15, segments of 5 rows: 8-9 | 10-14 | 15; the 100-byte row goes
        // alone, the others two by two (25 bytes).
        assert_eq!(
            cuts,
            [(1, 0, 2), (2, 2, 1), (2, 3, 2), (2, 5, 2), (3, 7, 1)]
        );
        assert_eq!(super::cuts(&[], 0, 5, 25).count(), 0);
    }
}
