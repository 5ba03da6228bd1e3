//! Lines as Snowflake writes them (`COPY INTO @stage FROM (SELECT OBJECT_CONSTRUCT(*) …)
//! FILE_FORMAT = (TYPE = JSON)`): keys upper-case, NULLs left out, numbers as JSON numbers,
//! VARIANT columns nested, timestamps as `2024-05-01 12:34:56.789`.

use arrow_array::{
    Array, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
    TimestampMillisecondArray, TimestampNanosecondArray,
};

use serde_json::Value;

use super::row::cell;
use super::scan::LineError;
use super::*;
use crate::bindings::types::{ColumnType, ScalarType, TimeUnit, TimestampType};
use crate::source::json::JsonRows;
use crate::source::text::ROW_TEXT_QUOTED;

const FILE: &str = "data_0_0_0.json";

/// Three customers as `OBJECT_CONSTRUCT(*)` writes them (row 1 has no EMAIL: it is NULL).
const CUSTOMERS: &str = concat!(
    r#"{"ADDRESS":{"city":"Oslo","zip":"0150"},"BALANCE":10.5,"CUSTOMER_ID":1,"EMAIL":"ann@example.com","IS_ACTIVE":true,"SIGNED_UP":"2024-01-02","TAGS":["a","b"],"UPDATED_AT":"2024-05-01 12:34:56.789"}"#,
    "\n",
    r#"{"BALANCE":3,"CUSTOMER_ID":2,"IS_ACTIVE":false,"SIGNED_UP":"2023-12-31","UPDATED_AT":"2024-05-02 00:00:00.000"}"#,
    "\n",
    r#"{"ADDRESS":{"city":"Bergen"},"BALANCE":-1.25,"CUSTOMER_ID":3,"EMAIL":"cy@example.com","IS_ACTIVE":true,"SIGNED_UP":"2024-02-29","TAGS":[],"UPDATED_AT":"2024-05-03 23:59:59.999"}"#,
    "\n",
);

fn schema_of(text: &str, options: &JsonOptions) -> Result<Arc<TextSchema>, SourceError> {
    json_schema(&mut text.as_bytes(), FILE, options)
}

fn inferred(text: &str) -> Arc<TextSchema> {
    schema_of(text, &JsonOptions::default()).expect("schema")
}

fn batches(
    text: &str,
    schema: &Arc<TextSchema>,
    read: &ReadOptions,
    max_bytes: usize,
) -> Vec<Result<SourceBatch, SourceError>> {
    let reader: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
    JsonBatches::new(reader, FILE.into(), schema.clone(), read, max_bytes).collect()
}

fn all(text: &str, schema: &Arc<TextSchema>) -> Vec<Result<SourceBatch, SourceError>> {
    batches(text, schema, &ReadOptions::default(), usize::MAX)
}

fn only_batch(results: Vec<Result<SourceBatch, SourceError>>) -> RecordBatch {
    assert_eq!(results.len(), 1, "{results:?}");
    results.into_iter().next().unwrap().unwrap().batch
}

fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("{name} is another type"))
}

/// (row, column, reason, text) of a row error.
fn row_error(result: &Result<SourceBatch, SourceError>) -> (u64, Option<String>, String, String) {
    match result {
        Err(SourceError::Row {
            file,
            row,
            column,
            reason,
            text,
        }) => {
            assert_eq!(file, FILE);
            (
                *row,
                column.clone(),
                reason.clone(),
                text.clone().unwrap_or_default(),
            )
        }
        other => panic!("not a row error: {other:?}"),
    }
}

/// (first row, rows) of each batch, and the row numbers of the row errors, in order.
fn layout(results: &[Result<SourceBatch, SourceError>]) -> Vec<(char, u64, usize)> {
    results
        .iter()
        .map(|r| match r {
            Ok(b) => ('b', b.first_row, b.batch.num_rows()),
            Err(SourceError::Row { row, .. }) => ('e', *row, 0),
            Err(e) => panic!("{e}"),
        })
        .collect()
}

