//! [`ColumnBuilder`]: values become Arrow values, and the errors of those that do not fit.

use super::*;

#[test]
fn values_become_arrow_values() {
    let mut number = ColumnBuilder::new(ty("NUMBER(6,2)"), 4);
    number.push_text("123.4").unwrap();
    number.push_null();
    let array = number.finish();
    let array = array.as_primitive::<Decimal128Type>();
    assert_eq!(array.data_type(), &arrow_schema::DataType::Decimal128(6, 2));
    assert_eq!(array.value(0), 12340);
    assert!(array.is_null(1));

    let mut float = ColumnBuilder::new(SnowflakeType::Float, 1);
    float.push_text("-inf").unwrap();
    assert_eq!(
        float.finish().as_primitive::<Float64Type>().value(0),
        f64::NEG_INFINITY
    );

    let mut date = ColumnBuilder::new(SnowflakeType::Date, 1);
    date.push_text("1970-01-02").unwrap();
    assert_eq!(date.finish().as_primitive::<Date32Type>().value(0), 1);

    let mut utc = ColumnBuilder::new(ty("TIMESTAMP_LTZ"), 1);
    utc.push_text("1970-01-01 01:00:00.001 +01:00").unwrap();
    assert_eq!(
        utc.finish()
            .as_primitive::<TimestampMillisecondType>()
            .value(0),
        1
    );

    let mut text = ColumnBuilder::new(SnowflakeType::Text, 3);
    text.push_text("a,b").unwrap();
    text.push_null();
    text.push_text("").unwrap();
    let array = text.finish();
    let array = array.as_string::<i32>();
    assert_eq!(
        (
            array.value(0),
            array.is_null(1),
            array.value(2),
            array.is_null(2)
        ),
        ("a,b", true, "", false)
    );
}

#[test]
fn pop_removes_the_last_row_and_finish_empties_the_builder() {
    let mut text = ColumnBuilder::new(SnowflakeType::Text, 3);
    text.push_text("keep").unwrap();
    text.push_text("drop").unwrap();
    text.pop();
    text.push_null();
    text.pop();
    text.push_text("next").unwrap();
    let array = text.finish();
    let array = array.as_string::<i32>();
    assert_eq!(array.len(), 2);
    assert_eq!((array.value(0), array.value(1)), ("keep", "next"));
    assert_eq!(array.null_count(), 0);
    assert!(text.is_empty());
    text.pop();
    assert_eq!(text.finish().len(), 0);

    let mut number = ColumnBuilder::new(ty("INT"), 2);
    number.push_text("1").unwrap();
    number.push_null();
    number.pop();
    let array = number.finish();
    assert_eq!((array.len(), array.null_count()), (1, 0));
}

#[test]
fn value_errors_name_the_value_the_type_and_why() {
    let error = |declaration: &str, text: &str| {
        ColumnBuilder::new(ty(declaration), 1)
            .push_text(text)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error("NUMBER(6,2)", "1.234"),
        "`1.234` is not a NUMBER(6,2): more than 2 digits after the decimal point (the \
         declared scale)"
    );
    assert_eq!(
        error("NUMBER(6,2)", "12345"),
        "`12345` is not a NUMBER(6,2): more than 4 digits before the decimal point \
         (precision 6, scale 2)"
    );
    assert_eq!(
        error("INT", "12abc"),
        "`12abc` is not a NUMBER(38,0): not a number"
    );
    assert_eq!(
        error("FLOAT", "1,5"),
        "`1,5` is not a FLOAT: not a floating-point number"
    );
    assert_eq!(
        error("BOOLEAN", "maybe"),
        "`maybe` is not a BOOLEAN: not a boolean (true/false, t/f, yes/no, y/n, on/off, 1/0)"
    );
    assert_eq!(
        error("DATE", "2023-02-29"),
        "`2023-02-29` is not a DATE: no such day"
    );
    assert_eq!(
        error("DATE", "20230228"),
        "`20230228` is not a DATE: not a date of the form YYYY-MM-DD"
    );
    assert_eq!(
        error("TIMESTAMP_NTZ(9)", "2024-01-01 00:00:00.123456"),
        "`2024-01-01 00:00:00.123456` is not a TIMESTAMP_NTZ(9): nonzero digits finer than \
         milliseconds (Snowflake's Parquet unload keeps milliseconds)"
    );
    assert_eq!(
        error("TIMESTAMP_NTZ", "yesterday"),
        "`yesterday` is not a TIMESTAMP_NTZ(9): not a timestamp of the form YYYY-MM-DD \
         HH24:MI:SS[.FFF]"
    );
    assert_eq!(
        error("TIMESTAMP_TZ", "2024-01-01 00:00:00"),
        "`2024-01-01 00:00:00` is not a TIMESTAMP_TZ(9): no UTC offset (such as `Z`, `-0800` \
         or `+01:00`) after the time"
    );
    assert_eq!(
        error("VARIANT", "{not json"),
        "`{not json` is not a VARIANT: not valid JSON"
    );
    let long = "9".repeat(500);
    let message = error("NUMBER(6,2)", &long);
    assert!(
        message.starts_with(&format!(
            "`{}` is not",
            "9".repeat(crate::source::text::ROW_TEXT_QUOTED)
        )),
        "{message}"
    );
    let wide = "é".repeat(150);
    let value = ColumnBuilder::new(SnowflakeType::Date, 1)
        .push_text(&wide)
        .unwrap_err()
        .value;
    assert_eq!(value, "é".repeat(100), "cut at a character boundary");
}

