//! Unit tests of the Arrow → contract column conversion.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    BinaryViewArray, BooleanArray, Date64Array, Decimal256Array, FixedSizeBinaryArray,
    Float16Array, LargeStringArray, StringArray, StringViewArray, TimestampSecondArray,
    UInt64Array,
};
use arrow_buffer::i256;

use super::*;
use crate::bindings::types::{TimeUnit, TimestampType};

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
        ColumnData::Scalar(Values::Text(bytes) | Values::Json(bytes) | Values::Binary(bytes)) => {
            (bytes.data.clone(), bytes.offsets.clone())
        }
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
    let fixed =
        FixedSizeBinaryArray::try_from_iter(vec![[1u8, 2], [3, 4], [5, 6]].into_iter()).unwrap();
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