#[test]
fn inferred_columns_are_the_relays_in_order_of_first_appearance() {
    let schema = inferred(CUSTOMERS);
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ADDRESS",
            "BALANCE",
            "CUSTOMER_ID",
            "EMAIL",
            "IS_ACTIVE",
            "SIGNED_UP",
            "TAGS",
            "UPDATED_AT"
        ]
    );
    // The relay (and `plugin test --json-input`) types the same rows the same way.
    let rows: Vec<Value> = CUSTOMERS
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut relay = JsonRows::default();
    for row in &rows {
        relay.start_row();
        for (key, value) in row.as_object().unwrap() {
            relay.cell(key, value);
        }
    }
    let relay = relay.finish().unwrap();
    // Every type is the relay's but the TIMESTAMP's unit: milliseconds, as the text has
    // (and as a Parquet unload of TIMESTAMP_NTZ gives); the relay's is microseconds.
    let at = 7;
    for (i, (ours, relays)) in schema.contract.iter().zip(&relay.schema).enumerate() {
        if i != at {
            assert_eq!(ours, relays);
        }
    }
    assert_eq!(schema.contract.len(), relay.schema.len());
    assert_eq!(
        schema.contract[at].type_,
        ColumnType::Scalar(ScalarType::Timestamp(TimestampType {
            unit: TimeUnit::Millis,
            wall_clock: true
        }))
    );
    let scalar = |name: &str| match schema.contract.iter().find(|c| c.name == name) {
        Some(c) => match c.type_ {
            ColumnType::Scalar(s) => s,
            ColumnType::List(_) => panic!("list"),
        },
        None => panic!("{name}"),
    };
    assert_eq!(scalar("CUSTOMER_ID"), ScalarType::Integer);
    assert_eq!(scalar("BALANCE"), ScalarType::Float);
    assert_eq!(scalar("ADDRESS"), ScalarType::Json);
    assert_eq!(scalar("SIGNED_UP"), ScalarType::Date);
    assert!(matches!(scalar("UPDATED_AT"), ScalarType::Timestamp(_)));
    assert_eq!(scalar("EMAIL"), ScalarType::Text);
    assert_eq!(
        schema.columns[2].ty,
        SnowflakeType::Number {
            precision: 38,
            scale: 0
        }
    );

    // The batch holds the relay's values (objects here are written with sorted keys,
    // as the relay writes them, so even the JSON text is the same).
    let batch = only_batch(all(CUSTOMERS, &schema));
    for i in (0..batch.num_columns()).filter(|&i| i != at) {
        assert_eq!(batch.column(i), relay.batch.column(i));
        assert_eq!(batch.schema().field(i), relay.batch.schema().field(i));
    }
    let email = col::<StringArray>(&batch, "EMAIL");
    assert!(email.is_null(1), "a key OBJECT_CONSTRUCT left out is NULL");
    assert_eq!(email.value(2), "cy@example.com");
    assert_eq!(
        col::<TimestampMillisecondArray>(&batch, "UPDATED_AT").value(0),
        1_714_566_896_789
    );
    assert_eq!(col::<Date32Array>(&batch, "SIGNED_UP").value(0), 19_724);
    assert_eq!(col::<Int64Array>(&batch, "CUSTOMER_ID").value(2), 3);
    assert_eq!(col::<Float64Array>(&batch, "BALANCE").value(1), 3.0);
    assert!(!col::<BooleanArray>(&batch, "IS_ACTIVE").value(1));
    assert_eq!(
        col::<StringArray>(&batch, "ADDRESS").value(0),
        r#"{"city":"Oslo","zip":"0150"}"#
    );
    assert_eq!(col::<StringArray>(&batch, "TAGS").value(2), "[]");
}

