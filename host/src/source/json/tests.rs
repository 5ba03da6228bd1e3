use arrow_array::{
    Array, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use serde_json::json;

use super::JsonKind as Kind;
use super::*;

fn merge(a: Kind, b: Kind) -> Kind {
    a.merge(b)
}

fn kind_of(value: &Value) -> Kind {
    Kind::of(value)
}

/// The columns of rows given as JSON objects (keys in serde_json's order).
fn infer(rows: &[Value]) -> JsonColumns {
    let mut builder = JsonRows::with_capacity(rows.len());
    for row in rows {
        builder.start_row();
        for (name, value) in row.as_object().unwrap() {
            builder.cell(name, value);
        }
    }
    builder.finish().unwrap()
}

fn scalar(columns: &JsonColumns, name: &str) -> ScalarType {
    let column = columns.schema.iter().find(|c| c.name == name).unwrap();
    match column.type_ {
        ColumnType::Scalar(scalar) => scalar,
        ColumnType::List(_) => panic!("{name} is a list"),
    }
}

#[test]
fn kinds_merge_to_the_widest() {
    assert_eq!(merge(Kind::Int, Kind::Float), Kind::Float);
    assert_eq!(merge(Kind::Null, Kind::Bool), Kind::Bool);
    assert_eq!(merge(Kind::Int, Kind::Text), Kind::Text);
    assert_eq!(merge(Kind::Date, Kind::Timestamp), Kind::Text);
    assert_eq!(merge(Kind::Json, Kind::Json), Kind::Json);
    assert_eq!(kind_of(&json!("2025-08-20")), Kind::Date);
    assert_eq!(kind_of(&json!("2025-08-20T03:14:07")), Kind::Timestamp);
    assert_eq!(kind_of(&json!("2025-08-20 03:14:07.250")), Kind::Timestamp);
    // A zone makes it text (the relay's rule: Snowflake sends TIMESTAMP_NTZ as such).
    assert_eq!(kind_of(&json!("2025-08-20T03:14:07Z")), Kind::Text);
    assert_eq!(kind_of(&json!(u64::MAX)), Kind::Float);
}

#[test]
fn every_rule_over_rows() {
    let columns = infer(&[
        json!({"B": true, "I": 1, "F": 1, "T": "2024-05-01 00:00:00", "D": "2024-05-01",
               "S": "x", "L": [1], "O": {"a": 1}, "N": null, "M": 1}),
        json!({"B": null, "I": 2, "F": 2.5, "T": "2024-05-02T01:02:03.5", "D": null,
               "S": "y", "L": ["a"], "O": null, "N": null, "M": "one"}),
    ]);
    assert_eq!(scalar(&columns, "B"), ScalarType::Boolean);
    assert_eq!(scalar(&columns, "I"), ScalarType::Integer);
    assert_eq!(scalar(&columns, "F"), ScalarType::Float);
    assert!(matches!(
        scalar(&columns, "T"),
        ScalarType::Timestamp(TimestampType {
            unit: TimeUnit::Micros,
            wall_clock: true
        })
    ));
    assert_eq!(scalar(&columns, "D"), ScalarType::Date);
    assert_eq!(scalar(&columns, "S"), ScalarType::Text);
    assert_eq!(scalar(&columns, "L"), ScalarType::Json);
    assert_eq!(scalar(&columns, "O"), ScalarType::Json);
    assert_eq!(scalar(&columns, "N"), ScalarType::Text);
    assert_eq!(scalar(&columns, "M"), ScalarType::Text);
    assert!(columns.schema.iter().all(|c| c.nullable));

    let batch = &columns.batch;
    assert_eq!(batch.num_rows(), 2);
    let column = |name: &str| batch.column_by_name(name).unwrap().clone();
    let t = column("T");
    let t = t
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(t.value(0), 1_714_521_600_000_000);
    assert_eq!(t.value(1), 1_714_611_723_500_000);
    let d = column("D");
    let d = d.as_any().downcast_ref::<Date32Array>().unwrap();
    assert_eq!(d.value(0), 19_844);
    assert!(d.is_null(1));
    let m = column("M");
    let m = m.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((m.value(0), m.value(1)), ("1", "one"));
    let l = column("L");
    let l = l.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((l.value(0), l.value(1)), ("[1]", "[\"a\"]"));
    let f = column("F");
    let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!((f.value(0), f.value(1)), (1.0, 2.5));
    assert_eq!(column("N").null_count(), 2);
}

#[test]
fn columns_in_order_of_first_appearance_missing_cells_null_later_cells_win() {
    let (a, b, c, late) = (json!(1), json!("b"), json!(true), json!(9));
    let mut builder = JsonRows::with_capacity(3);
    builder.start_row();
    builder.cell("Z", &a);
    builder.cell("Z", &late);
    builder.start_row();
    builder.cell("A", &b);
    builder.start_row();
    builder.cell("C", &c);
    let columns = builder.finish().unwrap();
    let names: Vec<&str> = columns.schema.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Z", "A", "C"]);
    let z = columns.batch.column(0);
    let z = z.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(z.value(0), 9);
    assert!(z.is_null(1) && z.is_null(2));
}

#[test]
fn no_rows_and_empty_rows() {
    let columns = JsonRows::default().finish().unwrap();
    assert!(columns.schema.is_empty());
    assert_eq!(columns.batch.num_rows(), 0);
    let mut builder = JsonRows::default();
    builder.start_row();
    builder.start_row();
    let columns = builder.finish().unwrap();
    assert_eq!(columns.batch.num_rows(), 2);
}

#[test]
fn the_streaming_inference_types_columns_as_the_rows_do() {
    let rows = [
        json!({"B": true, "I": 1, "T": "2024-05-01 00:00:00", "L": [1], "M": 1}),
        json!({"I": 2.5, "D": "2024-05-01", "M": "one", "N": null}),
    ];
    let mut inference = Inference::default();
    for row in &rows {
        for (name, value) in row.as_object().unwrap() {
            let column = inference.column(name);
            inference.observe(column, JsonKind::of(value));
        }
    }
    assert_eq!(inference.schema(), infer(&rows).schema);
    assert_eq!(inference.position("D"), Some(5));
    assert_eq!(inference.position("X"), None);
}

#[test]
fn a_column_takes_what_would_not_widen_it() {
    assert!(Kind::Float.takes(Kind::Int));
    assert!(!Kind::Int.takes(Kind::Float));
    assert!(Kind::Text.takes(Kind::Json) && Kind::Text.takes(Kind::Int));
    assert!(Kind::Null.takes(Kind::Bool), "a column of nulls is TEXT");
    assert!(Kind::Date.takes(Kind::Null));
    assert!(!Kind::Date.takes(Kind::Timestamp));
    assert!(!Kind::Json.takes(Kind::Text));
    assert!(!Kind::Bool.takes(Kind::Int));
}
