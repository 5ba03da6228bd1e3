//! The no-plugin baseline's JSON writer.

/// The baseline's JSON: each row as one flat object of its columns, written with the
/// same primitives as the wire encoder (strings escaped, decimals exact, RFC 3339).
pub fn rows_to_json(batch: &arrow_array::RecordBatch, names: &[&str], out: &mut Vec<u8>) -> usize {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int64Type, TimestampMillisecondType};
    use arrow_schema::DataType;
    use stagepush::wire::{json, time};
    for row in 0..batch.num_rows() {
        out.push(b'{');
        for (c, array) in batch.columns().iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            json::write_str(out, names[c]).unwrap();
            out.push(b':');
            if array.is_null(row) {
                out.extend_from_slice(b"null");
                continue;
            }
            match array.data_type() {
                DataType::Decimal128(_, scale) => json::write_decimal(
                    out,
                    array.as_primitive::<Decimal128Type>().value(row),
                    *scale,
                ),
                DataType::Utf8 => {
                    let _ = json::write_str(out, array.as_string::<i32>().value(row));
                }
                DataType::Boolean => out.extend_from_slice(if array.as_boolean().value(row) {
                    b"true"
                } else {
                    b"false"
                }),
                DataType::Int64 => {
                    json::write_i64(out, array.as_primitive::<Int64Type>().value(row))
                }
                DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, _) => {
                    out.push(b'"');
                    time::write_timestamp(
                        out,
                        array.as_primitive::<TimestampMillisecondType>().value(row),
                        stagepush::bindings::types::TimeUnit::Millis,
                    );
                    out.push(b'"');
                }
                other => panic!("baseline does not write {other}"),
            }
        }
        out.push(b'}');
    }
    batch.num_rows()
}
