//! Inferred TIMESTAMP columns: the unit their text needs, no fraction digit lost.

use super::*;

#[test]
fn a_timestamp_column_gets_the_unit_its_text_needs_and_no_digit_is_lost() {
    let unit = |lines: &[&str]| {
        let text = lines.join("\n");
        match inferred(&text).contract[0].type_ {
            ColumnType::Scalar(ScalarType::Timestamp(t)) => t.unit,
            ref other => panic!("{other:?}"),
        }
    };
    assert_eq!(unit(&[r#"{"T":"2024-05-01 12:34:56"}"#]), TimeUnit::Millis);
    assert_eq!(
        unit(&[r#"{"T":"2024-05-01 12:34:56.789"}"#]),
        TimeUnit::Millis
    );
    assert_eq!(
        unit(&[r#"{"T":"2024-05-01T12:34:56.789000"}"#]),
        TimeUnit::Millis
    );
    assert_eq!(
        unit(&[
            r#"{"T":"2024-05-01 12:34:56.1"}"#,
            r#"{"T":"2024-05-01 12:34:56.123456"}"#
        ]),
        TimeUnit::Micros
    );
    assert_eq!(
        unit(&[r#"{"T":"2024-05-01 12:34:56.123456789"}"#]),
        TimeUnit::Nanos
    );

    let text = concat!(
        r#"{"T":"2024-05-01 12:34:56.123456789"}"#,
        "\n",
        r#"{"T":"9999-12-31 00:00:00.000"}"#,
        "\n"
    );
    let schema = inferred(text);
    assert_eq!(
        schema.columns[0].ty,
        SnowflakeType::TimestampNtz { precision: 9 }
    );
    let results = all(text, &schema);
    let batch = &results[0].as_ref().unwrap().batch;
    assert_eq!(
        col::<TimestampNanosecondArray>(batch, "T").value(0),
        1_714_566_896_123_456_789
    );
    let (row, column, reason, _) = row_error(&results[1]);
    assert_eq!((row, column.as_deref()), (1, Some("T")));
    assert!(
        reason.contains("out of the range of a nanosecond timestamp"),
        "{reason}"
    );

    // Beyond the first rows: more digits than the column holds is a row error, not a loss.
    let options = JsonOptions {
        infer_rows: 1,
        ..JsonOptions::default()
    };
    let text = concat!(
        r#"{"T":"2024-05-01 12:34:56.789"}"#,
        "\n",
        r#"{"T":"2024-05-01 12:34:56.7891"}"#,
        "\n",
        r#"{"T":"2024-05-01 12:34:56.780000"}"#,
        "\n"
    );
    let schema = schema_of(text, &options).unwrap();
    let results = all(text, &schema);
    assert_eq!(layout(&results), [('b', 0, 1), ('e', 1, 0), ('b', 2, 1)]);
    let reason = row_error(&results[1]).2;
    assert!(
        reason.contains("has 4 fraction digits, more than the column's 3"),
        "{reason}"
    );
    assert!(reason.contains("TIMESTAMP_NTZ(9)"), "{reason}");
    let batch = &results[2].as_ref().unwrap().batch;
    assert_eq!(
        col::<TimestampMillisecondArray>(batch, "T").value(0),
        1_714_566_896_780
    );
}