#[test]
fn a_null_in_a_not_null_column_is_refused() {
    let column = DeclaredColumn::parse("ID NUMBER(38,0) NOT NULL").unwrap();
    let mut builder = ColumnBuilder::for_column(&column, 1);
    assert_eq!(
        builder.push_null_checked("\\N").unwrap_err().to_string(),
        "`\\N` is not a NUMBER(38,0) NOT NULL: the column is declared NOT NULL"
    );
    assert!(builder.is_empty());
    let nullable = DeclaredColumn::parse("ID NUMBER(38,0)").unwrap();
    let mut builder = ColumnBuilder::for_column(&nullable, 1);
    builder.push_null_checked("\\N").unwrap();
    assert_eq!(builder.finish().null_count(), 1);
}

#[test]
fn json_values_are_read_as_the_declared_type() {
    let push = |declaration: &str, value: serde_json::Value| {
        let mut builder = ColumnBuilder::new(ty(declaration), 1);
        builder.push_json(&value).map(|()| builder.finish())
    };
    let id = push("NUMBER(38,0)", json!(12345678901234_i64)).unwrap();
    assert_eq!(
        id.as_primitive::<Decimal128Type>().value(0),
        12_345_678_901_234
    );
    let price = push("NUMBER(6,2)", json!(12.5)).unwrap();
    assert_eq!(price.as_primitive::<Decimal128Type>().value(0), 1250);
    let price = push("NUMBER(6,2)", json!("12.50")).unwrap();
    assert_eq!(price.as_primitive::<Decimal128Type>().value(0), 1250);
    let score = push("FLOAT", json!(3)).unwrap();
    assert_eq!(score.as_primitive::<Float64Type>().value(0), 3.0);
    let flag = push("BOOLEAN", json!(true)).unwrap();
    assert!(flag.as_boolean().value(0));
    let at = push("TIMESTAMP_NTZ(3)", json!("1970-01-01 00:00:01.000")).unwrap();
    assert_eq!(at.as_primitive::<TimestampMillisecondType>().value(0), 1000);
    let doc = push("VARIANT", json!({"a": [1, "x"]})).unwrap();
    assert_eq!(doc.as_string::<i32>().value(0), r#"{"a":[1,"x"]}"#);
    let doc = push("VARIANT", json!("text")).unwrap();
    assert_eq!(
        doc.as_string::<i32>().value(0),
        r#""text""#,
        "its JSON text"
    );
    let name = push("VARCHAR", json!(["a"])).unwrap();
    assert_eq!(name.as_string::<i32>().value(0), r#"["a"]"#);
    let name = push("VARCHAR", json!(7)).unwrap();
    assert_eq!(name.as_string::<i32>().value(0), "7");
    let null = push("DATE", json!(null)).unwrap();
    assert!(null.is_null(0));
    assert_eq!(
        push("DATE", json!(20240101)).unwrap_err().to_string(),
        "`20240101` is not a DATE: a JSON number cannot be read as this type"
    );
    assert_eq!(
        push("NUMBER", json!({"a": 1})).unwrap_err().to_string(),
        r#"`{"a":1}` is not a NUMBER(38,0): a JSON object cannot be read as this type"#
    );
    assert_eq!(
        push("NUMBER(38,0)", json!(1.5)).unwrap_err().to_string(),
        "`1.5` is not a NUMBER(38,0): more than 0 digits after the decimal point (the \
         declared scale)"
    );
}