#[test]
fn objects_and_arrays_keep_their_text_as_written() {
    let text = concat!(
        r#"{"ID":1,"PROPS":{"z":1.50,"a":{"big":123456789012345678901234567890},"s":"x\"y"}}"#,
        "\n",
        r#"{"ID":2,"PROPS":[ 1, {"b":null} ]}"#,
        "\n"
    );
    let schema = inferred(text);
    let batch = only_batch(all(text, &schema));
    let props = col::<StringArray>(&batch, "PROPS");
    assert_eq!(
        props.value(0),
        r#"{"z":1.50,"a":{"big":123456789012345678901234567890},"s":"x\"y"}"#
    );
    assert_eq!(props.value(1), r#"[ 1, {"b":null} ]"#);
}

#[test]
fn a_key_outside_the_columns_is_a_row_error_naming_it_and_the_fix() {
    let options = JsonOptions {
        infer_rows: 2,
        ..JsonOptions::default()
    };
    let text = concat!(
        r#"{"ID":1,"NAME":"Ann"}"#,
        "\n",
        r#"{"ID":2}"#,
        "\n",
        r#"{"ID":3,"NAME":"Bo","NICKNAME":"B"}"#,
        "\n",
        r#"{"ID":4,"NAME":"Cy"}"#,
        "\n"
    );
    let schema = schema_of(text, &options).unwrap();
    assert_eq!(schema.columns.len(), 2, "row 2 is beyond infer_rows");
    let results = all(text, &schema);
    assert_eq!(layout(&results), [('b', 0, 2), ('e', 2, 0), ('b', 3, 1)]);
    let (row, column, reason, line) = row_error(&results[1]);
    assert_eq!((row, column.as_deref()), (2, Some("NICKNAME")));
    assert!(
        reason.contains("key `NICKNAME` is not a column"),
        "{reason}"
    );
    assert!(reason.contains("ID, NAME"), "{reason}");
    assert!(reason.contains("[source.json] columns"), "{reason}");
    assert!(reason.contains("[source.json] infer_rows"), "{reason}");
    assert_eq!(line, r#"{"ID":3,"NAME":"Bo","NICKNAME":"B"}"#);
    let message = results[1].as_ref().unwrap_err().to_string();
    assert!(message.starts_with("data_0_0_0.json: row 2: "), "{message}");

    // Raising infer_rows makes it a column (null where it is missing).
    let schema = inferred(text);
    let batch = only_batch(all(text, &schema));
    let nickname = col::<StringArray>(&batch, "NICKNAME");
    assert_eq!(nickname.null_count(), 3);
    assert_eq!(nickname.value(2), "B");
}

#[test]
fn a_value_that_does_not_fit_its_inferred_column_is_a_row_error() {
    let options = JsonOptions {
        infer_rows: 1,
        ..JsonOptions::default()
    };
    let text = concat!(
        r#"{"ID":1,"AT":"2024-05-01 12:34:56.789","NOTE":"x","TAGS":[1],"OK":true,"F":1.5}"#,
        "\n",
        r#"{"ID":2.5}"#,
        "\n",
        r#"{"ID":3,"AT":"yesterday"}"#,
        "\n",
        r#"{"ID":4,"TAGS":"a"}"#,
        "\n",
        r#"{"ID":5,"OK":1}"#,
        "\n",
        // Anything goes into TEXT (as its JSON text), an integer into FLOAT.
        r#"{"ID":6,"NOTE":{"b":2,"a":1},"F":2}"#,
        "\n",
        r#"{"ID":7,"NOTE":12.50,"AT":null}"#,
        "\n"
    );
    let schema = schema_of(text, &options).unwrap();
    let results = all(text, &schema);
    assert_eq!(
        layout(&results),
        [
            ('b', 0, 1),
            ('e', 1, 0),
            ('e', 2, 0),
            ('e', 3, 0),
            ('e', 4, 0),
            ('b', 5, 2)
        ]
    );
    let (_, column, reason, _) = row_error(&results[1]);
    assert_eq!(column.as_deref(), Some("ID"));
    assert!(
        reason.contains("column `ID`: `2.5` is not a INTEGER (FLOAT)"),
        "{reason}"
    );
    assert!(reason.contains("[source.json] columns"), "{reason}");
    let (_, column, reason, _) = row_error(&results[2]);
    assert_eq!(column.as_deref(), Some("AT"));
    assert!(
        reason.contains(r#"`"yesterday"` is not a TIMESTAMP"#),
        "{reason}"
    );
    let (_, column, reason, _) = row_error(&results[3]);
    assert_eq!(column.as_deref(), Some("TAGS"));
    assert!(
        reason.contains("is not a JSON (an object or array) (TEXT)"),
        "{reason}"
    );
    let (_, column, _, _) = row_error(&results[4]);
    assert_eq!(column.as_deref(), Some("OK"));

    let batch = results[5].as_ref().unwrap().batch.clone();
    let note = col::<StringArray>(&batch, "NOTE");
    assert_eq!(note.value(0), r#"{"b":2,"a":1}"#);
    assert_eq!(note.value(1), "12.50", "a number's JSON text, as written");
    assert_eq!(col::<Float64Array>(&batch, "F").value(0), 2.0);
    assert!(col::<TimestampMillisecondArray>(&batch, "AT").is_null(1));
    // Nothing of a failed row is left in the columns.
    assert_eq!(col::<Int64Array>(&batch, "ID").values(), &[6, 7]);
}

#[test]
fn lines_that_are_not_json_objects_are_row_errors_quoting_them() {
    let long = format!(r#"{{"ID":9,"NOTE":"{}"#, "x".repeat(500));
    let mut text = String::from("{\"ID\":1}\n");
    text.push_str("not json at all\n");
    text.push_str("[1,2]\n");
    text.push_str("\"text\"\n");
    text.push_str("{\"ID\":2,}\n");
    text.push_str("{\"ID\":3} {}\n");
    text.push_str(&long);
    text.push('\n');
    text.push_str("{\"ID\":4}\n");
    let schema = inferred(&text);
    assert_eq!(
        schema.columns.len(),
        1,
        "unreadable lines are left out of the inference"
    );
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"{\"ID\":5,\"NOTE\":\"caf\xE9\"}\n{\"ID\":6}\n");
    let reader: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(bytes));
    let results: Vec<_> = JsonBatches::new(
        reader,
        FILE.into(),
        schema,
        &ReadOptions::default(),
        usize::MAX,
    )
    .collect();
    assert_eq!(
        layout(&results),
        [
            ('b', 0, 1),
            ('e', 1, 0),
            ('e', 2, 0),
            ('e', 3, 0),
            ('e', 4, 0),
            ('e', 5, 0),
            ('e', 6, 0),
            ('b', 7, 1),
            ('e', 8, 0),
            ('b', 9, 1)
        ]
    );
    let reason = |i: usize| row_error(&results[i]).2;
    assert!(
        reason(1).starts_with("the line is not valid JSON"),
        "{}",
        reason(1)
    );
    assert!(reason(1).ends_with("`not json at all`"), "{}", reason(1));
    assert!(reason(2).starts_with("the line is JSON but not an object: `[1,2]`"));
    assert!(reason(3).starts_with("the line is JSON but not an object"));
    assert!(
        reason(4).starts_with("the line is not valid JSON"),
        "{}",
        reason(4)
    );
    assert!(
        reason(5).contains("unexpected text after the object"),
        "{}",
        reason(5)
    );
    let (_, _, why, quoted) = row_error(&results[6]);
    assert!(why.contains("not valid JSON"), "{why}");
    assert!(
        quoted.len() <= ROW_TEXT_QUOTED && quoted.ends_with('…'),
        "{quoted}"
    );
    let (_, _, why, quoted) = row_error(&results[8]);
    assert!(why.starts_with("the line is not UTF-8 text"), "{why}");
    assert!(quoted.contains("caf\u{FFFD}"), "{quoted}");
}

#[test]
fn a_file_that_is_one_json_array_is_refused() {
    let text = "[\n{\"ID\":1},\n{\"ID\":2}\n]\n";
    let expect = |error: &SourceError| {
        assert!(matches!(error, SourceError::Layout { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.starts_with("data_0_0_0.json: the file is one JSON array"));
        assert!(message.contains("one object per line"), "{message}");
        assert!(message.contains("STRIP_OUTER_ARRAY"), "{message}");
    };
    let schema = inferred("{\"ID\":1}\n");
    let results = all(text, &schema);
    assert_eq!(results.len(), 1);
    expect(results[0].as_ref().unwrap_err());
    let one_line = r#"  [{"ID":1},{"ID":2}]"#;
    expect(all(one_line, &schema)[0].as_ref().unwrap_err());
    // Even when resuming past it.
    let read = ReadOptions {
        start_row: 2,
        ..ReadOptions::default()
    };
    expect(
        batches(text, &schema, &read, usize::MAX)[0]
            .as_ref()
            .unwrap_err(),
    );
    expect(&schema_of(text, &JsonOptions::default()).unwrap_err());
}

#[test]
fn blank_lines_are_not_rows_and_line_breaks_may_be_crlf() {
    let text = "\u{FEFF}{\"ID\":1}\r\n\r\n   \n{\"ID\":2}\r\n\n{\"ID\":3}";
    let schema = inferred(text);
    let results = all(text, &schema);
    assert_eq!(layout(&results), [('b', 0, 3)]);
    let batch = results[0].as_ref().unwrap();
    assert_eq!(col::<Int64Array>(&batch.batch, "ID").values(), &[1, 2, 3]);
    assert_eq!(all("", &schema).len(), 0);
    assert_eq!(all("\n \n", &schema).len(), 0);
    assert!(inferred("").columns.is_empty());
}

#[test]
fn batches_have_at_most_batch_rows_and_about_max_bytes_from_start_row_projected() {
    let text: String = (0..10)
        .map(|i| format!("{{\"A\":{i},\"B\":\"b{i}\",\"C\":{}}}\n", i % 2 == 0))
        .collect();
    let schema = inferred(&text);
    let read = |batch_rows, start_row, projection: Option<Vec<usize>>| ReadOptions {
        batch_rows,
        start_row,
        projection,
    };
    let results = batches(&text, &schema, &read(4, 0, None), usize::MAX);
    assert_eq!(layout(&results), [('b', 0, 4), ('b', 4, 4), ('b', 8, 2)]);
    let results = batches(&text, &schema, &read(4, 3, None), usize::MAX);
    assert_eq!(layout(&results), [('b', 3, 4), ('b', 7, 3)]);
    let first = &results[0].as_ref().unwrap().batch;
    assert_eq!(col::<Int64Array>(first, "A").value(0), 3);
    // Each line is 25 bytes or so: 60 bytes cut a batch after 3 lines.
    let results = batches(&text, &schema, &read(100, 0, None), 60);
    assert_eq!(
        layout(&results),
        [('b', 0, 3), ('b', 3, 3), ('b', 6, 3), ('b', 9, 1)]
    );
    let results = batches(&text, &schema, &read(100, 0, None), 1);
    assert_eq!(results.len(), 10, "at least one row per batch");
    // Projection: these columns in this order, repeats allowed.
    let results = batches(
        &text,
        &schema,
        &read(100, 8, Some(vec![2, 0, 2])),
        usize::MAX,
    );
    let batch = &results[0].as_ref().unwrap().batch;
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["C", "A", "C"]);
    assert_eq!(batch.num_rows(), 2);
    assert!(
        batch
            .column(0)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap()
            .value(0)
    );
    // Past the end: nothing.
    assert!(batches(&text, &schema, &read(4, 10, None), usize::MAX).is_empty());
    // A projection outside the columns is an error, not a panic.
    let results = batches(&text, &schema, &read(4, 0, Some(vec![3])), usize::MAX);
    assert_eq!(results.len(), 1);
    assert!(matches!(results[0], Err(SourceError::Options { .. })));
}

#[test]
fn skipped_lines_are_not_parsed() {
    // Rows before start_row are not read as JSON: a bad one there is no error.
    let text = "{\"ID\":1}\nnot json\n{\"ID\":3}\n";
    let schema = inferred(text);
    let read = ReadOptions {
        start_row: 2,
        ..ReadOptions::default()
    };
    let results = batches(text, &schema, &read, usize::MAX);
    assert_eq!(layout(&results), [('b', 2, 1)]);
}

#[test]
fn a_read_error_ends_the_batches_after_the_rows_read() {
    struct Failing(std::io::Cursor<Vec<u8>>);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match std::io::Read::read(&mut self.0, buf)? {
                0 => Err(std::io::Error::other("corrupt gzip stream")),
                n => Ok(n),
            }
        }
    }
    let schema = inferred("{\"ID\":1}\n");
    let reader = std::io::BufReader::new(Failing(std::io::Cursor::new(
        b"{\"ID\":1}\n{\"ID\":2}\n".to_vec(),
    )));
    let results: Vec<_> = JsonBatches::new(
        Box::new(reader),
        FILE.into(),
        schema,
        &ReadOptions::default(),
        usize::MAX,
    )
    .collect();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().unwrap().batch.num_rows(), 2);
    let error = results[1].as_ref().unwrap_err();
    assert!(matches!(error, SourceError::Read { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "data_0_0_0.json: cannot read: corrupt gzip stream"
    );
}

#[test]
fn a_line_longer_than_the_record_limit_ends_the_file_after_the_rows_before_it() {
    use std::io::Read;
    let schema = inferred("{\"ID\":1}\n");
    // One good line, then a line with no end (streamed: the test holds no copy of it).
    let long = std::io::repeat(b' ').take(crate::source::text::MAX_RECORD_BYTES as u64 + 10);
    let reader =
        std::io::BufReader::new(std::io::Cursor::new(b"{\"ID\":1}\n".to_vec()).chain(long));
    let results: Vec<_> = JsonBatches::new(
        Box::new(reader),
        FILE.into(),
        schema,
        &ReadOptions::default(),
        usize::MAX,
    )
    .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0].as_ref().unwrap().batch.num_rows(), 1);
    let error = results[1].as_ref().unwrap_err();
    assert!(matches!(error, SourceError::Layout { .. }), "{error:?}");
    assert!(error.to_string().contains("longer than 256 MiB"), "{error}");
}

#[test]
fn members_read_any_spacing_and_escapes() {
    let m = members(r#" { "A" : 1 , "B\u0041" :"x\\" ,"C":{"d":[1,"]"]}, "E":null } "#).unwrap();
    let m: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
    assert_eq!(
        m,
        [
            ("A", "1"),
            ("BA", r#""x\\""#),
            ("C", r#"{"d":[1,"]"]}"#),
            ("E", "null")
        ]
    );
    assert_eq!(members("{}").unwrap(), []);
    assert!(matches!(
        members(r#"{"A":[1,}"#),
        Err(LineError::NotJson(_))
    ));
    assert!(matches!(members(r#"{"A":"#), Err(LineError::NotJson(_))));
    assert!(matches!(members(r#"{"A" 1}"#), Err(LineError::NotJson(_))));
    assert!(
        members("{\"A\":tru}").is_ok(),
        "scalars are checked when read"
    );
    assert!(cell("tru").is_err());
    assert_eq!(quote("ééé", 5), "é…");
}

mod declared;
mod pass_through;
mod timestamps;
